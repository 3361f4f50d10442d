"""Orders, order lines, refunds and behaviour events: the facts every channel sends."""
