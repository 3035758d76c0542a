"""Delivery policies: skip/supersede reasons, per-webhook rate limit and debounce, and the circuit breaker's state"""

import sqlalchemy as sa
from alembic import op

revision = "0005_policies"
down_revision = "0005_engine"  # the lead chains the branches; this one holds engine
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=36), nullable=True))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limit", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("debounce", sa.Integer(), nullable=True))
    op.create_table(
        "target_states",
        sa.Column("webhook_uuid", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cooldown", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("probe_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("webhook_uuid"),
    )


def downgrade() -> None:
    op.drop_table("target_states")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("debounce")
        batch_op.drop_column("rate_limit")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("reason")
