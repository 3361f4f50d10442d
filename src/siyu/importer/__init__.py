"""Bulk import of canonical files (CSV, JSON Lines, Parquet) into the operational store."""
