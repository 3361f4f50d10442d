"""A demo brand built once for the tests that read its figures (`demo` in conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from siyu.demo.pipeline import DemoResult


@dataclass
class Demo:
    result: DemoResult
    engine: Engine
    snaps: dict[str, dict[str, Any]]

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.result.group_id, **params}).scalar()
