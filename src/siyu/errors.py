"""Errors shared by every domain. Each names the value and the rule it broke."""

from __future__ import annotations


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
