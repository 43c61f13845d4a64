"""Imports every model so `Base.metadata` is complete (Alembic, tests)."""

from api.audiences.models import Audience, AudienceMember, AudienceVersion, DoNotContactEntry
from api.booking.models import BookingPolicy, BookingReport, CalendarClaim, Hold
from api.cadences.models import BookingInvite, Cadence, Enrollment, StepRun
from api.campaigns.models import (
    Campaign,
    CampaignExclusion,
    CampaignListEntry,
    CampaignRecipient,
)
from api.core.infra_models import IdempotencyRecord, Job
from api.messaging.models import (
    InboundMessage,
    Message,
    MessageHandoff,
    MessagingPreferences,
    ProviderSetting,
    SandboxMessage,
)
from api.oauth2.models import AuthorizationCode, OAuthClient, OAuthToken, PublishableKey
from api.practice.connectors.models import ConnectorConfig
from api.practice.models import (
    Appointment,
    AppointmentType,
    CommunicationLog,
    LedgerBalance,
    LocationSyncState,
    Operatory,
    OptOut,
    Patient,
    Procedure,
    Provider,
    Recall,
    ScheduleEntry,
    TreatmentPlan,
    Writeback,
)
from api.segments.models import Segment
from api.tasks.models import Task
from api.tenancy.models import Location, StaffRight, StaffUser, Tenant
from api.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Appointment",
    "AppointmentType",
    "Audience",
    "AudienceMember",
    "AudienceVersion",
    "AuthorizationCode",
    "BookingInvite",
    "BookingPolicy",
    "BookingReport",
    "Cadence",
    "CalendarClaim",
    "Campaign",
    "CampaignExclusion",
    "CampaignListEntry",
    "CampaignRecipient",
    "CommunicationLog",
    "ConnectorConfig",
    "DoNotContactEntry",
    "Enrollment",
    "Event",
    "Hold",
    "IdempotencyRecord",
    "InboundMessage",
    "Job",
    "LedgerBalance",
    "Location",
    "LocationSyncState",
    "Message",
    "MessageHandoff",
    "MessagingPreferences",
    "OAuthClient",
    "OAuthToken",
    "Operatory",
    "OptOut",
    "Patient",
    "Procedure",
    "Provider",
    "ProviderSetting",
    "PublishableKey",
    "Recall",
    "SandboxMessage",
    "ScheduleEntry",
    "Segment",
    "StaffRight",
    "StaffUser",
    "StepRun",
    "Task",
    "Tenant",
    "TreatmentPlan",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Writeback",
]
