"""time entries: fewer indexes to update on every write

Logging time is the busiest write of the day, and each index of time_entries is one more
B-tree to update (and, on SQLite, one more page in the write-ahead log) per entry. Activity
and pole (a handful of values each, read by date range through ix_time_entries_report) lose
their indexes; ticket, project and deletion are looked up by value, so their indexes keep
only the entries that have one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_PARTIAL = ('ticket_id', 'project_id', 'deleted_at')


def upgrade():
    with op.batch_alter_table('time_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_time_entries_activity'))
        batch_op.drop_index(batch_op.f('ix_time_entries_pole'))
        for column in _PARTIAL:
            batch_op.drop_index(batch_op.f(f'ix_time_entries_{column}'))
            where = sa.text(f'{column} IS NOT NULL')
            batch_op.create_index(
                f'ix_time_entries_{column}', [column], unique=False,
                sqlite_where=where, postgresql_where=where,
            )


def downgrade():
    with op.batch_alter_table('time_entries', schema=None) as batch_op:
        for column in _PARTIAL:
            where = sa.text(f'{column} IS NOT NULL')
            batch_op.drop_index(
                f'ix_time_entries_{column}', sqlite_where=where, postgresql_where=where
            )
            batch_op.create_index(batch_op.f(f'ix_time_entries_{column}'), [column], unique=False)
        batch_op.create_index(batch_op.f('ix_time_entries_pole'), ['pole'], unique=False)
        batch_op.create_index(batch_op.f('ix_time_entries_activity'), ['activity'], unique=False)
