"""The initial schema: leads, tags, events, campaigns, enrollments, deliveries, MQLs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written by hand and frozen: it does not import ``nurture.models``, so later
model changes cannot rewrite history. Names follow the models' naming
convention; ``tests/store/test_migrations.py`` checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = "'lead', 'mql', 'sql', 'opportunity', 'customer', 'returned'"
EVENT_TYPES = (
    "'delivered', 'opened', 'clicked', 'replied', 'bounced_hard', 'bounced_soft', "
    "'complained', 'unsubscribed', 'form_submitted', 'page_viewed', 'custom'"
)
ENROLLMENT_STATES = "'active', 'waiting', 'done', 'exited'"
DELIVERY_STATUSES = "'pending', 'sent', 'failed', 'unknown', 'deferred', 'suppressed'"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _lead_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["lead_id"], ["leads.id"], name=op.f(f"fk_{table}_lead_id_leads"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "leads",
        _id(),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("messaging_id", sa.String(128), nullable=True),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column("company", sa.String(200), nullable=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("attributes", _json(), nullable=False),
        sa.Column("time_zone", sa.String(64), server_default="UTC", nullable=False),
        sa.Column("stage", sa.String(16), server_default="lead", nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("fit", sa.Integer(), server_default="0", nullable=False),
        sa.Column("interest", sa.Double(), server_default="0", nullable=False),
        sa.Column("grade", sa.String(1), nullable=True),
        _when("unsubscribed_at", nullable=True),
        _when("hard_bounced_at", nullable=True),
        _when("complained_at", nullable=True),
        sa.Column("suppressed_reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        _when("last_activity_at", nullable=True),
        sa.CheckConstraint(f"stage IN ({STAGES})", name=op.f("ck_leads_stage")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_leads_email_lower_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("email", name=op.f("uq_leads_email")),
        sa.UniqueConstraint("messaging_id", name=op.f("uq_leads_messaging_id")),
        sa.UniqueConstraint("phone", name=op.f("uq_leads_phone")),
    )
    op.create_table(
        "campaigns",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "campaign_versions",
        _id(),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("graph", _json(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _when("deployed_at"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_versions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_versions")),
        sa.UniqueConstraint(
            "campaign_id",
            "content_hash",
            name=op.f("uq_campaign_versions_campaign_id_content_hash"),
        ),
        sa.UniqueConstraint(
            "campaign_id", "version", name=op.f("uq_campaign_versions_campaign_id_version")
        ),
    )
    _create_enrollments()
    _create_deliveries()
    op.create_table(
        "tags",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        _when("tagged_at"),
        _lead_fk("tags"),
        sa.PrimaryKeyConstraint("lead_id", "tag", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_tag"), "tags", ["tag"])
    _create_events()
    op.create_table(
        "lifecycle_transitions",
        _id(),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=True),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        _when("at"),
        sa.CheckConstraint(
            f"to_stage IN ({STAGES})", name=op.f("ck_lifecycle_transitions_to_stage")
        ),
        _lead_fk("lifecycle_transitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_transitions")),
    )
    op.create_index(
        op.f("ix_lifecycle_transitions_lead_id_at"), "lifecycle_transitions", ["lead_id", "at"]
    )
    _create_mql_records()


def _create_enrollments() -> None:
    op.create_table(
        "enrollments",
        _id(),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("campaign_version_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(200), nullable=False),
        _when("next_run_at", nullable=True),
        sa.Column("waiting_for", _json(), nullable=True),
        sa.Column("iterations", _json(), nullable=False),
        sa.Column("state", sa.String(16), server_default="active", nullable=False),
        sa.Column("exit_reason", sa.Text(), nullable=True),
        _when("entered_at"),
        _when("ended_at", nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        _when("claimed_until", nullable=True),
        sa.CheckConstraint(f"state IN ({ENROLLMENT_STATES})", name=op.f("ck_enrollments_state")),
        sa.ForeignKeyConstraint(
            ["campaign_version_id"],
            ["campaign_versions.id"],
            name=op.f("fk_enrollments_campaign_version_id_campaign_versions"),
        ),
        _lead_fk("enrollments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    op.create_index(
        op.f("ix_enrollments_campaign_version_id"), "enrollments", ["campaign_version_id"]
    )
    op.create_index(op.f("ix_enrollments_lead_id"), "enrollments", ["lead_id"])
    op.create_index(op.f("ix_enrollments_next_run_at"), "enrollments", ["next_run_at"])
    op.create_index(
        op.f("ix_enrollments_state_next_run_at"), "enrollments", ["state", "next_run_at"]
    )


def _create_deliveries() -> None:
    op.create_table(
        "deliveries",
        _id(),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("iteration", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _when("created_at"),
        _when("sent_at", nullable=True),
        sa.CheckConstraint(f"status IN ({DELIVERY_STATUSES})", name=op.f("ck_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_deliveries_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        _lead_fk("deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "enrollment_id",
            "step_id",
            "iteration",
            name=op.f("uq_deliveries_enrollment_id_step_id_iteration"),
        ),
        sa.UniqueConstraint("message_id", name=op.f("uq_deliveries_message_id")),
    )
    op.create_index(op.f("ix_deliveries_lead_id_sent_at"), "deliveries", ["lead_id", "sent_at"])


def _create_events() -> None:
    op.create_table(
        "events",
        _id(),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        _when("occurred_at"),
        sa.Column("data", _json(), nullable=False),
        sa.CheckConstraint(f"type IN ({EVENT_TYPES})", name=op.f("ck_events_type")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        _lead_fk("events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_delivery_id"), "events", ["delivery_id"])
    op.create_index(op.f("ix_events_lead_id_occurred_at"), "events", ["lead_id", "occurred_at"])


def _create_mql_records() -> None:
    op.create_table(
        "mql_records",
        _id(),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("cause_event_id", sa.Integer(), nullable=True),
        sa.Column("fit", sa.Integer(), nullable=False),
        sa.Column("interest", sa.Double(), nullable=False),
        sa.Column("grade", sa.String(1), nullable=True),
        _when("at"),
        sa.Column("owner", sa.String(200), nullable=True),
        _when("sla_due_at", nullable=True),
        _when("accepted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["cause_event_id"],
            ["events.id"],
            name=op.f("fk_mql_records_cause_event_id_events"),
            ondelete="SET NULL",
        ),
        _lead_fk("mql_records"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mql_records")),
    )
    op.create_index(
        op.f("ix_mql_records_accepted_at_sla_due_at"), "mql_records", ["accepted_at", "sla_due_at"]
    )
    op.create_index(op.f("ix_mql_records_lead_id_at"), "mql_records", ["lead_id", "at"])


def downgrade() -> None:
    for table in (
        "mql_records",
        "lifecycle_transitions",
        "events",
        "tags",
        "deliveries",
        "enrollments",
        "campaign_versions",
        "campaigns",
        "leads",
    ):
        op.drop_table(table)
