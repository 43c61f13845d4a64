"""The variables templates may use, and which of them reveal clinical detail.

Clinical variables (treatment, amounts owed) are refused in SMS unless the tenant turned
them on: a text message shows on a lock screen, where anyone nearby can read it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from api.engines.templates.render import TemplateError, TemplateProblem, placeholders


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    sample: str
    clinical: bool = False


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("patient.first_name", "The patient's first name", "Jordan"),
        Variable("patient.last_name", "The patient's last name", "Rivera"),
        Variable(
            "patient.preferred_name",
            "The name the patient goes by (their first name when none is recorded)",
            "Jo",
        ),
        Variable("office.name", "The location's name", "Main Street Dental"),
        Variable("office.phone", "The location's phone number", "(512) 555-0100"),
        Variable("office.address", "The location's address, on one line", "1 Main St, Austin, TX"),
        Variable("provider.name", "The patient's primary provider", "Dr. Avery Chen"),
        Variable(
            "recall.next_date",
            "The patient's next recall due date, as the location writes dates",
            "December 1, 2026",
        ),
        Variable("booking.link", "A link to book online at the location", "https://example.com"),
        Variable(
            "treatment.description",
            "The patient's open planned treatment (procedure names)",
            "Crown, upper left molar",
            clinical=True,
        ),
        Variable(
            "treatment.amount",
            "The fee of the patient's open planned treatment",
            "$1,250.00",
            clinical=True,
        ),
        Variable("balance", "What the patient's household owes", "$85.00", clinical=True),
    ]
}


def check_variables(
    fields: Iterable[tuple[str, str]], *, channel: str, allow_clinical_sms: bool
) -> tuple[set[str], list[TemplateProblem]]:
    """The variable names used by the (field, source) pairs, and every problem: broken
    syntax, unknown names, clinical names in SMS when the tenant has not allowed them."""
    used: set[str] = set()
    problems: list[TemplateProblem] = []
    for field, source in fields:
        try:
            found = placeholders(source, field)
        except TemplateError as exc:
            problems.extend(exc.problems)
            continue
        for placeholder in found:
            variable = VARIABLES.get(placeholder.name)
            if variable is None:
                problems.append(
                    TemplateProblem(
                        field, f"unknown variable {{{{{placeholder.name}}}}}", placeholder.name
                    )
                )
            elif variable.clinical and channel == "sms" and not allow_clinical_sms:
                problems.append(
                    TemplateProblem(
                        field,
                        f"{{{{{placeholder.name}}}}} reveals clinical detail and is refused in "
                        "SMS unless the practice allows it (messaging settings: "
                        "allow_clinical_sms)",
                        placeholder.name,
                    )
                )
            else:
                used.add(placeholder.name)
    return used, problems


def sample_values() -> dict[str, str]:
    return {name: v.sample for name, v in VARIABLES.items()}
