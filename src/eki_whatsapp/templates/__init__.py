"""Templates managed from code (filled in below)."""
