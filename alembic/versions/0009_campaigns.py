"""campaigns: campaigns, their per-round recipient ledger, exclusions and custom lists;
the send ledger learns `held` (a paused campaign) and deferrals; messaging preferences
get frequency caps and quiet hours

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:00:00

Tenant-owned: tenant_id leads every primary key, and row-level security keys on
app.tenant_id. The recipient key (campaign, round, patient) makes each patient one message
per send round.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = [
    "campaigns",
    "campaign_recipients",
    "campaign_exclusions",
    "campaign_list_entries",
    "message_handoffs",
]
_OLD_STATUSES = "status IN ('queued', 'sent', 'delivered', 'failed', 'suppressed')"
_NEW_STATUSES = "status IN ('queued', 'held', 'sent', 'delivered', 'failed', 'suppressed')"


def _campaign_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ['tenant_id', 'campaign_id'], ['campaigns.tenant_id', 'campaigns.id'],
        name=op.f(f'fk_{table}_tenant_id_campaign_id_campaigns'), ondelete='CASCADE',
    )


def _patient_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ['tenant_id', 'patient_id'], ['patients.tenant_id', 'patients.id'],
        name=op.f(f'fk_{table}_tenant_id_patient_id_patients'),
    )


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channels', postgresql.ARRAY(sa.String(length=8)), nullable=False),
    sa.Column('campaign_type', sa.String(length=16), nullable=False),
    sa.Column('scheduled_local', sa.DateTime(timezone=False), nullable=True),
    sa.Column('location_ids', postgresql.ARRAY(sa.String(length=40)), nullable=False),
    sa.Column('sms_content', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('email_content', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('recipients', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('send_round', sa.Integer(), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_token', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("campaign_type IN ('instant', 'scheduled')", name=op.f('ck_campaigns_campaign_type_known')),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')", name=op.f('ck_campaigns_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_campaigns_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_campaigns'))
    )
    op.create_index('ix_campaigns_tenant_id_send_at', 'campaigns', ['tenant_id', 'send_at'], unique=False)
    op.create_table('campaign_recipients',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('send_round', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f('ck_campaign_recipients_channel_known')),
    sa.CheckConstraint("status IN ('pending', 'queued', 'unsendable')", name=op.f('ck_campaign_recipients_status_known')),
    _campaign_fk('campaign_recipients'),
    _patient_fk('campaign_recipients'),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'send_round', 'patient_id', name=op.f('pk_campaign_recipients'))
    )
    op.create_index('ix_campaign_recipients_pending', 'campaign_recipients', ['tenant_id', 'campaign_id', 'send_round', 'status'], unique=False)
    op.create_table('campaign_exclusions',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('patient_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    _campaign_fk('campaign_exclusions'),
    _patient_fk('campaign_exclusions'),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'patient_id', name=op.f('pk_campaign_exclusions'))
    )
    op.create_table('campaign_list_entries',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('mobile', sa.String(length=16), nullable=True),
    sa.Column('patient_id', sa.String(length=40), nullable=True),
    _campaign_fk('campaign_list_entries'),
    _patient_fk('campaign_list_entries'),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'line', name=op.f('pk_campaign_list_entries'))
    )
    op.create_table('message_handoffs',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('provider_kind', sa.String(length=16), nullable=True),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('handed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_message_handoffs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'message_id', name=op.f('pk_message_handoffs'))
    )
    # The send ledger: a paused campaign holds its queued messages; deferrals are visible.
    op.drop_constraint(op.f('ck_messages_status_known'), 'messages', type_='check')
    op.create_check_constraint(op.f('ck_messages_status_known'), 'messages', _NEW_STATUSES)
    op.add_column('messages', sa.Column('deferred_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_messages_tenant_patient_channel_sent_at', 'messages', ['tenant_id', 'patient_id', 'channel', 'sent_at'], unique=False)
    op.add_column('messaging_preferences', sa.Column('frequency_caps', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column('messaging_preferences', sa.Column('quiet_hours_start', sa.Time(), nullable=True))
    op.add_column('messaging_preferences', sa.Column('quiet_hours_end', sa.Time(), nullable=True))
    for table in TABLES:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in TABLES:
        disable_tenant_rls(table)
    op.drop_column('messaging_preferences', 'quiet_hours_end')
    op.drop_column('messaging_preferences', 'quiet_hours_start')
    op.drop_column('messaging_preferences', 'frequency_caps')
    op.drop_index('ix_messages_tenant_patient_channel_sent_at', table_name='messages')
    op.drop_column('messages', 'deferred_until')
    op.execute("UPDATE messages SET status = 'queued' WHERE status = 'held'")
    op.drop_constraint(op.f('ck_messages_status_known'), 'messages', type_='check')
    op.create_check_constraint(op.f('ck_messages_status_known'), 'messages', _OLD_STATUSES)
    op.drop_table('message_handoffs')
    op.drop_table('campaign_list_entries')
    op.drop_table('campaign_exclusions')
    op.drop_index('ix_campaign_recipients_pending', table_name='campaign_recipients')
    op.drop_table('campaign_recipients')
    op.drop_index('ix_campaigns_tenant_id_send_at', table_name='campaigns')
    op.drop_table('campaigns')
