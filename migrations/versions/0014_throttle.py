"""Deferrals of emails held back by a receiving domain's rate.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

- ``throttle_deferrals``: one row each time an email was deferred because its
  receiving domain (``qq.com``, ``163.com``, ...) had reached its rate
  (``NURTURE_DOMAIN_RATES``), so the reports count them per domain. A table is
  only added.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "throttle_deferrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_throttle_deferrals_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_deferrals")),
    )
    op.create_index(
        op.f("ix_throttle_deferrals_delivery_id"), "throttle_deferrals", ["delivery_id"]
    )
    op.create_index(op.f("ix_throttle_deferrals_domain_at"), "throttle_deferrals", ["domain", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_throttle_deferrals_domain_at"), table_name="throttle_deferrals")
    op.drop_index(op.f("ix_throttle_deferrals_delivery_id"), table_name="throttle_deferrals")
    op.drop_table("throttle_deferrals")
