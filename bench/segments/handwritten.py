"""The five standard segments written by hand, as a DBA would for one location: the
yardstick the compiled rules are measured against. Each returns the matching patients'
ids for `:tenant_id`, `:location_id`, the location's `:today` and time zone `:tz`, with
exactly the meaning of the built-in template (the benchmark checks the counts agree)."""

from __future__ import annotations

_LIVE_AT_LOCATION = (
    "FROM patients p WHERE p.tenant_id = :tenant_id AND p.location_id = :location_id "
    "AND p.deleted_at IS NULL"
)
_RECALL_DUE = (
    "EXISTS (SELECT 1 FROM recalls r WHERE r.tenant_id = p.tenant_id AND r.patient_id = p.id "
    "AND r.deleted_at IS NULL AND NOT r.disabled AND r.due_date < :today)"
)
# Booked from the start of the location's today on.
_NO_FUTURE_APPOINTMENT = (
    "NOT EXISTS (SELECT 1 FROM appointments a WHERE a.tenant_id = p.tenant_id "
    "AND a.patient_id = p.id AND a.deleted_at IS NULL "
    "AND a.status IN ('scheduled', 'confirmed') "
    "AND a.start_at >= CAST(:today AS timestamp) AT TIME ZONE :tz)"
)

HANDWRITTEN: dict[str, str] = {
    "due_for_recall": (
        f"SELECT p.id {_LIVE_AT_LOCATION} AND p.status = 'active' "
        f"AND {_RECALL_DUE} AND {_NO_FUTURE_APPOINTMENT}"
    ),
    "lapsed": (
        f"SELECT p.id {_LIVE_AT_LOCATION} "
        "AND p.last_visit_date < CAST(CAST(:today AS date) - interval '13 months' AS date) "
        "AND p.last_visit_date > CAST(CAST(:today AS date) - interval '24 months' AS date) "
        "AND p.last_visit_date <= :today "
        f"AND {_NO_FUTURE_APPOINTMENT}"
    ),
    "open_treatment_plan": (
        f"SELECT p.id {_LIVE_AT_LOCATION} AND EXISTS ("
        "SELECT 1 FROM treatment_plans tp WHERE tp.tenant_id = p.tenant_id "
        "AND tp.patient_id = p.id AND tp.deleted_at IS NULL AND tp.status = 'proposed' "
        "AND NOT EXISTS (SELECT 1 FROM procedures pp WHERE pp.tenant_id = tp.tenant_id "
        "AND pp.patient_id = tp.patient_id AND pp.treatment_plan_id = tp.id "
        "AND pp.deleted_at IS NULL AND pp.status IN ('accepted', 'scheduled', 'completed')))"
    ),
    "new_patient": (
        f"SELECT p.id {_LIVE_AT_LOCATION} "
        "AND p.first_visit_date > CAST(:today AS date) - 90 AND p.first_visit_date <= :today"
    ),
    "balance_and_due": (
        f"SELECT p.id {_LIVE_AT_LOCATION} AND {_RECALL_DUE} "
        "AND COALESCE(p.guarantor_id, p.id) IN (SELECT l.guarantor_id FROM ledger_balances l "
        "WHERE l.tenant_id = :tenant_id AND l.deleted_at IS NULL "
        "GROUP BY l.guarantor_id HAVING SUM(l.balance) > 0)"
    ),
}
