"""Derived tags: what the store's facts already say about a member, read when asked and
never stored (the lifecycle stage, tiers, channels used, OneID merges). Faces render each
tag's label; the tag itself is language-free."""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from siyu.catalog.models import ONLINE_CHANNELS

STAGE = "stage"
TIER = "tier"
MULTICHANNEL = "multichannel"
ONLINE_OFFLINE = "online_offline"
MERGED = "merged"


@dataclass(frozen=True)
class DerivedTag:
    """`kind` names the rule; `value` is what it found (the stage, a tier code, how many
    channels), None when the kind says it all."""

    kind: str
    value: str | int | None = None


def derived_tags(
    stage: str | None, tier_codes: Iterable[str], channels: Set[str], merged: bool
) -> list[DerivedTag]:
    """The member's derived tags, in the order they are shown: its stage (if computed),
    each tier, then several channels, online and offline both, and merged by OneID."""
    tags = []
    if stage is not None:
        tags.append(DerivedTag(STAGE, stage))
    tags.extend(DerivedTag(TIER, code) for code in tier_codes)
    if len(channels) > 1:
        tags.append(DerivedTag(MULTICHANNEL, len(channels)))
    if channels & ONLINE_CHANNELS and channels - ONLINE_CHANNELS:
        tags.append(DerivedTag(ONLINE_OFFLINE))
    if merged:
        tags.append(DerivedTag(MERGED))
    return tags
