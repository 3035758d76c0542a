"""Why a verification failed, read from the Pact Broker: one row per verification result URL"""

import sqlalchemy as sa
from alembic import op

revision = "0006_verification_details"
down_revision = "0005_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_details",
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url_hash"),
    )


def downgrade() -> None:
    op.drop_table("verification_details")
