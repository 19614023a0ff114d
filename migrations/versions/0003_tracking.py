"""Tracking: the links of each delivery, and merged leads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

- ``deliveries.links``: the tracked links of the rendered message, as
  ``[{"index": 0, "name": "download", "url": "https://..."}]``. A click token
  carries (delivery id, link index); the tracking service redirects only to
  the URL stored here, never to one from the request. NULL: no tracked links.
- ``lead_merges``: a lead merged into another by dedup. ``merged_id`` is the
  id that is gone; ``into_id`` the lead that now holds its history. Old
  unsubscribe links carry the old id and must keep working, so the tracking
  service follows this table.

Only a column and a table are added: on SQLite ``ADD COLUMN`` never rebuilds
the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("links", _json(), nullable=True))
    op.create_table(
        "lead_merges",
        sa.Column("merged_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("merged", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["into_id"],
            ["leads.id"],
            name=op.f("fk_lead_merges_into_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("merged_id", name=op.f("pk_lead_merges")),
    )
    op.create_index(op.f("ix_lead_merges_into_id"), "lead_merges", ["into_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lead_merges_into_id"), table_name="lead_merges")
    op.drop_table("lead_merges")
    with op.batch_alter_table("deliveries", recreate="never") as batch:
        batch.drop_column("links")
