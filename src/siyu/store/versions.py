"""Validated documents kept in every version: coupon templates, receipt reward rules.

HQ writes a document under a code; each write is the next version, none is ever changed,
the newest applies to what comes next, and a row that used a version (a coupon, a
receipt) keeps its id. One table shape serves every kind: `<id>, group_id, code, version,
body, key_id, created_at`, unique on (group_id, code, version). Versions never change, so a
body is parsed once per process (the cache is keyed by the body's text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Table, text

from siyu.errors import NotFoundError
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

Doc = TypeVar("Doc", bound=BaseModel)
Stored = tuple[int, int, Doc]  # (row id, version, document)


class Versions(Generic[Doc]):
    def __init__(self, table: Table, id_column: str, model: type[Doc], field: str, label: str):
        self.table, self.id_column = table, id_column
        self.field, self.label = field, label  # for "template: no coupon template 'X'"
        self.parsed: Callable[[str], Doc] = lru_cache(maxsize=1024)(
            lambda body: model.model_validate(json.loads(body))
        )

    def save_in(
        self, conn: Connection, group_id: str, code: str, doc: Doc, key_id: int | None
    ) -> Stored[Doc]:
        """Store `doc` as the next version of `code`, on the caller's transaction."""
        number = int(
            conn.execute(
                text(f"""SELECT COALESCE(MAX(version), 0) + 1 FROM {self.table.name}
                         WHERE group_id = :g AND code = :c"""),
                {"g": group_id, "c": code},
            ).scalar_one()
        )
        row_id = conn.execute(
            self.table.insert()
            .values(
                group_id=group_id,
                code=code,
                version=number,
                body=doc.model_dump_json(),
                key_id=key_id,
                created_at=stored_now(),
            )
            .returning(self.table.c[self.id_column])
        ).scalar_one()
        return int(row_id), number, doc

    def current(self, conn: Connection, group_id: str, code: str) -> Stored[Doc]:
        """The newest version of `code`; `NotFoundError` naming the field when none."""
        row = conn.execute(
            text(f"""SELECT {self.id_column}, version, body FROM {self.table.name}
                     WHERE group_id = :g AND code = :c ORDER BY version DESC LIMIT 1"""),
            {"g": group_id, "c": code},
        ).first()
        if row is None:
            raise NotFoundError(f"{self.field}: no {self.label} {code!r}")
        return int(row[0]), int(row.version), self.parsed(row.body)

    def in_force(self, conn: Connection, group_id: str, code: str, at: datetime) -> Stored[Doc]:
        """The version of `code` in force at `at` (a stored time): the newest saved before
        it; when `at` is before every save, none was in force then and the newest applies
        (the document as HQ puts it now, as before versions were read by time);
        `NotFoundError` naming the field when `code` has no version at all."""
        row = conn.execute(
            text(f"""SELECT {self.id_column}, version, body FROM {self.table.name}
                     WHERE group_id = :g AND code = :c
                     ORDER BY CASE WHEN created_at < :at THEN 0 ELSE 1 END, version DESC
                     LIMIT 1"""),
            {"g": group_id, "c": code, "at": dialect_of(conn).time_param(at)},
        ).first()
        if row is None:
            raise NotFoundError(f"{self.field}: no {self.label} {code!r}")
        return int(row[0]), int(row.version), self.parsed(row.body)

    def by_id(self, conn: Connection, row_id: int) -> Doc:
        """The version a row used (versions never change)."""
        body = conn.execute(
            text(f"SELECT body FROM {self.table.name} WHERE {self.id_column} = :i"), {"i": row_id}
        ).scalar_one()
        return self.parsed(body)

    def newest(self, conn: Connection, group_id: str) -> list[Stored[Doc]]:
        """The newest version of every code of the group, by code."""
        rows = conn.execute(
            text(f"""SELECT t.{self.id_column}, t.version, t.body FROM {self.table.name} t
                     WHERE t.group_id = :g AND t.version = (
                       SELECT MAX(v.version) FROM {self.table.name} v
                       WHERE v.group_id = t.group_id AND v.code = t.code)
                     ORDER BY t.code"""),
            {"g": group_id},
        ).all()
        return [(int(r[0]), int(r.version), self.parsed(r.body)) for r in rows]
