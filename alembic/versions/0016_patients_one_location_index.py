"""patients: drop the (tenant, location, status) index

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 05:00:00

Every statement that filters patients by location (the patient list, the booking widget's
patient match, `location_has_patients`) is served as well by the unique key
(tenant_id, location_id, external_id), whose prefix is the same; `status` has four values
and narrows little. The second index on that prefix cost every inserted patient a btree
insert, and it was a trap: where the table's statistics do not know the location (a new
practice's first sync into a table analyzed before it arrived), the planner sees both
indexes as returning about one row for
`tenant_id = $1 AND location_id = $2 AND external_id = $3`, took the smaller one and
filtered the location's rows for each external id looked up (10.8 s for one 2,000-id
look-up at 50,000 patients, against 28 ms through the unique key). With one index on the
prefix there is nothing to mistake (tests/practice/test_ingest_plans.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_patients_tenant_location_status', table_name='patients')


def downgrade() -> None:
    op.create_index(
        'ix_patients_tenant_location_status',
        'patients',
        ['tenant_id', 'location_id', 'status'],
        unique=False,
    )
