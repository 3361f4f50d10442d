"""Synthetic brand generator: `siyu generate` writes a brand group's data with its ground truth."""
