"""A replay remembers its original, so a delivery's page links to its replays and back"""

import sqlalchemy as sa
from alembic import op

revision = "0005_ui"
down_revision = "0005_policies"  # the lead chains the branches; this branch holds engine and policies
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_of", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_deliveries_replay_of", ["replay_of"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_replay_of")
        batch_op.drop_column("replay_of")
