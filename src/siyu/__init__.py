"""siyu (私域): one member, one ledger and one stock across every store and channel."""

__version__ = "0.1.0"
