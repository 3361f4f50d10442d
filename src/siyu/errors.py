"""Errors shared by every domain. Each names the value and the rule it broke."""

from __future__ import annotations

from typing import TypeVar

import pydantic

Doc = TypeVar("Doc", bound=pydantic.BaseModel)


class SiyuError(Exception):
    """Base of every error siyu raises on purpose; `code` is stable for API clients."""

    code = "siyu_error"


class ConfigError(SiyuError):
    code = "config_invalid"


class ValidationError(SiyuError):
    """A value broke a rule. `field` names the field, `rule` the rule."""

    code = "validation_failed"

    def __init__(self, field: str, rule: str, value: object = None) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"{field}: {rule}")


class NotFoundError(SiyuError):
    code = "not_found"


class ForbiddenError(SiyuError):
    """The thing exists but is outside what the caller may see or do (another store's,
    guide's or person's member): answered 403."""

    code = "forbidden"


class ConflictError(SiyuError):
    """The request is valid but the state refuses it (a balance too low, a key reused):
    answered 409, and nothing was applied."""

    code = "conflict"


def parse_document(model: type[Doc], doc: object, name: str) -> Doc:
    """A parsed JSON document as `model`, or a ValidationError naming the first field that
    breaks a rule (`name` when the rule spans the document), the others after it: the
    path of the CLI and of anything reading a file (the API lets FastAPI report every
    field)."""
    try:
        return model.model_validate(doc)
    except pydantic.ValidationError as exc:
        found = [(".".join(map(str, e["loc"])) or name, e["msg"]) for e in exc.errors()]
        (field, rule), others = found[0], found[1:]
        raise ValidationError(field, rule + "".join(f"; {f}: {r}" for f, r in others)) from None
