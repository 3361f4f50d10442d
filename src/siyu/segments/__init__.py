"""Segments: what a member is taken to be. The derived tags (`derived.py`), member lists
(`lists.py`), and the segment rule language: JSON rules (`rules.py`) compiled to one Ibis
expression of the members they select (`compile.py`; docs/segments.md)."""
