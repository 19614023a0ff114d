"""Deliveries: which sends were handed to the channel, when, and by which job.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

- ``deliveries.handed_at`` and ``deliveries.handed_by``: written, and committed,
  just before the message is handed to its channel (``handed_by`` is the job's
  claim token). After a crash a ``pending`` row with no mark was never sent
  and is simply due again; only a marked one is ``unknown``.

Rows written before the upgrade have no mark. A ``pending`` one among them
(a job was sending when the database was upgraded) is marked as handed at its
creation, by "upgrade", so it is still treated as maybe delivered.

Only columns are added: on SQLite ``ADD COLUMN`` never rebuilds the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deliveries", sa.Column("handed_by", sa.String(80), nullable=True))
    op.execute(
        "UPDATE deliveries SET handed_at = created_at, handed_by = 'upgrade' "
        "WHERE status = 'pending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", recreate="never") as batch:
        batch.drop_column("handed_by")
        batch.drop_column("handed_at")
