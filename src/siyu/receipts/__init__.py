"""Receipts: basket-tiered rewards for purchases no POS feed reports."""
