"""Templates meet the practice: the values a patient's message is filled with, and the
checks a template must pass (known variables, clinical ones refused in SMS unless the
tenant allows them, 260 characters for SMS). Rendering itself is api.engines.templates."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.errors import ValidationProblem
from api.core.settings import Settings
from api.engines import templates as engine
from api.messaging import repository
from api.messaging.schemas import EmailContent, SmsContent
from api.messaging.unsubscribe import public_base
from api.practice.models import Patient
from api.tenancy.models import Location


@dataclass(frozen=True)
class Rendered:
    channel: str
    text: str
    variables_used: list[str]
    subject: str | None = None
    html: str | None = None
    sms: engine.SmsLength | None = None


def problem(problems: list[engine.TemplateProblem], prefix: str = "content.") -> ValidationProblem:
    errors = [{"field": prefix + p.field, "message": p.message} for p in problems]
    names = sorted({p.variable for p in problems if p.variable})
    detail = "The template cannot be rendered"
    detail += f": check {', '.join('{{' + n + '}}' for n in names)}." if names else "."
    return ValidationProblem(detail, errors=errors, extra={"variables": names})


def template_fields(content: SmsContent | EmailContent) -> list[tuple[str, str]]:
    if isinstance(content, SmsContent):
        return [("body", content.body)]
    fields = engine.template_fields(content.subject, content.blocks)
    return [*fields, ("preheader", content.preheader)]


def check(content: SmsContent | EmailContent, allow_clinical_sms: bool) -> set[str]:
    """The variables the content uses; 422 naming each problem."""
    used, problems = engine.check_variables(
        template_fields(content), channel=content.channel, allow_clinical_sms=allow_clinical_sms
    )
    if isinstance(content, EmailContent):
        problems += engine.check_blocks(content.blocks, content.style)
    if problems:
        raise problem(problems)
    return used


def _phone(value: str | None, country: str | None) -> str:
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, country or "US")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def office_values(
    location: Location, settings: Settings, booking_key: str | None = None
) -> dict[str, str]:
    """The office's variables. `booking.link` opens the booking widget for the location,
    with the publishable key it needs when the caller found one (`booking_key`)."""
    booking_link = f"{public_base(settings)}/widget/{location.id}"
    if booking_key:
        booking_link += f"?publishable_key={booking_key}"
    address = ", ".join(
        part
        for part in (
            location.address_line1,
            location.address_line2,
            location.city,
            " ".join(p for p in (location.region, location.postal_code) if p),
        )
        if part
    )
    return {
        "office.name": location.name,
        "office.phone": _phone(location.phone, location.country),
        "office.address": address,
        "booking.link": booking_link,
    }


def _money(amount: object) -> str:
    return f"${amount:,.2f}"


async def patient_values(
    session: AsyncSession, patient: Patient, location: Location, used: set[str]
) -> dict[str, str]:
    tenant_id = patient.tenant_id
    values = {
        "patient.first_name": patient.first_name,
        "patient.last_name": patient.last_name,
        "patient.preferred_name": patient.preferred_name or patient.first_name,
    }
    # Chart look-ups only for what the template uses.
    if "provider.name" in used:
        name = None
        if patient.primary_provider_id:
            name = await repository.provider_name(session, tenant_id, patient.primary_provider_id)
        values["provider.name"] = name or location.name
    if "recall.next_date" in used:
        due = await repository.next_recall_date(session, tenant_id, patient.id)
        values["recall.next_date"] = engine.format_date(due, location.country) if due else ""
    if used & {"treatment.description", "treatment.amount"}:
        items = await repository.open_treatment(session, tenant_id, patient.id)
        values["treatment.description"] = ", ".join(d for d, _ in items)
        values["treatment.amount"] = _money(sum((f for _, f in items), start=0))
    if "balance" in used:
        balance = await repository.household_balance(
            session, tenant_id, patient.guarantor_id or patient.id
        )
        values["balance"] = _money(balance or 0)
    return values


def render(
    content: SmsContent | EmailContent,
    values: dict[str, str],
    used: set[str],
    footer: engine.Footer | None = None,
) -> Rendered:
    """Fill in `values` (checked already); SMS longer than 260 characters is a 422."""
    try:
        if isinstance(content, SmsContent):
            text = engine.render(content.body, values, field="body").strip()
            length = engine.measure(text)
            if length.characters > engine.SMS_MAX_CHARACTERS:
                raise ValidationProblem(
                    f"The text is {length.characters} characters once rendered; the most is "
                    f"{engine.SMS_MAX_CHARACTERS}.",
                    errors=[{"field": "content.body", "message": "longer than 260 characters"}],
                    extra={"characters": length.characters},
                )
            return Rendered("sms", text, sorted(used), sms=length)
        document = engine.EmailDocument(
            subject=content.subject,
            blocks=tuple(content.blocks),
            style=content.style,
            preheader=content.preheader,
        )
        email = engine.render_email(document, values, footer)
    except engine.TemplateError as exc:
        raise problem(exc.problems) from None
    return Rendered("email", email.text, sorted(used), subject=email.subject, html=email.html)


def footer_for(location: Location, unsubscribe_url: str) -> engine.Footer:
    values = office_values_plain(location)
    return engine.Footer(lines=tuple(v for v in values if v), unsubscribe_url=unsubscribe_url)


def office_values_plain(location: Location) -> list[str]:
    city = " ".join(p for p in (location.region, location.postal_code) if p)
    line2 = ", ".join(p for p in (location.city, city) if p)
    return [location.name, location.address_line1 or "", line2]


def sample_values(location: Location | None, settings: Settings) -> dict[str, str]:
    values = engine.sample_values()
    if location is not None:
        values |= {k: v for k, v in office_values(location, settings).items() if v}
    return values
