"""OneID policy: which identifiers may link members, and what one member may not hold.

Stated once here and used by both batch resolution and incremental attachment:
- Only links between two *strong* identifiers (configuration) can join members; weak
  ones (device, nickname) attach to a member but never bridge two.
- A member holds at most one WeChat unionid and at most one card per brand. A link that
  would break that is refused and reported as a conflict (typically a family phone
  typed at the till for two people), never merged silently.
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

UNIONID_CLASS = 0
VERIFIED_PHONE_CLASS = 1
FIRST_CARD_CLASS = 2


@dataclass(frozen=True)
class Held:
    """One identity a member holds, as far as the exclusivity rules care."""

    identity_id: int
    type: str
    brand_id: str | None
    verified: bool
    first_seen: int
    last_seen: int


class ClassMap:
    """Assigns exclusive classes; card classes are numbered per brand as brands appear."""

    def __init__(self, brands: Sequence[str] = ()) -> None:
        self._cards: dict[str, int] = {}
        for brand in sorted(brands):
            self.card_class(brand)

    def card_class(self, brand_id: str | None) -> int:
        key = brand_id or ""
        if key not in self._cards:
            self._cards[key] = FIRST_CARD_CLASS + len(self._cards)
        return self._cards[key]

    def of(self, type_name: str, brand_id: str | None, verified: bool) -> int:
        if type_name == "unionid":
            return UNIONID_CLASS
        if type_name == "phone" and verified:
            return VERIFIED_PHONE_CLASS
        if type_name == "card":
            return self.card_class(brand_id)
        return -1

    def classes_arrow(
        self, types: pa.ChunkedArray, brands: pa.ChunkedArray, verified: np.ndarray
    ) -> np.ndarray:
        """`classes` for Arrow columns, without a Python object per identity."""
        out = np.full(len(types), -1, dtype=np.int32)
        out[_mask(pc.equal(types, "unionid"))] = UNIONID_CLASS
        out[_mask(pc.equal(types, "phone")) & verified] = VERIFIED_PHONE_CLASS
        is_card = _mask(pc.equal(types, "card"))
        if is_card.any():
            card_brands = pc.fill_null(brands.filter(pa.array(is_card)), "")
            distinct = pc.unique(card_brands)
            codes = np.array(
                [self.card_class(b or None) for b in distinct.to_pylist()], dtype=np.int32
            )
            out[is_card] = codes[pc.index_in(card_brands, value_set=distinct).to_numpy()]
        return out


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def clash(
    a: Sequence[Held], b: Sequence[Held], classes: ClassMap, evidence: bool = False
) -> tuple[Held, Held] | None:
    """The first pair of identities that may not share one member, or None; `evidence`:
    the join is an evidence link, to which cards of one brand yield."""
    for x in a:
        cx = classes.of(x.type, x.brand_id, x.verified)
        if cx < 0:
            continue
        for y in b:
            if x.identity_id == y.identity_id:
                continue
            if classes.of(y.type, y.brand_id, y.verified) != cx:
                continue
            if cx == VERIFIED_PHONE_CLASS and (
                x.last_seen < y.first_seen or y.last_seen < x.first_seen
            ):
                continue  # one phone replaced the other: allowed, reported as a change
            if evidence and cx >= FIRST_CARD_CLASS:
                continue  # one person's duplicate registration: allowed, reported
            return x, y
    return None
