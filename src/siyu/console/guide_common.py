"""What the HQ guide pages (commission, classes, attribution) share: in-memory paging of a
report's rows, a CSV answer a spreadsheet cannot run as formulas, the guides' names and
stores, and a 422 page naming the bad field."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from fastapi.responses import Response
from sqlalchemy import Connection, text

from siyu.console.segment_pages import page_number
from siyu.console.web import Ctx, render, secure

PER_PAGE = 50
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def paged(
    rows: Sequence[Any], raw: str | None, per: int | None = None
) -> tuple[list[Any], int, int]:
    """One page of a report's rows: the rows, the page shown (clamped) and how many pages
    (`PER_PAGE` rows a page, read when called)."""
    per = per or PER_PAGE
    pages = max(1, -(-len(rows) // per))
    page_no = min(page_number(raw), pages)
    return list(rows[(page_no - 1) * per : page_no * per]), page_no, pages


def _cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (money stays integer fen, so a
    negative amount is a number, kept as it is)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    shown = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return "'" + shown if shown.startswith(_FORMULA) else shown


def csv_answer(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download (UTF-8 with a BOM, as the spreadsheets brands use want it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    response = Response(("\ufeff" + out.getvalue()).encode("utf-8"), media_type="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return secure(response)


def guides_of(conn: Connection, group_id: str) -> dict[str, tuple[str | None, str | None]]:
    """guide -> (store, alias) from the brand's reference data."""
    rows = conn.execute(
        text("SELECT guide_id, store_id, alias FROM guides WHERE group_id = :g"), {"g": group_id}
    )
    return {str(r.guide_id): (r.store_id, r.alias) for r in rows}


def bad_input(ctx: Ctx, message: str) -> Response:
    """A 422 page naming the field and the rule it broke."""
    return render(ctx, "error.html", status=422, title=ctx.t("gd.bad_input"), text=message)
