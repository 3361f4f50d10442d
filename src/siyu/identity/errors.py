"""OneID's errors: what a merge, an unmerge or the identity graph refused.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import SiyuError, ValidationError


class MergeError(SiyuError):
    code = "merge_conflict"


class GraphInputError(ValidationError, ValueError):
    """An identity-graph array broke a rule; `field` names the array."""

    code = "identity_graph_invalid"
