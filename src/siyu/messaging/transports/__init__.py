"""Message transports: one module per platform, registered like channels."""
