"""Notes on leads: what sales and SDRs write about a lead, shown in its story.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

- ``lead_notes``: lead, author (a sales member's address), text, time;
  indexed by (lead, time), the order a story reads them in.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_lead_notes_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_notes")),
    )
    op.create_index(op.f("ix_lead_notes_lead_id_at"), "lead_notes", ["lead_id", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lead_notes_lead_id_at"), table_name="lead_notes")
    op.drop_table("lead_notes")
