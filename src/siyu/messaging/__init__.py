"""Messaging (issue #18): consent, the group's contact policy, sends planned set-wise to a
segment or stage, the transactional outbox and its transports, and attribution."""
