"""The handoff to sales: assignments, availability, round robin, the SLA's reminders.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

- ``assignments``: every hand-over of an MQL to an owner (or to nobody), with
  the rule, the team and the reason in words;
- ``notices``: each message to an MQL's owner (email, CRM webhook, WeCom),
  written with the assignment and sent after the commit;
- ``accounts``, ``account_domains``, ``leads.account_id``: companies from the CRM
  (owner, customer / open deal / prospect) that leads are matched to;
- ``costs``: what each lead source and campaign cost per month (ROMI);
- ``sales_members``: a salesperson's availability (away until a moment);
- ``round_robin``: MQLs given to each member of a team by round robin, so
  restarts and any number of workers stay fair;
- ``mql_records.team``, ``remind_at`` (indexed), ``escalated_at``: what the
  SLA clock needs to reassign, remind and escalate;
- ``lifecycle_transitions.by`` and ``amount``: who moved a lead, and the
  deal's amount for opportunities and won deals.

Tables and columns are only added: on SQLite ``ADD COLUMN`` never rebuilds a
table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOW = ("owner", "user", "team", "round_robin", "escalation", "none")
KINDS = ("assigned", "reminder")
COST_KINDS = ("source", "campaign")
ACCOUNT_STATUSES = ("customer", "opportunity", "prospect")
STATUSES = ("pending", "sending", "sent", "failed")


def _one_of(column: str, values: tuple[str, ...], table: str) -> sa.CheckConstraint:
    words = ", ".join(repr(v) for v in values)
    return sa.CheckConstraint(f"{column} IN ({words})", name=op.f(f"ck_{table}_{column}"))


def _moment(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("mql_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("rule", sa.Integer(), nullable=True),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("previous", sa.String(length=320), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _moment("at", nullable=False),
        _one_of("how", HOW, "assignments"),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_assignments_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mql_id"],
            ["mql_records.id"],
            name=op.f("fk_assignments_mql_id_mql_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_lead_id_at"), "assignments", ["lead_id", "at"])
    op.create_index(op.f("ix_assignments_owner_at"), "assignments", ["owner", "at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _moment("created_at", nullable=False),
        _moment("sent_at"),
        _one_of("kind", KINDS, "notices"),
        _one_of("status", STATUSES, "notices"),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_notices_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_notices_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    op.create_index(op.f("ix_notices_assignment_id"), "notices", ["assignment_id"])
    op.create_index(op.f("ix_notices_lead_id"), "notices", ["lead_id"])
    op.create_index(op.f("ix_notices_status_id"), "notices", ["status", "id"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _moment("imported_at", nullable=False),
        _one_of("status", ACCOUNT_STATUSES, "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("key", name=op.f("uq_accounts_key")),
    )
    op.create_table(
        "account_domains",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_domains_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_account_domains")),
    )
    op.create_index(op.f("ix_account_domains_account_id"), "account_domains", ["account_id"])
    op.add_column("leads", sa.Column("account_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_leads_account_id"), "leads", ["account_id"])
    op.create_table(
        "costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        _moment("imported_at", nullable=False),
        _one_of("kind", COST_KINDS, "costs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_costs")),
        sa.UniqueConstraint("kind", "name", "month", name=op.f("uq_costs_kind_name_month")),
    )
    op.create_table(
        "sales_members",
        sa.Column("email", sa.String(length=320), nullable=False),
        _moment("away_until"),
        _moment("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_sales_members")),
    )
    op.create_table(
        "round_robin",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("member", sa.String(length=320), nullable=False),
        sa.Column("turns", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("team", "member", name=op.f("pk_round_robin")),
    )
    op.add_column("mql_records", sa.Column("team", sa.String(length=200), nullable=True))
    op.add_column("mql_records", _moment("remind_at"))
    op.add_column("mql_records", _moment("escalated_at"))
    op.create_index(op.f("ix_mql_records_remind_at"), "mql_records", ["remind_at"])
    op.add_column("lifecycle_transitions", sa.Column("by", sa.String(length=320), nullable=True))
    op.add_column("lifecycle_transitions", sa.Column("amount", sa.Numeric(14, 2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lifecycle_transitions", recreate="never") as batch:
        batch.drop_column("amount")
        batch.drop_column("by")
    op.drop_index(op.f("ix_mql_records_remind_at"), table_name="mql_records")
    with op.batch_alter_table("mql_records", recreate="never") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("remind_at")
        batch.drop_column("team")
    op.drop_table("costs")
    op.drop_index(op.f("ix_leads_account_id"), table_name="leads")
    with op.batch_alter_table("leads", recreate="never") as batch:
        batch.drop_column("account_id")
    op.drop_index(op.f("ix_account_domains_account_id"), table_name="account_domains")
    op.drop_table("account_domains")
    op.drop_table("accounts")
    op.drop_table("round_robin")
    op.drop_table("sales_members")
    op.drop_index(op.f("ix_notices_status_id"), table_name="notices")
    op.drop_index(op.f("ix_notices_lead_id"), table_name="notices")
    op.drop_index(op.f("ix_notices_assignment_id"), table_name="notices")
    op.drop_table("notices")
    op.drop_index(op.f("ix_assignments_owner_at"), table_name="assignments")
    op.drop_index(op.f("ix_assignments_lead_id_at"), table_name="assignments")
    op.drop_table("assignments")
