"""Suppression per channel and per address; consent per channel.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

- ``suppressions``: one address (hashed) closed on one channel (``email``,
  ``sms``, ``wechat``) or on ``all``; a WeChat 43004 closes WeChat for that
  openid, an SMS STOP closes SMS for that number, a hard bounce closes email
  for that address.
- ``consents``: each lead's consent per channel (given or withdrawn), its
  source and time; ``NURTURE_REQUIRE_CONSENT`` withholds a channel from a
  lead without one.

A table is only added. Today's per-lead suppression keeps what it means: the
lead's ``unsubscribed_at``, ``hard_bounced_at`` and ``complained_at`` still
stop every channel for that lead, so nothing is copied or rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("email", "sms", "wechat", "all")
CONSENT_CHANNELS = ("email", "sms", "wechat")


def upgrade() -> None:
    words = ", ".join(repr(c) for c in CHANNELS)
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"channel IN ({words})", name=op.f("ck_suppressions_channel")),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_suppressions_lead_id_leads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint(
            "channel", "address_hash", name=op.f("uq_suppressions_channel_address_hash")
        ),
    )
    op.create_index(op.f("ix_suppressions_address_hash"), "suppressions", ["address_hash"])
    op.create_index(op.f("ix_suppressions_lead_id"), "suppressions", ["lead_id"])
    consent_words = ", ".join(repr(c) for c in CONSENT_CHANNELS)
    op.create_table(
        "consents",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"channel IN ({consent_words})", name=op.f("ck_consents_channel")),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_consents_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lead_id", "channel", name=op.f("pk_consents")),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_index(op.f("ix_suppressions_lead_id"), table_name="suppressions")
    op.drop_index(op.f("ix_suppressions_address_hash"), table_name="suppressions")
    op.drop_table("suppressions")
