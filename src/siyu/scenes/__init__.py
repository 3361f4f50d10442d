"""QR scenes: parameterised codes (scene value → store, guide, campaign, poster,
counter), the scans that bring members, and what each scene's members are worth
(issue #17)."""
