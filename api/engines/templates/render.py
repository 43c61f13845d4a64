"""The template syntax: `{{patient.first_name}}` placeholders in plain text, nothing else.

No expressions, filters or loops: a placeholder is a dotted name, replaced by a value the
caller supplies. Anything that looks like a placeholder but is not one (an unclosed `{{`,
`{{ 1 + 2 }}`) is an error, so a typo never reaches a patient as literal braces."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")


@dataclass(frozen=True)
class Placeholder:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class TemplateProblem:
    """What is wrong, and where: `field` names the template part (`body`, `blocks[2].text`)."""

    field: str
    message: str
    variable: str | None = None


class TemplateError(ValueError):
    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = list(problems)


def placeholders(source: str, field: str = "body") -> list[Placeholder]:
    """The placeholders of `source`, in order; TemplateError when the syntax is broken."""
    found: list[Placeholder] = []
    problems: list[TemplateProblem] = []
    for match in _TOKEN.finditer(source):
        name = match.group(1)
        if not _NAME.fullmatch(name):
            problems.append(
                TemplateProblem(
                    field,
                    f"{{{{{name}}}}} at character {match.start()} is not a variable name "
                    "(use names like {{patient.first_name}})",
                )
            )
            continue
        found.append(Placeholder(name, match.start(), match.end()))
    rest = _TOKEN.sub("", source)
    for marker in ("{{", "}}"):
        if marker in rest:
            problems.append(TemplateProblem(field, f"unmatched {marker!r}"))
    if problems:
        raise TemplateError(problems)
    return found


def render(
    source: str,
    values: Mapping[str, str],
    escape: Callable[[str], str] | None = None,
    field: str = "body",
) -> str:
    """`source` with each placeholder replaced by its value (escaped with `escape`, when
    given; the template's own text is left as it is). Every name must be in `values`."""
    parts: list[str] = []
    position = 0
    missing: list[TemplateProblem] = []
    for placeholder in placeholders(source, field):
        parts.append(source[position : placeholder.start])
        value = values.get(placeholder.name)
        if value is None:
            missing.append(
                TemplateProblem(
                    field, f"unknown variable {{{{{placeholder.name}}}}}", placeholder.name
                )
            )
            value = ""
        parts.append(escape(value) if escape else value)
        position = placeholder.end
    if missing:
        raise TemplateError(missing)
    parts.append(source[position:])
    return "".join(parts)
