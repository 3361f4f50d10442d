"""The campaigns' refusals."""

from __future__ import annotations

from siyu.errors import ConflictError


class CampaignState(ConflictError):
    """The campaign is not in a state that allows this (launched twice, edited after
    launch)."""

    code = "campaign_state"
