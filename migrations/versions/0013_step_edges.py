"""Which way leads took out of a step with several ways out, counted per version.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

- ``step_edges``: (campaign version, from step, to step) and how many
  enrollments went that way. The runtime adds each batch's counts in one
  upsert as it stores the decisions; live pictures (``nurture graph --counts
  live``, the console's campaign page) put them on the edges out of a branch,
  split, repeat or wait with a timeout. Counting starts with this revision:
  ways taken before it were never recorded, so they are not in the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "step_edges",
        sa.Column("campaign_version_id", sa.Integer(), nullable=False),
        sa.Column("from_step", sa.String(length=200), nullable=False),
        sa.Column("to_step", sa.String(length=200), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_version_id"],
            ["campaign_versions.id"],
            name=op.f("fk_step_edges_campaign_version_id_campaign_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_version_id", "from_step", "to_step", name=op.f("pk_step_edges")
        ),
    )


def downgrade() -> None:
    op.drop_table("step_edges")
