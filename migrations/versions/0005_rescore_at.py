"""Leads: when their interest next decays, so the scheduler rescores them then.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

- ``leads.rescore_at``: the next moment the stored interest changes by decay
  alone (an event that scored points enters a new decay period); NULL when
  nothing is left to decay. Indexed: the scheduler's sweep reads the due rows.

Leads that have interest when the database is upgraded get their last update
as ``rescore_at``, so the first sweep brings their scores to the present and
works out their real next moment.

Only a column and an index are added: on SQLite ``ADD COLUMN`` never rebuilds
the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("rescore_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE leads SET rescore_at = updated_at WHERE interest > 0")
    op.create_index(op.f("ix_leads_rescore_at"), "leads", ["rescore_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_leads_rescore_at"), table_name="leads")
    with op.batch_alter_table("leads", recreate="never") as batch:
        batch.drop_column("rescore_at")
