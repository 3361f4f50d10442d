"""OneID's errors: what a merge, an unmerge or the identity graph refused.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError, NotFoundError, SiyuError, ValidationError


class MergeError(SiyuError):
    code = "merge_conflict"


class GraphInputError(ValidationError, ValueError):
    """An identity-graph array broke a rule; `field` names the array."""

    code = "identity_graph_invalid"


class ReviewNotFound(NotFoundError):
    """No match review of that id in the brand group."""

    code = "review_not_found"

    def __init__(self, review_id: int) -> None:
        self.review_id = review_id
        super().__init__(f"review_id: no match review {review_id}")


class ReviewDecided(ConflictError):
    """The review was decided already (or its merge undone): a decision is made once."""

    code = "review_decided"

    def __init__(self, review_id: int, status: str) -> None:
        self.review_id, self.status = review_id, status
        super().__init__(
            f"review_id: review {review_id} is {status}; only a pending review can be "
            "accepted or rejected"
        )


class StrongConflict(MergeError):
    """A pair (matched, or merged by hand) the OneID policy refuses to make one member:
    each holds an identifier of a kind one member may hold once (a unionid, a verified
    phone in use). Strong identifiers win over a probability and over a hand merge, which
    batch OneID could not keep; answered 409 `merge_conflict`."""

    def __init__(self, member_a: int, member_b: int, type_: str, x: int, y: int) -> None:
        self.member_a, self.member_b, self.type = member_a, member_b, type_
        super().__init__(
            f"members {member_a} and {member_b}: one member cannot hold two {type_} "
            f"identities (identities {x} and {y}); a strong identifier wins over a match "
            "or a hand merge"
        )
