"""Initial schema: users, items, interactions, model versions, pushes, push attempts, keys.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 128
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# All times are UTC; the service's UTCDateTime type maps onto this column type.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_event_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
    )
    op.create_table(
        "interactions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(ID), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.Column("item_id", sa.String(ID), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("ingested_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_interactions"),
        sa.UniqueConstraint("event_id", name="uq_interactions_event_id"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_interactions_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name="fk_interactions_item_id_items"),
    )
    op.create_index("ix_interactions_item_id", "interactions", ["item_id"])
    op.create_index("ix_interactions_user_id_ts_id", "interactions", ["user_id", "ts", "id"])
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("has_toi", sa.Boolean(), nullable=False),
        sa.Column("has_tpp", sa.Boolean(), nullable=False),
        sa.Column("first_loaded_at", TS, nullable=False),
        sa.Column("last_loaded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
    )
    op.create_table(
        "pushes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("predicted_at", TS, nullable=True),
        sa.Column("p_return", sa.Float(), nullable=True),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pushes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_pushes_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "uq_pushes_user_pending",
        "pushes",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_pushes_status_due_at", "pushes", ["status", "due_at"])
    op.create_index("ix_pushes_user_id_created_at", "pushes", ["user_id", "created_at"])
    op.create_table(
        "push_attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("push_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_push_attempts"),
        sa.UniqueConstraint("push_id", "attempt", name="uq_push_attempts_push_id_attempt"),
        sa.ForeignKeyConstraint(
            ["push_id"], ["pushes.id"], name="fk_push_attempts_push_id_pushes", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("push_attempts")
    op.drop_index("ix_pushes_user_id_created_at", table_name="pushes")
    op.drop_index("ix_pushes_status_due_at", table_name="pushes")
    op.drop_index("uq_pushes_user_pending", table_name="pushes")
    op.drop_table("pushes")
    op.drop_table("model_versions")
    op.drop_index("ix_interactions_user_id_ts_id", table_name="interactions")
    op.drop_index("ix_interactions_item_id", table_name="interactions")
    op.drop_table("interactions")
    op.drop_table("items")
    op.drop_table("users")
