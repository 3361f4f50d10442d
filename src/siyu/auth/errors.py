"""Authentication's errors (a key's scope is refused with siyu.errors.ForbiddenError).

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import SiyuError


class AuthenticationError(SiyuError):
    code = "unauthenticated"
