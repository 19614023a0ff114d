"""Runtime: the decision core's memory per enrollment, and trigger bookkeeping.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

- ``enrollments.memory``: what `EnrollmentState` holds beyond the other
  columns, the latest delivery of each send step and the last one sent, so
  ``if opened within 3 days`` knows which message it waits for. NULL until
  the first send.
- ``leads``, ``tags``, ``events``: ``triggers_checked_at``, when the runtime
  ran the campaigns' ``enroll when`` triggers (lead created, tagged, event)
  for the row. NULL means not yet: whoever writes a lead, a tag or an event
  (the API, an import, a merge) leaves it NULL and the scheduler enrolls the
  lead exactly once. A partial index keeps only the NULL rows.

Rows that exist before this revision are marked checked (at their own time),
so upgrading a database does not enroll every old lead into every campaign.

Only columns and indexes are added: on SQLite ``ADD COLUMN`` never rebuilds
the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKED = {"leads": "created_at", "tags": "tagged_at", "events": "occurred_at"}
"""Each table that gets ``triggers_checked_at``, and the column existing rows take it from."""


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("enrollments", sa.Column("memory", _json(), nullable=True))
    where = sa.text("triggers_checked_at IS NULL")
    for table, moment in CHECKED.items():
        op.add_column(
            table, sa.Column("triggers_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
        op.execute(f"UPDATE {table} SET triggers_checked_at = {moment}")
        op.create_index(
            op.f(f"ix_{table}_triggers_checked_at"),
            table,
            ["triggers_checked_at"],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for table in reversed(CHECKED):
        op.drop_index(op.f(f"ix_{table}_triggers_checked_at"), table_name=table)
        with op.batch_alter_table(table, recreate="never") as batch:
            batch.drop_column("triggers_checked_at")
    with op.batch_alter_table("enrollments", recreate="never") as batch:
        batch.drop_column("memory")
