"""messaging: the send ledger, inbound replies, the sandbox outbox, provider settings
(secrets encrypted) and messaging preferences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:00:00

Tenant-owned: tenant_id leads every primary key, and row-level security keys on
app.tenant_id. `uq_messages_send_key` makes a send happen once per (source, patient,
channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = [
    "messaging_preferences",
    "messaging_providers",
    "sandbox_messages",
    "inbound_messages",
    "messages",
]


def upgrade() -> None:
    op.create_table('messaging_preferences',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('allow_clinical_sms', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_messaging_preferences_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_messaging_preferences'))
    )
    op.create_table('messaging_providers',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('secrets_ciphertext', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f('ck_messaging_providers_channel_known')),
    sa.CheckConstraint("kind IN ('sandbox', 'smtp', 'twilio')", name=op.f('ck_messaging_providers_kind_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_messaging_providers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'channel', name=op.f('pk_messaging_providers'))
    )
    op.create_table('sandbox_messages',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sandbox_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_sandbox_messages'))
    )
    op.create_table('inbound_messages',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('patient_id', sa.String(length=40), nullable=True),
    sa.Column('provider_kind', sa.String(length=16), nullable=False),
    sa.Column('provider_message_id', sa.String(length=200), nullable=False),
    sa.Column('from_address', sa.String(length=254), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('task_id', sa.String(length=40), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'location_id'], ['locations.tenant_id', 'locations.id'], name=op.f('fk_inbound_messages_tenant_id_location_id_locations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'patient_id'], ['patients.tenant_id', 'patients.id'], name=op.f('fk_inbound_messages_tenant_id_patient_id_patients')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('tenant_id', 'provider_kind', 'provider_message_id', name=op.f('uq_inbound_messages_tenant_id_provider_kind_provider_message_id'))
    )
    op.create_table('messages',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('patient_id', sa.String(length=40), nullable=True),
    sa.Column('recipient_key', sa.String(length=300), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=80), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=True),
    sa.Column('to_address', sa.String(length=254), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('sms_encoding', sa.String(length=8), nullable=True),
    sa.Column('sms_segments', sa.Integer(), nullable=True),
    sa.Column('chart_note', sa.String(length=300), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('provider_kind', sa.String(length=16), nullable=True),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f('ck_messages_channel_known')),
    sa.CheckConstraint("source_kind IN ('campaign', 'cadence', 'booking', 'manual', 'reply')", name=op.f('ck_messages_source_kind_known')),
    sa.CheckConstraint("status IN ('queued', 'sent', 'delivered', 'failed', 'suppressed')", name=op.f('ck_messages_status_known')),
    sa.ForeignKeyConstraint(['tenant_id', 'location_id'], ['locations.tenant_id', 'locations.id'], name=op.f('fk_messages_tenant_id_location_id_locations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'patient_id'], ['patients.tenant_id', 'patients.id'], name=op.f('fk_messages_tenant_id_patient_id_patients')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_messages')),
    sa.UniqueConstraint('tenant_id', 'source_kind', 'source_id', 'recipient_key', 'channel', name='uq_messages_send_key')
    )
    op.create_index('ix_messages_tenant_provider_message_id', 'messages', ['tenant_id', 'provider_message_id'], unique=False)
    op.create_index('ix_messages_tenant_patient', 'messages', ['tenant_id', 'patient_id'], unique=False)
    op.create_index('ix_messages_tenant_to_address_created_at', 'messages', ['tenant_id', 'to_address', 'created_at'], unique=False)
    for table in TABLES:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in TABLES:
        disable_tenant_rls(table)
    op.drop_index('ix_messages_tenant_to_address_created_at', table_name='messages')
    op.drop_index('ix_messages_tenant_patient', table_name='messages')
    op.drop_index('ix_messages_tenant_provider_message_id', table_name='messages')
    op.drop_table('messages')
    op.drop_table('inbound_messages')
    op.drop_table('sandbox_messages')
    op.drop_table('messaging_providers')
    op.drop_table('messaging_preferences')
