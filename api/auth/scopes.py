"""OAuth2 scopes. They mirror the Dentrix security rights where one exists, and staff
rights are named after the scope they allow."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    COMMUNICATIONS_REVIEW = "communications:review"
    COMMUNICATIONS_MANAGE = "communications:manage"
    AUDIENCES_READ = "audiences:read"
    PATIENTS_READ = "patients:read"
    PMS_SYNC = "pms:sync"
    SCHEDULE_READ = "schedule:read"
    APPOINTMENTS_WRITE = "appointments:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    TASKS_MANAGE = "tasks:manage"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.COMMUNICATIONS_REVIEW: (
        'Mirrors the Dentrix right "Review Communications setup": read segments, audience '
        "counts, campaigns, cadences, results and dashboards."
    ),
    Scope.COMMUNICATIONS_MANAGE: (
        'Mirrors the Dentrix right "Manage Communications setup": create, edit, delete, '
        "duplicate, pause and resume campaigns, cadences and segments."
    ),
    Scope.AUDIENCES_READ: "Pull audience members with their contact details (export).",
    Scope.PATIENTS_READ: "Read the practice mirror (patients and their chart data).",
    Scope.PMS_SYNC: "PMS bridge: push chart data, take and acknowledge write-backs.",
    Scope.SCHEDULE_READ: "Read slots and appointments.",
    Scope.APPOINTMENTS_WRITE: "Place holds, book, reschedule and cancel appointments.",
    Scope.WEBHOOKS_MANAGE: "Manage webhook endpoints, read the delivery log, redeliver and replay.",
    Scope.TASKS_MANAGE: "Work the front-desk task list (call tasks, booking exceptions).",
}

ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope)

# The Dentrix right each scope mirrors, shown on the consent page.
DENTRIX_RIGHTS: dict[Scope, str] = {
    Scope.COMMUNICATIONS_REVIEW: "Review Communications setup",
    Scope.COMMUNICATIONS_MANAGE: "Manage Communications setup",
}


def parse_scopes(value: str | None) -> list[str]:
    """A space-separated scope string -> the list, in canonical order, without duplicates."""
    requested = set((value or "").split())
    return [s for s in ALL_SCOPES if s in requested]


def unknown_scopes(values: list[str] | set[str]) -> list[str]:
    return sorted(set(values) - set(ALL_SCOPES))
