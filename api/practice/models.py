"""The practice mirror's tables (split by topic; import them from here)."""

from api.practice.models_chart import (
    CommunicationLog,
    LedgerBalance,
    OptOut,
    Procedure,
    Recall,
    TreatmentPlan,
)
from api.practice.models_people import AppointmentType, Operatory, Patient, Provider
from api.practice.models_schedule import Appointment, ScheduleEntry
from api.practice.models_sync import LocationSyncState, Writeback

__all__ = [
    "Appointment",
    "AppointmentType",
    "CommunicationLog",
    "LedgerBalance",
    "LocationSyncState",
    "Operatory",
    "OptOut",
    "Patient",
    "Procedure",
    "Provider",
    "Recall",
    "ScheduleEntry",
    "TreatmentPlan",
    "Writeback",
]
