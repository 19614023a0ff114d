"""Delivery feedback already recorded, by its source's key.

Revision ID: bounces_1
Revises: 0011
Create Date: 2026-12-06

- ``feedback_receipts``: one DSN, ARF report or ESP event per (source, key), so a
  replay records nothing twice; soft bounces are counted per address hash here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bounces_1"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def upgrade() -> None:
    words = ", ".join(repr(k) for k in KINDS)
    op.create_table(
        "feedback_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=True),
        sa.Column("address_hash", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind IN ({words})", name=op.f("ck_feedback_receipts_kind")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_feedback_receipts_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_receipts")),
        sa.UniqueConstraint("source", "key", name=op.f("uq_feedback_receipts_source_key")),
    )
    op.create_index(
        op.f("ix_feedback_receipts_address_hash_at"), "feedback_receipts", ["address_hash", "at"]
    )
    op.create_index(op.f("ix_feedback_receipts_delivery_id"), "feedback_receipts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_receipts_delivery_id"), table_name="feedback_receipts")
    op.drop_index(op.f("ix_feedback_receipts_address_hash_at"), table_name="feedback_receipts")
    op.drop_table("feedback_receipts")
