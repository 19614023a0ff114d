"""Users: invitations by email, whose link lets the invited choose their own password.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

- ``users.invite_nonce``: the nonce a pending invitation's signed link carries
  (choosing a password clears it, so the link works once; a new invitation
  replaces it); NULL: no invitation pending.
- ``users.invited_at``: when the latest invitation was made.

Only columns are added: on SQLite ``ADD COLUMN`` never rebuilds the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("invite_nonce", sa.String(length=64), nullable=True))
    op.add_column("users", sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("invited_at")
        batch.drop_column("invite_nonce")
