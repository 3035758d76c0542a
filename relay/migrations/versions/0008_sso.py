"""Users from an identity provider: the provider and subject behind a user, and break-glass password users"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sso"
down_revision = "0007_fleet_hosts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sso_provider", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("sso_subject", sa.String(length=600), nullable=True))
        batch_op.add_column(sa.Column("break_glass", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_users_sso", ["sso_provider", "sso_subject"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_sso")
        batch_op.drop_column("break_glass")
        batch_op.drop_column("sso_subject")
        batch_op.drop_column("sso_provider")
