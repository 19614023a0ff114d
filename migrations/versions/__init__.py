"""Migration scripts, oldest first; Alembic reads them from this folder."""
