"""Deploys: the current version of each campaign, stored definitions, returned MQLs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

- ``campaigns.current_version``: the version new leads enter. It is the newest
  version unless a deploy reverted the text to an older one (the content hash
  is unique per campaign, so a revert points back instead of copying it).
  Existing campaigns get their newest version.
- ``definitions``: the deployed scoring model, routing, segments and field
  list, each versioned like a campaign, so workers find the active ones.
- ``mql_records.returned_at`` / ``return_reason``: sales sent the lead back,
  which stops that MQL's SLA clock.

Only columns are added to existing tables: on SQLite that is a plain
``ALTER TABLE ... ADD COLUMN``, never a table rebuild (a rebuild would drop
tables that enrollments and deliveries reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFINITION_KINDS = "'scoring', 'routing', 'segment', 'fields'"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("current_version", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE campaigns SET current_version = ("
        "SELECT max(v.version) FROM campaign_versions v WHERE v.campaign_id = campaigns.id)"
    )
    op.add_column(
        "mql_records", sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("mql_records", sa.Column("return_reason", sa.Text(), nullable=True))
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind IN ({DEFINITION_KINDS})", name=op.f("ck_definitions_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_definitions")),
        sa.UniqueConstraint(
            "kind", "name", "version", name=op.f("uq_definitions_kind_name_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("definitions")
    with op.batch_alter_table("mql_records", recreate="never") as batch:
        batch.drop_column("return_reason")
        batch.drop_column("returned_at")
    with op.batch_alter_table("campaigns", recreate="never") as batch:
        batch.drop_column("current_version")
