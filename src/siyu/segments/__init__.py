"""Segments: what a member is taken to be. The derived tags (`derived.py`), member lists
(`lists.py`), tags with their definitions, members and history (`tags.py`, `models.py`),
and the segment rule language: JSON rules (`rules.py`) compiled to one Ibis expression of
the members they select (`compile.py`; docs/segments.md). Not built yet: automatic tags
computed in the warehouse, stored segments with membership write-back, affinity."""
