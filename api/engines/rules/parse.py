"""Validation: a rule document (parsed JSON) -> a `Rule`, or `RuleInvalid` listing every
problem with a JSON pointer into the document (`/rule/all/2/value`)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from api.engines.rules.catalog import FIELDS_BY_NAME, FieldSpec, Qualifier
from api.engines.rules.model import (
    Group,
    Node,
    Predicate,
    Qualifiers,
    Rule,
    RuleError,
    RuleInvalid,
    Scalar,
    Value,
)

SUPPORTED_VERSIONS = (1,)
MAX_DEPTH = 32
MAX_NODES = 500
MAX_LIST = 500
MAX_STRING = 200
MAX_DAYS = 36_500
MAX_MONTHS = 1_200
MAX_MONEY = Decimal("10000000000")
CODE = re.compile(r"^[A-Za-z0-9.\-]{1,16}$")
RELATIVE_DAYS = ("more_than_days_ago", "less_than_days_ago", "within_next_days")
RELATIVE_MONTHS = ("more_than_months_ago", "less_than_months_ago")
NO_VALUE = ("is_empty", "has_value", "unknown")


class _Invalid(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


class _Parser:
    def __init__(self) -> None:
        self.errors: list[RuleError] = []
        self.nodes = 0

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(RuleError(pointer, message))

    def node(self, raw: Any, pointer: str, depth: int) -> Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(pointer, f"a rule may have at most {MAX_NODES} nodes")
            return None
        if depth > MAX_DEPTH:
            self.fail(pointer, f"groups may nest at most {MAX_DEPTH} deep")
            return None
        if not isinstance(raw, dict):
            self.fail(pointer, "expected an object: a group (all / any / not) or a predicate")
            return None
        groups = [k for k in ("all", "any", "not") if k in raw]
        if groups:
            extra = sorted(set(raw) - {groups[0]})
            if len(groups) > 1 or extra:
                self.fail(pointer, "a group has exactly one key: all, any or not")
                return None
            return self.group(groups[0], raw[groups[0]], pointer, depth)
        if "field" in raw or "op" in raw:
            return self.predicate(raw, pointer)
        self.fail(pointer, "expected a group (all / any / not) or a predicate (field, op, value)")
        return None

    def group(self, kind: str, raw: Any, pointer: str, depth: int) -> Node | None:
        at = f"{pointer}/{kind}"
        if kind == "not":
            child = self.node(raw, at, depth + 1)
            return Group("not", (child,), pointer) if child is not None else None
        if not isinstance(raw, list):
            self.fail(at, f"`{kind}` takes a list of rules")
            return None
        children = [self.node(c, f"{at}/{i}", depth + 1) for i, c in enumerate(raw)]
        kept = tuple(c for c in children if c is not None)
        if len(kept) != len(children):
            return None
        return Group("all" if kind == "all" else "any", kept, pointer)

    def predicate(self, raw: dict[str, Any], pointer: str) -> Node | None:
        extra = sorted(set(raw) - {"field", "op", "value"})
        if extra:
            self.fail(f"{pointer}/{extra[0]}", "unknown key; a predicate has field, op, value")
            return None
        name = raw.get("field")
        spec = FIELDS_BY_NAME.get(name) if isinstance(name, str) else None
        if spec is None:
            self.fail(f"{pointer}/field", f"unknown field {name!r}; see GET /v1/segment-fields")
            return None
        op = raw.get("op")
        if op not in spec.operators:
            self.fail(
                f"{pointer}/op",
                f"{spec.name} ({spec.type}) takes one of: {', '.join(spec.operators)}",
            )
            return None
        try:
            value = _value(spec, op, raw, f"{pointer}/value")
        except _Invalid as exc:
            self.fail(exc.pointer, exc.message)
            return None
        return Predicate(spec.name, op, value, pointer)


def _value(spec: FieldSpec, op: str, raw: dict[str, Any], pointer: str) -> Value:
    if op in NO_VALUE:
        if raw.get("value") is not None:
            raise _Invalid(pointer, f"`{op}` takes no value")
        return None
    if "value" not in raw:
        raise _Invalid(pointer, "a value is required")
    value = raw["value"]
    if spec.type in ("number", "money"):
        if op == "between":
            low, high = _pair(value, pointer, _number)
            return (low, high)
        return _number(value, pointer)
    if spec.type == "date":
        if op in RELATIVE_DAYS:
            return _int(value, pointer, 0, MAX_DAYS)
        if op in RELATIVE_MONTHS:
            return _int(value, pointer, 0, MAX_MONTHS)
        if op == "between":
            first, last = _pair(value, pointer, _date)
            return (first, last)
        return _date(value, pointer)
    if spec.type == "string":
        return _string(value, pointer)
    if spec.type == "enum":
        return _choices(value, pointer, spec.enum_values)
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise _Invalid(pointer, "expected true or false")
        return value
    return _qualifiers(spec, value, pointer)


def _pair(value: Any, pointer: str, item: Any) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise _Invalid(pointer, "`between` takes a list of two values: [low, high]")
    low, high = item(value[0], f"{pointer}/0"), item(value[1], f"{pointer}/1")
    if low > high:
        raise _Invalid(f"{pointer}/1", "the second value must not be below the first")
    return low, high


def _number(value: Any, pointer: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(pointer, "expected a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Invalid(pointer, "expected a number") from None
    if not number.is_finite() or abs(number) >= MAX_MONEY:
        raise _Invalid(pointer, f"expected a finite number below {MAX_MONEY}")
    return number


def _int(value: Any, pointer: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(pointer, f"expected a whole number from {low} to {high}")
    return value


def _date(value: Any, pointer: str) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _Invalid(pointer, "expected a calendar date (YYYY-MM-DD)")


def _string(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_STRING:
        raise _Invalid(pointer, f"expected a non-blank string of at most {MAX_STRING} characters")
    return value


def _choices(value: Any, pointer: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise _Invalid(pointer, f"expected a list of 1 to {MAX_LIST} values")
    items: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or len(item) > MAX_STRING:
            raise _Invalid(f"{pointer}/{i}", "expected a non-empty string")
        if allowed and item not in allowed:
            raise _Invalid(f"{pointer}/{i}", f"{item!r} is not one of: {', '.join(allowed)}")
        items.append(item)
    return tuple(items)


def _qualifiers(spec: FieldSpec, value: Any, pointer: str) -> Qualifiers:
    if not isinstance(value, dict):
        raise _Invalid(pointer, "expected an object of options ({} for none)")
    pairs: list[tuple[str, Scalar | tuple[Scalar, ...]]] = []
    for name in sorted(value):
        qualifier = spec.qualifier(name)
        at = f"{pointer}/{name}"
        if qualifier is None:
            known = ", ".join(q.name for q in spec.qualifiers)
            raise _Invalid(at, f"unknown option for {spec.name}; one of: {known}")
        if value[name] is not None:
            pairs.append((name, _qualifier(qualifier, value[name], at)))
    if spec.requires_one_of and not any(n in spec.requires_one_of for n, _ in pairs):
        raise _Invalid(pointer, f"{spec.name} needs one of: {', '.join(spec.requires_one_of)}")
    return Qualifiers(tuple(pairs))


def _qualifier(qualifier: Qualifier, value: Any, pointer: str) -> Scalar | tuple[Scalar, ...]:
    kind = qualifier.kind
    if kind in ("strings", "choices", "codes"):
        items = _choices(value, pointer, qualifier.choices)
        if kind == "codes":
            for i, item in enumerate(items):
                if not CODE.match(item):
                    raise _Invalid(f"{pointer}/{i}", "a procedure code: letters, digits, . or -")
            return tuple(i.upper() for i in items)
        return tuple(i.lower() for i in items) if kind == "strings" else items
    if kind == "int":
        return _int(value, pointer, -MAX_DAYS, MAX_DAYS)
    if kind == "money":
        return _number(value, pointer)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Invalid(pointer, "expected true or false")
        return value
    if value not in qualifier.choices:
        raise _Invalid(pointer, f"expected one of: {', '.join(qualifier.choices)}")
    return str(value)


def parse_rule(document: Any) -> Rule:
    """Validate a rule document; raises `RuleInvalid` with every error found."""
    parser = _Parser()
    if not isinstance(document, dict):
        raise RuleInvalid([RuleError("", 'expected {"version": 1, "rule": {...}}')])
    extra = sorted(set(document) - {"version", "rule"})
    for key in extra:
        parser.fail(f"/{key}", "unknown key; a rule document has version and rule")
    version = document.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        parser.fail("/version", f"unsupported version; use one of {list(SUPPORTED_VERSIONS)}")
    root = None
    if "rule" not in document:
        parser.fail("/rule", "the rule is required")
    else:
        root = parser.node(document["rule"], "/rule", 0)
    if parser.errors or root is None:
        raise RuleInvalid(parser.errors or [RuleError("/rule", "invalid rule")])
    return Rule(version if isinstance(version, int) else 1, root)
