"""The loyalty ledger: points, stored value, tiers; double-entry and append-only."""
