"""Operational store: the SQLAlchemy engine, the table metadata and the migrations."""
