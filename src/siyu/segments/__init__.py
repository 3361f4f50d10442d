"""Segments: what a member is taken to be. The derived tags (`derived.py`), member lists
(`lists.py`), tags with their definitions, members and history (`tags.py`, `models.py`),
the segment rule language: JSON rules (`rules.py`) compiled to one Ibis expression of
the members they select (`compile.py`; docs/segments.md), and the automatic tags computed
nightly and written back (`automatic/`), stored segments with membership write-back, and
the affinity score (`affinity/`)."""
