"""GraphQL input checked by the REST models, so both APIs refuse the same things with the
same field names."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.core.errors import ValidationProblem

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any], prefix: str = "") -> M:
    """`data` through `model`: a bad value is a VALIDATION_ERROR naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": prefix + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        raise ValidationProblem(f"Check these fields: {fields}.", errors=errors) from None
