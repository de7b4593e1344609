"""Persistence: declarative base, portable column types, engine, sessions, migrations."""
