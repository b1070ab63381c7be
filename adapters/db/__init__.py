"""Relational storage with SQLAlchemy Core: SQLite (embedded mode) or PostgreSQL (production)."""
