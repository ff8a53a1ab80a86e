"""Worked examples that ship with the library (importable from an installed wheel).

* :mod:`eki_whatsapp.examples.eki` — Eki, an education assistant (Spanish) built on the agent.
"""
