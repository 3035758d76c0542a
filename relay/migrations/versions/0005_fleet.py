"""The fleet row: database identity and encryption key check shared by every host"""

import sqlalchemy as sa
from alembic import op

revision = "0005_fleet"
down_revision = "0005_broker"  # the branches of 2026-12-01, chained in the order they landed
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fleet_id", sa.String(length=36), nullable=False),
        sa.Column("key_check", sa.Text(), nullable=False),
        sa.Column("generated_keys", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("fleet")
