"""Automatic tags (issue #16): a catalogue of tags computed nightly, most in the warehouse
with one Ibis expression each (`warehouse_tags`), some in the store from results already
written back or from what only the store holds (`store_tags`), all written back set-wise
with their history (`refresh`). docs/segments.md lists every tag with its rule."""

from siyu.segments.automatic.catalogue import BY_SLUG, CATALOGUE, AutoTag
from siyu.segments.automatic.refresh import (
    RefreshReport,
    TagRefresh,
    refresh_automatic_tags,
    refresh_from_location,
)

__all__ = [
    "BY_SLUG",
    "CATALOGUE",
    "AutoTag",
    "RefreshReport",
    "TagRefresh",
    "refresh_automatic_tags",
    "refresh_from_location",
]
