"""Suppression: who a segment's rule matched but the audience leaves out, and why.

Each reason is a switch (all on by default) and is computed as a boolean column in the
same SQL scan as the rule (`compile_rule(..., extra_columns=...)`), so suppressing a
million patients is still one statement, and every reason is counted on its own (a
patient can be suppressed for several). The reasons, in the order a removal names the
first that applies:

* do_not_contact: on the practice's do-not-contact list (by patient, mobile or email);
* opted_out: an opt-out for the channel (or for all channels) by the patient or the
  address, from the PMS or recorded by us (STOP, one-click unsubscribe), or no consent
  for the channel in the PMS (the same test messaging applies before a send);
* inactive: the patient's status is not active (inactive, archived, deceased);
* in_collections: the guarantor's account is in collections;
* no_contact: no mobile number (SMS) or email address (email) to reach them on;
* seen_today: an appointment completed today (the location's date);
* contacted_recently: an outbound contact in the last `contacted_within_days` days, in
  the PMS's communication log or through our own sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

REASONS = (
    "do_not_contact",
    "opted_out",
    "inactive",
    "in_collections",
    "no_contact",
    "seen_today",
    "contacted_recently",
)
DEFAULT_CONTACT_WINDOW_DAYS = 14

# The address a channel reaches a patient on (the mirror keeps them normalised: E.164,
# lower-case domain), compared as is with opt-outs and do-not-contact entries.
_ADDRESS = {"sms": "p.mobile", "email": "p.email"}
_CONSENT = {"sms": "p.sms_consent", "email": "p.email_consent"}


class Suppression(BaseModel):
    """Which suppressions apply (all by default)."""

    model_config = ConfigDict(extra="forbid")

    do_not_contact: bool = Field(default=True, description="On the do-not-contact list")
    opted_out: bool = Field(
        default=True, description="Opted out of the channel (or all), or no consent for it"
    )
    inactive: bool = Field(default=True, description="Inactive, archived or deceased")
    in_collections: bool = Field(default=True, description="Guarantor account in collections")
    no_contact: bool = Field(
        default=True, description="No mobile number (SMS) or email address (email)"
    )
    seen_today: bool = Field(
        default=True, description="An appointment completed today (the location's date)"
    )
    contacted_recently: bool = Field(
        default=True, description="Contacted (outbound) within `contacted_within_days`"
    )
    contacted_within_days: int = Field(default=DEFAULT_CONTACT_WINDOW_DAYS, ge=1, le=365)

    def enabled(self) -> tuple[str, ...]:
        return tuple(r for r in REASONS if getattr(self, r))


@dataclass(frozen=True)
class SuppressionColumns:
    """`expression AS s_<reason>` items for compile_rule, and their parameters."""

    columns: tuple[str, ...]
    params: dict[str, object]
    reasons: tuple[str, ...]


# The statement's own list of locations with their "today" and zone (compile_rule binds
# them), for the reasons that depend on the location's day.
_LOCATION_DAYS = (
    "unnest(CAST(:location_ids AS text[]), CAST(:location_todays AS date[]), "
    "CAST(:location_zones AS text[])) AS ld(location_id, today, tz)"
)


def _day_start(offset_days: str) -> str:
    """The instant the location's day `today - offset` began (index-friendly)."""
    return f"(CAST(ld.today - {offset_days} AS timestamp) AT TIME ZONE ld.tz)"


def _in(value: str, subquery: str) -> str:
    """`value` is one of the sub-query's (NULL-free) values. Uncorrelated on purpose:
    PostgreSQL runs it once and probes a hash table per patient (a "hashed SubPlan"),
    where a correlated EXISTS in the select list would be one index search per patient
    and reason."""
    return f"{value} IN ({subquery})"


