"""Messaging's refusals."""

from __future__ import annotations

from siyu.errors import ConflictError


class SendState(ConflictError):
    """The send is not in a state that allows this (planned twice, edited after planning)."""

    code = "send_state"


class SendExists(ConflictError):
    """A send with this code exists with another body."""

    code = "send_exists"
