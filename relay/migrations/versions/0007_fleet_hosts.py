"""One heartbeat per host of the fleet, so a restart can tell a dead fleet from one running on another Redis"""

import sqlalchemy as sa
from alembic import op

revision = "0007_fleet_hosts"
down_revision = "0006_verification_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_hosts",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )


def downgrade() -> None:
    op.drop_table("fleet_hosts")
