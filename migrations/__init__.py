"""Alembic migrations for the nurture schema; run them with ``nurture db upgrade``."""
