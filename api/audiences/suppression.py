"""Suppression: who a segment's rule matched but the audience leaves out, and why.

Each reason is a switch (all on by default). The rule's matches are staged in a
temporary table and each reason is one set-based UPDATE flagging them (never a Python
loop over patients), so every reason is counted on its own (a patient can be suppressed
for several). The reasons, in the order a removal names the
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
# lower-case domain), compared as is with opt-outs.
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
class SuppressionPlan:
    """How to stage the rule's matches and flag them.

    `columns` (for compile_rule) copy what the flags read into the staging table
    `audience_candidates` (one row per match) and start every flag FALSE; each of
    `statements` is then one UPDATE setting a flag for the rows a list names. Set
    operations over a table with statistics plan as hash or index joins; the same tests as
    sub-queries in the rule's select list became one sub-query run per patient at a
    million patients (a list too big to hash is scanned again for every row)."""

    columns: tuple[str, ...]
    statements: tuple[str, ...]
    params: dict[str, object]
    reasons: tuple[str, ...]


def _flag(reason: str, condition: str) -> str:
    return (
        f"UPDATE audience_candidates c SET s_{reason} = TRUE WHERE NOT c.s_{reason} AND {condition}"
    )


def _day_start(offset_days: str) -> str:
    """The instant the location's day `today - offset` began (index-friendly)."""
    return f"(CAST(c.today - {offset_days} AS timestamp) AT TIME ZONE c.tz)"


def _statements(reason: str) -> list[str]:
    if reason == "do_not_contact":
        # Any entry naming the patient or either of their addresses: the list is "never
        # contact", whatever the channel.
        listed = "FROM do_not_contact_entries d WHERE d.tenant_id = :tenant_id"
        return [
            _flag(reason, f"c.patient_id IN (SELECT d.patient_id {listed})"),
            _flag(reason, f"c.mobile IN (SELECT d.phone {listed})"),
            _flag(reason, f"lower(c.email) IN (SELECT d.email {listed})"),
        ]
    if reason == "opted_out":
        opted = (
            "FROM opt_outs o WHERE o.tenant_id = :tenant_id AND o.deleted_at IS NULL "
            "AND o.channel IN (:s_channel, 'all')"
        )
        return [
            _flag(reason, "NOT COALESCE(c.consent, FALSE)"),
            _flag(reason, f"c.patient_id IN (SELECT o.patient_id {opted})"),
            _flag(reason, f"c.address IN (SELECT o.contact_value {opted})"),
        ]
    if reason == "inactive":
        return [_flag(reason, "c.status <> 'active'")]
    if reason == "in_collections":
        return [
            _flag(
                reason,
                "c.guarantor IN (SELECT l.guarantor_id FROM ledger_balances l "
                "WHERE l.tenant_id = :tenant_id AND l.deleted_at IS NULL AND l.in_collections)",
            )
        ]
    if reason == "no_contact":
        return [_flag(reason, "(c.address IS NULL OR btrim(c.address) = '')")]
    if reason == "seen_today":
        return [
            _flag(
                reason,
                "EXISTS (SELECT 1 FROM appointments a WHERE a.tenant_id = :tenant_id "
                "AND a.patient_id = c.patient_id AND a.deleted_at IS NULL "
                f"AND a.status = 'completed' AND a.start_at >= {_day_start('0')} "
                f"AND a.start_at < {_day_start('-1')})",
            )
        ]
    since = _day_start("CAST(:s_within_days AS integer)")
    return [
        _flag(
            reason,
            "EXISTS (SELECT 1 FROM communication_log cl WHERE cl.tenant_id = :tenant_id "
            "AND cl.patient_id = c.patient_id AND cl.deleted_at IS NULL "
            f"AND cl.direction = 'outbound' AND cl.contacted_at >= {since})",
        ),
        _flag(
            reason,
            "EXISTS (SELECT 1 FROM messages ms WHERE ms.tenant_id = :tenant_id "
            "AND ms.patient_id = c.patient_id "
            "AND ms.status IN ('queued', 'sent', 'delivered') "
            f"AND ms.created_at >= {since})",
        ),
    ]


def suppression_plan(channel: str, suppression: Suppression) -> SuppressionPlan:
    reasons = suppression.enabled()
    columns = (
        "t.today AS today",
        "t.tz AS tz",
        "p.status AS status",
        "p.mobile AS mobile",
        "p.email AS email",
        f"{_ADDRESS[channel]} AS address",
        f"{_CONSENT[channel]} AS consent",
        "COALESCE(p.guarantor_id, p.id) AS guarantor",
        *(f"FALSE AS s_{reason}" for reason in reasons),
    )
    statements = tuple(sql for reason in reasons for sql in _statements(reason))
    params: dict[str, object] = {"s_channel": channel}
    if "contacted_recently" in reasons:
        params["s_within_days"] = suppression.contacted_within_days
    return SuppressionPlan(columns, statements, params, reasons)


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
