"""OneID policy: which identifiers may link members, and what one member may not hold.

Stated once here and used by both batch resolution and incremental attachment:
- Only links between two *strong* identifiers (configuration) can join members; weak
  ones (device, nickname) attach to a member but never bridge two.
- A member holds at most one WeChat unionid per open-platform account and at most one
  card per brand: one identity per (type, scope) of the exclusive types, the scope being
  the account or the brand (identity/types.py). A link that would break that is refused
  and reported as a conflict (typically a family phone typed at the till for two
  people), never merged silently.
- A member holds at most one *verified* phone at a time: two verified phones are allowed
  only when their periods do not overlap (a phone change, reported); otherwise refused.
- Verified links are applied before unverified ones, then older before newer, so the
  evidence channels proved outweighs what was typed at a till.
- An *evidence* link (a rule or a probabilistic match says two member records are one
  person) is applied after every account link and may join two members that each hold a
  card of one brand: that is one person's duplicate registration, reported as such. A
  shared phone typed at the till is an account link and never does. Unionids and verified
  phones never yield: strong-identifier conflicts win over any probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VERIFIED_PHONE_CLASS = 1
FIRST_SCOPED_CLASS = 2
# The types a member holds at most one of per scope.
EXCLUSIVE_PER_SCOPE = ("unionid", "card")
# The exclusive types an evidence link may still join two of: a second card of one brand
# is one person's duplicate registration when evidence says the records are one person.
YIELDS_TO_EVIDENCE = ("card",)


@dataclass(frozen=True)
class Held:
    """One identity a member holds, as far as the exclusivity rules care."""

    identity_id: int
    type: str
    scope: str
    verified: bool
    first_seen: int
    last_seen: int


class ClassMap:
    """Assigns exclusive classes: the verified phones one class, and each (type, scope) of
    the exclusive types one class, numbered as they appear (cards of brand B1, unionids of
    the default account, ...)."""

    def __init__(self) -> None:
        self._scoped: dict[tuple[str, str], int] = {}

    def scoped_class(self, type_name: str, scope: str) -> int:
        key = (type_name, scope)
        if key not in self._scoped:
            self._scoped[key] = FIRST_SCOPED_CLASS + len(self._scoped)
        return self._scoped[key]

    def of(self, type_name: str, scope: str, verified: bool) -> int:
        if type_name == "phone" and verified:
            return VERIFIED_PHONE_CLASS
        if type_name in EXCLUSIVE_PER_SCOPE:
            return self.scoped_class(type_name, scope)
        return -1

    def classes_arrow(
        self, types: pa.ChunkedArray, scopes: pa.ChunkedArray, verified: np.ndarray
    ) -> np.ndarray:
        """`classes` for Arrow columns, without a Python object per identity."""
        out = np.full(len(types), -1, dtype=np.int32)
        out[_mask(pc.equal(types, "phone")) & verified] = VERIFIED_PHONE_CLASS
        for type_name in EXCLUSIVE_PER_SCOPE:
            of_type = _mask(pc.equal(types, type_name))
            if not of_type.any():
                continue
            their_scopes = pc.fill_null(scopes.filter(pa.array(of_type)), "")
            distinct = pc.unique(their_scopes)
            codes = np.array(
                [self.scoped_class(type_name, s) for s in distinct.to_pylist()], dtype=np.int32
            )
            out[of_type] = codes[pc.index_in(their_scopes, value_set=distinct).to_numpy()]
        return out


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def clash(
    a: Sequence[Held], b: Sequence[Held], classes: ClassMap, evidence: bool = False
) -> tuple[Held, Held] | None:
    """The first pair of identities that may not share one member, or None; `evidence`:
    the join is an evidence link, to which cards of one brand yield."""
    for x in a:
        cx = classes.of(x.type, x.scope, x.verified)
        if cx < 0:
            continue
        for y in b:
            if x.identity_id == y.identity_id:
                continue
            if classes.of(y.type, y.scope, y.verified) != cx:
                continue
            if cx == VERIFIED_PHONE_CLASS and (
                x.last_seen < y.first_seen or y.last_seen < x.first_seen
            ):
                continue  # one phone replaced the other: allowed, reported as a change
            if evidence and x.type in YIELDS_TO_EVIDENCE:
                continue  # one person's duplicate registration: allowed, reported
            return x, y
    return None
