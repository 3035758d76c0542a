"""Webhooks keep the PactFlow team a broker client assigned them to (teamUuid)"""

import sqlalchemy as sa
from alembic import op

revision = "0005_broker"
down_revision = "0005_ui"  # the branches of 2026-12-01, chained in the order they landed
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team_uuid", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("team_uuid")
