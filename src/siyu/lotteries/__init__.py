"""Lotteries and samples (issue #17): prize pools, fair draws, claims at a store."""
