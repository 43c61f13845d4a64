"""Normalising contact values the PMS holds: mobile numbers to E.164, emails to their
canonical form.

Most rows a bridge sends are already clean, and the libraries cost ~16 µs a value, which
at bulk-sync rates is most of the budget. So a strict fast path accepts what is certainly
well formed (a NANP number already in E.164 with valid area and exchange digits; a plain
ASCII dot-atom address) and everything else goes through `phonenumbers` /
`email-validator`, which also parse national formats and internationalised addresses."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_NANP_E164 = re.compile(r"\+1[2-9]\d{2}[2-9]\d{6}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_EMAIL = re.compile(
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def normalize_phone(value: str, region: str = "US") -> str:
    """`value` as E.164, or ValueError. National formats are read in `region`."""
    compact = value.strip()
    if _NANP_E164.fullmatch(compact):
        return compact
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """`value` with its domain lower-cased (and IDNA-normalised), or ValueError."""
    compact = value.strip()
    match = _PLAIN_EMAIL.fullmatch(compact)
    if match and len(compact) <= 254 and len(match["local"]) <= 64:
        return f"{match['local']}@{match['domain'].lower()}"
    try:
        return validate_email(compact, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def normalize_contact(value: str, region: str = "US") -> str:
    """An opt-out's bare contact value: an email address or a phone number."""
    return normalize_email(value) if "@" in value else normalize_phone(value, region)
