"""One stock across stores and online channels: levels, movements, reservations, outbox."""
