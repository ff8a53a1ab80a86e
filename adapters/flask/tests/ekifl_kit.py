"""Constants shared by the Flask adapter's tests."""

META_SECRET = "flask-app-secret"
VERIFY_TOKEN = "flask-verify"
