"""The chart: recalls (recare), treatment plans and procedures, the guarantor ledger,
the communication log and opt-outs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.practice.models_base import MirrorColumns, mirror_table_args, ref
from api.practice.models_people import _one_of

TREATMENT_PLAN_STATUSES = ("proposed", "accepted", "rejected", "completed", "inactive")
PROCEDURE_STATUSES = ("proposed", "accepted", "scheduled", "completed")
CHANNELS = ("sms", "email", "phone", "letter")
DIRECTIONS = ("outbound", "inbound")
OPT_OUT_CHANNELS = ("sms", "email", "phone", "letter", "all")


class Recall(MirrorColumns, Base):
    """A recare: the patient is due for `recall_type` every `interval_months`."""

    __tablename__ = "recalls"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        Index("ix_recalls_tenant_due_date", "tenant_id", "due_date"),
        Index("ix_recalls_tenant_patient", "tenant_id", "patient_id"),
    )

    patient_id: Mapped[str] = mapped_column(String(40))
    # prophy, perio, fluoride, bitewings, ... as the PMS names its recare types.
    recall_type: Mapped[str] = mapped_column(String(32))
    interval_months: Mapped[int | None] = mapped_column(Integer)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class TreatmentPlan(MirrorColumns, Base):
    __tablename__ = "treatment_plans"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        _one_of("status", TREATMENT_PLAN_STATUSES),
        Index("ix_treatment_plans_tenant_patient", "tenant_id", "patient_id"),
    )

    patient_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    presented_date: Mapped[dt.date | None] = mapped_column(Date)


class Procedure(MirrorColumns, Base):
    __tablename__ = "procedures"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        ref("providers", "provider_id"),
        ref("treatment_plans", "treatment_plan_id"),
        _one_of("status", PROCEDURE_STATUSES),
        Index("ix_procedures_tenant_patient_status", "tenant_id", "patient_id", "status"),
        Index("ix_procedures_tenant_code", "tenant_id", "code"),
    )

    patient_id: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str | None] = mapped_column(String(40))
    treatment_plan_id: Mapped[str | None] = mapped_column(String(40))
    # CDT code, e.g. D0120.
    code: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(300))
    tooth: Mapped[str | None] = mapped_column(String(8))
    surface: Mapped[str | None] = mapped_column(String(16))
    fee: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16))
    planned_date: Mapped[dt.date | None] = mapped_column(Date)
    completed_date: Mapped[dt.date | None] = mapped_column(Date)


class LedgerBalance(MirrorColumns, Base):
    """A guarantor's account: what the household owes and how old it is."""

    __tablename__ = "ledger_balances"
    __table_args__ = mirror_table_args(
        ref("patients", "guarantor_id"),
        Index("ix_ledger_balances_tenant_guarantor", "tenant_id", "guarantor_id"),
    )

    guarantor_id: Mapped[str] = mapped_column(String(40))
    balance: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    in_collections: Mapped[bool] = mapped_column(Boolean, default=False)
    aging_0_30: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    aging_31_60: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    aging_61_90: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    aging_over_90: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))


class CommunicationLog(MirrorColumns, Base):
    """A contact with a patient recorded in the PMS (suppression: "contacted lately")."""

    __tablename__ = "communication_log"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        _one_of("channel", CHANNELS),
        _one_of("direction", DIRECTIONS),
        Index("ix_communication_log_tenant_patient_at", "tenant_id", "patient_id", "contacted_at"),
    )

    patient_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(8))
    contacted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(32), default="pms")
    # recall, statement, marketing, reminder, ...
    kind: Mapped[str | None] = mapped_column(String(32))


class OptOut(MirrorColumns, Base):
    """A patient, or a bare contact value (E.164 number, email), that asked not to be
    contacted on a channel."""

    __tablename__ = "opt_outs"
    __table_args__ = mirror_table_args(
        ref("patients", "patient_id"),
        _one_of("channel", OPT_OUT_CHANNELS),
        CheckConstraint(
            "patient_id IS NOT NULL OR contact_value IS NOT NULL", name="patient_or_contact"
        ),
        Index("ix_opt_outs_tenant_patient", "tenant_id", "patient_id"),
        Index("ix_opt_outs_tenant_contact_value", "tenant_id", "contact_value"),
    )

    patient_id: Mapped[str | None] = mapped_column(String(40))
    contact_value: Mapped[str | None] = mapped_column(String(254))
    channel: Mapped[str] = mapped_column(String(8))
    opted_out_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(32), default="pms")
