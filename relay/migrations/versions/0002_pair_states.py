"""Pair states for badges and /status"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=255), nullable=False),
        sa.Column("consumer_tag", sa.String(length=255), nullable=False),
        sa.Column("provider_tag", sa.String(length=255), nullable=False),
        sa.Column("pact_sha", sa.Text(), nullable=False),
        sa.Column("pact_url", sa.Text(), nullable=False),
        sa.Column("pact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consumer_version", sa.Text(), nullable=False),
        sa.Column("consumer_branch", sa.Text(), nullable=False),
        sa.Column("verification_success", sa.Boolean(), nullable=True),
        sa.Column("verification_sha", sa.Text(), nullable=False),
        sa.Column("verification_number", sa.BigInteger(), nullable=True),
        sa.Column("verification_url", sa.Text(), nullable=False),
        sa.Column("verification_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_consumer_version", sa.Text(), nullable=False),
        sa.Column("provider_version", sa.Text(), nullable=False),
        sa.Column("provider_branch", sa.Text(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "consumer", "provider", "consumer_tag", "provider_tag", name="uq_pair_states_key"
        ),
    )
    with op.batch_alter_table("pair_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pair_states_provider", ["provider", "consumer"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pair_states", schema=None) as batch_op:
        batch_op.drop_index("ix_pair_states_provider")

    op.drop_table("pair_states")
