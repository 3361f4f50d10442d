"""Probabilistic OneID: weak evidence (names, birth dates, addresses, typo'd phones) scored
by a trained model, merged above the auto threshold or queued for review below it."""
