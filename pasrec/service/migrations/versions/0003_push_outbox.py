"""Push planning leaves the ingestion request: the push outbox of users to (re)plan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "push_outbox",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("requeued_at", TS, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claim_expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_push_outbox"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_push_outbox_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_push_outbox_queued_at", "push_outbox", ["queued_at"])


def downgrade() -> None:
    op.drop_index("ix_push_outbox_queued_at", table_name="push_outbox")
    op.drop_table("push_outbox")
