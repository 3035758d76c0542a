"""A webhook's own limit on sends in flight (fleet-wide); empty means RELAY_TARGET_CONCURRENCY"""

import sqlalchemy as sa
from alembic import op

revision = "0005_engine"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("max_in_flight")
