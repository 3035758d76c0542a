"""The newest delivery of each pair, kept on its main pair-state row"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pair_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_delivery_id", sa.String(length=36), nullable=True))
    # Once, for the rows that exist: from now on intake and replay keep it current.
    op.execute("""
        UPDATE pair_states SET last_delivery_id = (
            SELECT d.id FROM deliveries d JOIN events e ON d.event_id = e.id
            WHERE e.consumer = pair_states.consumer AND e.provider = pair_states.provider
            ORDER BY d.created_at DESC, d.id DESC LIMIT 1)
        WHERE consumer_tag = '' AND provider_tag = ''
    """)


def downgrade() -> None:
    with op.batch_alter_table("pair_states", schema=None) as batch_op:
        batch_op.drop_column("last_delivery_id")