def _condition(reason: str, channel: str) -> str:
    address = _ADDRESS[channel]
    if reason == "do_not_contact":
        # Any entry naming the patient or either of their addresses: the list is "never
        # contact", whatever the channel.
        listed = "FROM do_not_contact_entries d WHERE d.tenant_id = :tenant_id"
        return (
            f"({_in('p.id', f'SELECT d.patient_id {listed} AND d.patient_id IS NOT NULL')} "
            f"OR {_in('p.mobile', f'SELECT d.phone {listed} AND d.phone IS NOT NULL')} "
            f"OR {_in('lower(p.email)', f'SELECT d.email {listed} AND d.email IS NOT NULL')})"
        )
    if reason == "opted_out":
        opted = (
            "FROM opt_outs o WHERE o.tenant_id = :tenant_id AND o.deleted_at IS NULL "
            "AND o.channel IN (:s_channel, 'all')"
        )
        return (
            f"(NOT COALESCE({_CONSENT[channel]}, FALSE) "
            f"OR {_in('p.id', f'SELECT o.patient_id {opted} AND o.patient_id IS NOT NULL')} "
            f"OR {_in(address, f'SELECT o.contact_value {opted} AND o.contact_value IS NOT NULL')})"
        )
    if reason == "inactive":
        return "(p.status <> 'active')"
    if reason == "in_collections":
        return _in(
            "COALESCE(p.guarantor_id, p.id)",
            "SELECT l.guarantor_id FROM ledger_balances l WHERE l.tenant_id = :tenant_id "
            "AND l.deleted_at IS NULL AND l.in_collections",
        )
    if reason == "no_contact":
        return f"({address} IS NULL OR btrim({address}) = '')"
    if reason == "seen_today":
        return _in(
            "p.id",
            f"SELECT a.patient_id FROM appointments a JOIN {_LOCATION_DAYS} "
            "ON ld.location_id = a.location_id WHERE a.tenant_id = :tenant_id "
            "AND a.deleted_at IS NULL AND a.status = 'completed' "
            f"AND a.start_at >= {_day_start('0')} AND a.start_at < {_day_start('-1')}",
        )
    since = _day_start("CAST(:s_within_days AS integer)")
    logged = _in(
        "p.id",
        f"SELECT cl.patient_id FROM communication_log cl JOIN {_LOCATION_DAYS} "
        "ON ld.location_id = cl.location_id WHERE cl.tenant_id = :tenant_id "
        "AND cl.deleted_at IS NULL AND cl.direction = 'outbound' "
        f"AND cl.contacted_at >= {since}",
    )
    sent = _in(
        "p.id",
        f"SELECT ms.patient_id FROM messages ms JOIN {_LOCATION_DAYS} "
        "ON ld.location_id = ms.location_id WHERE ms.tenant_id = :tenant_id "
        "AND ms.patient_id IS NOT NULL AND ms.status IN ('queued', 'sent', 'delivered') "
        f"AND ms.created_at >= {since}",
    )
    return f"({logged} OR {sent})"


def suppression_columns(channel: str, suppression: Suppression) -> SuppressionColumns:
    reasons = suppression.enabled()
    columns = tuple(
        f"COALESCE({_condition(reason, channel)}, FALSE) AS s_{reason}" for reason in reasons
    )
    params: dict[str, object] = {"s_channel": channel}
    if "contacted_recently" in reasons:
        params["s_within_days"] = suppression.contacted_within_days
    return SuppressionColumns(columns, params, reasons)


def first_reason_sql(reasons: tuple[str, ...], alias: str) -> str:
    """The first reason (in REASONS order) that holds for a row of `alias`, or NULL."""
    if not reasons:
        return "CAST(NULL AS text)"
    whens = " ".join(f"WHEN {alias}.s_{r} THEN '{r}'" for r in reasons)
    return f"(CASE {whens} END)"


def suppressed_sql(reasons: tuple[str, ...], alias: str) -> str:
    """True when any enabled reason holds for a row of `alias`."""
    if not reasons:
        return "FALSE"
    return "(" + " OR ".join(f"{alias}.s_{r}" for r in reasons) + ")"
