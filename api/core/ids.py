"""Opaque, type-prefixed ids (`loc_01J...`): sortable by creation, readable in logs."""

from __future__ import annotations

import secrets

from ulid import ULID

PREFIXES = {
    "tenant": "ten",
    "location": "loc",
    "staff_user": "usr",
    "oauth_client": "cli",
    "oauth_token": "tok",
    "authorization_code": "acd",
    "publishable_key": "pkr",
    "job": "job",
    "event": "evt",
    "webhook_endpoint": "whe",
    "webhook_delivery": "msg",
    "webhook_attempt": "wha",
    # practice mirror and write-back outbox
    "patient": "pat",
    "provider": "prv",
    "operatory": "opr",
    "appointment_type": "atp",
    "schedule_entry": "sch",
    "appointment": "apt",
    "recall": "rcl",
    "treatment_plan": "tpl",
    "procedure": "prc",
    "ledger_balance": "ldg",
    "communication": "com",
    "opt_out": "opt",
    "writeback": "wbk",
    # segments
    "segment": "seg",
    "audience": "aud",
    "do_not_contact": "dnc",
    # messaging
    "message": "mes",
    "inbound_message": "inb",
    "sandbox_message": "sbx",
    # campaigns
    "campaign": "cmp",
    # booking and front-desk tasks
    "hold": "hld",
    "task": "tsk",
    # win-back cadences
    "cadence": "cad",
    "enrollment": "enr",
}


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{str(ULID()).lower()}"


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A credential: prefix (so secret scanners can spot it) plus URL-safe randomness."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
