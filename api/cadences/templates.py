"""Built-in cadences. `winback` is the seed workflow: day 1 text with a booking link,
day 4 email, day 9 text, day 14 a front-desk call for anyone who has not answered, with
wording per segment variant (hygiene recare, unscheduled treatment, dormant). Messages
stay free of clinical detail, so they are fine by SMS."""

from __future__ import annotations

from typing import Any

from api.cadences.schemas import CadenceStep, CadenceTemplateOut


def _sms(body: str) -> dict[str, Any]:
    return {"channel": "sms", "body": body}


def _email(subject: str, heading: str, paragraph: str) -> dict[str, Any]:
    return {
        "channel": "email",
        "subject": subject,
        "blocks": [
            {"type": "heading", "text": heading},
            {"type": "paragraph", "text": paragraph},
            {"type": "button", "text": "Pick a time", "url": "{{booking.link}}"},
        ],
    }


_DAY_1 = {
    "default": _sms(
        "Hi {{patient.first_name}}, it's been a while! {{office.name}} would love to see you. "
        "Book in a few taps: {{booking.link}}"
    ),
    "hygiene": _sms(
        "Hi {{patient.first_name}}, you're due for your cleaning at {{office.name}}. "
        "Pick a time that suits you: {{booking.link}}"
    ),
    "unscheduled_treatment": _sms(
        "Hi {{patient.first_name}}, {{office.name}} here. When you're ready to schedule the "
        "visit we talked about, book here: {{booking.link}}"
    ),
    "dormant": _sms(
        "Hi {{patient.first_name}}, we miss you at {{office.name}}! A check-up keeps small "
        "things small. Book online: {{booking.link}}"
    ),
}
_DAY_4 = {
    "default": _email(
        "We saved you a spot, {{patient.first_name}}",
        "It's time for your next visit",
        "Hi {{patient.first_name}}, we'd love to see you again at {{office.name}}. Early "
        "morning and lunchtime appointments are open this week.",
    ),
    "hygiene": _email(
        "Your cleaning is due, {{patient.first_name}}",
        "Keep your smile on schedule",
        "Hi {{patient.first_name}}, regular cleanings catch small problems early. We have "
        "early morning appointments, and we can update your insurance when you come in.",
    ),
    "unscheduled_treatment": _email(
        "Questions about your next step, {{patient.first_name}}?",
        "We're here when you're ready",
        "Hi {{patient.first_name}}, if cost, time or comfort is holding you back, we can talk "
        "through options, including financing and shorter visits. Pick a time for a quick "
        "chat or your visit.",
    ),
    "dormant": _email(
        "It's been a while, {{patient.first_name}}",
        "Come see us again",
        "Hi {{patient.first_name}}, it has been some time since your last visit to "
        "{{office.name}}. A check-up is the easiest way to stay ahead of problems.",
    ),
}
_DAY_9 = {
    "default": _sms(
        "{{patient.first_name}}, just checking in from {{office.name}}. Reply here or book "
        "online: {{booking.link}}"
    ),
    "hygiene": _sms(
        "{{patient.first_name}}, cleaning times are filling up at {{office.name}}. Grab one "
        "here: {{booking.link}} or reply with a good day."
    ),
    "unscheduled_treatment": _sms(
        "{{patient.first_name}}, any questions before booking? Reply here and our team will "
        "help, or book: {{booking.link}}"
    ),
    "dormant": _sms(
        "{{patient.first_name}}, {{office.name}} has openings this week. Reply with a good "
        "day or book: {{booking.link}}"
    ),
}


def _step(delay: int, channel: str, variants: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    if variants is None:
        return {"delay_days": delay, "channel": channel}
    default = variants["default"]
    others = {k: v for k, v in variants.items() if k != "default"}
    return {"delay_days": delay, "channel": channel, "content": default, "variants": others}


TEMPLATES: dict[str, CadenceTemplateOut] = {
    "winback": CadenceTemplateOut(
        name="winback",
        title="Win-back: day 1 text, day 4 email, day 9 text, day 14 call",
        description="For lapsed and overdue patients. Exits the moment they book, reply or "
        "opt out; the day 14 call task goes only to those who have not answered.",
        steps=[
            CadenceStep.model_validate(s)
            for s in (
                _step(0, "sms", _DAY_1),
                _step(3, "email", _DAY_4),
                _step(8, "sms", _DAY_9),
                _step(13, "call", None),
            )
        ],
    ),
}
