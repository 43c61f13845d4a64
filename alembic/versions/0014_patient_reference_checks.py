"""patients: the guarantor and primary-provider references are checked by the sync

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 15:00:00

Both references are only ever written by the bulk sync (api.practice.ingest), which
resolves every external id to our id in the same transaction, under the entity's lock,
and answers an unknown one as a row error; mirror rows are never hard-deleted (the PMS's
deletes are tombstones), so the row a reference names cannot go away. The per-row
foreign-key triggers repeated that look-up for every inserted patient (~10 µs each, and
the deferred guarantor check again at commit): a third of a first load's database time.
The location foreign key stays (the tenant wall, and deleting a location cascades).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        'fk_patients_tenant_id_guarantor_id_patients', 'patients', type_='foreignkey'
    )
    op.drop_constraint(
        'fk_patients_tenant_id_primary_provider_id_providers', 'patients', type_='foreignkey'
    )


def downgrade() -> None:
    op.create_foreign_key(
        'fk_patients_tenant_id_primary_provider_id_providers',
        'patients',
        'providers',
        ['tenant_id', 'primary_provider_id'],
        ['tenant_id', 'id'],
    )
    op.create_foreign_key(
        'fk_patients_tenant_id_guarantor_id_patients',
        'patients',
        'patients',
        ['tenant_id', 'guarantor_id'],
        ['tenant_id', 'id'],
        deferrable=True,
        initially='DEFERRED',
    )
