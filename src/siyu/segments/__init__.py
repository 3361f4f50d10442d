"""Segments: what a member is taken to be. Today the derived tags (`derived.py`); rule
based and manual tags, segment rules and affinity come with the tags issue."""
