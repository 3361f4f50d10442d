"""`siyu coupons`: templates stored from validated documents, and coupons issued to
members, a segment or a file of ids (once per key and member); `coupons_jobs` adds expiry,
liability and the nightly run. Thin over `siyu.coupons`; amounts are stored in fen and
shown in yuan. Coupon codes are never printed: a code is what a till redeems, so a bulk
issue prints counts only."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    progress_bars,
    yuan,
)
from siyu.errors import ValidationError
from siyu.i18n import t

if TYPE_CHECKING:
    from siyu.coupons.catalog import Version
    from siyu.coupons.templates import CouponTemplate

app = typer.Typer(
    help="Coupons: templates, issue (once per key), expiry, liability, the nightly run.",
    no_args_is_help=True,
)
template_app = typer.Typer(
    help="Coupon templates: store a new version from a JSON file, list them.",
    no_args_is_help=True,
)
app.add_typer(template_app, name="template")


# --- templates ------------------------------------------------------------------------------


@template_app.command("put")
def template_put(
    file: Annotated[Path, typer.Argument(help="A coupon template document (JSON).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a template document and store it as the next version of its code (a
    refusal names the field and the rule, exit 2, and stores nothing)."""
    from siyu.coupons.catalog import save
    from siyu.coupons.templates import parse_template
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        template = parse_template(_json_file(file, "FILE"))
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            stored = save(engine, group or settings.group_id, template, None)
    if as_json:
        emit_json(
            {"code": template.code, "version": stored.version, "template_id": stored.template_id}
        )
    else:
        out.print(f"{template.code}: version {stored.version} stored")


@template_app.command("list")
def template_list(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """The newest version of each template: code, version, kind, name, face value, limits."""
    from siyu.coupons.catalog import newest
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        with engine.connect() as conn:
            versions = newest(conn, group or settings.group_id)
    if as_json:
        emit_json({"templates": [_version(v) for v in versions]})
    elif versions:
        out.print(templates_table(versions, settings.lang))
    else:
        out.print(t("coupons.none", settings.lang))


def templates_table(versions: list[Version], lang: str) -> Table:
    table = Table(title=t("coupons.templates", lang))
    for key in ("code", "version", "kind", "name", "face", "limits"):
        table.add_column(t(f"coupons.col.{key}", lang), overflow="fold")
    for v in versions:
        doc = v.template
        table.add_row(
            doc.code,
            str(v.version),
            doc.kind,
            doc.name_zh if lang == "zh" else doc.name_en,
            yuan(doc.face_value_fen),
            _limits(doc, lang),
        )
    return table


def _limits(doc: CouponTemplate, lang: str) -> str:
    caps = doc.limits.model_dump()
    shown = [
        t(f"coupons.limit.{name}", lang, n=yuan(cap) if name == "budget_fen" else f"{cap:,}")
        for name, cap in caps.items()
        if cap is not None
    ]
    return ("；" if lang == "zh" else "; ").join(shown) or t("coupons.limit.none", lang)


def _version(v: Version) -> dict[str, Any]:
    return {
        **v.template.model_dump(mode="json"),
        "version": v.version,
        "template_id": v.template_id,
    }


# --- issue ----------------------------------------------------------------------------------


@app.command("issue")
def issue_cmd(
    template: Annotated[str, typer.Argument(help="The template's code (its newest version).")],
    key: Annotated[
        str,
        typer.Option(
            help="The issue's key: the same key again issues nothing new (finishes a run "
            "that stopped half way)."
        ),
    ],
    member: Annotated[
        list[int] | None, typer.Option("--member", help="A member id (repeat for several).")
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option(help="Every member of a segment (slug or id), as last evaluated."),
    ] = None,
    members_file: Annotated[
        Path | None,
        typer.Option(
            "--members-file",
            help="Member ids, one a line, or a CSV with a member_id column (an export).",
        ),
    ] = None,
    campaign: Annotated[
        str | None, typer.Option(help="The campaign the coupons belong to (reports).")
    ] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue one coupon of TEMPLATE to each member (a merged member's goes to its
    survivor); prints how many were issued, replayed (issued before under this key) and
    refused, with the reasons."""
    from siyu.coupons.issue import issue
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors():
        given = [name for name, v in _audiences(member, segment, members_file) if v]
        if len(given) != 1:
            raise ValidationError(
                "--member", "give exactly one of --member, --segment or --members-file"
            )
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            if member:
                ids = list(member)
            elif segment is not None:
                ids = _segment_members(engine, group_id, segment)
            else:
                assert members_file is not None
                ids = member_ids_in(members_file)
            with progress_bars() as bars:
                task = bars.add_task(f"issuing {template}", total=len(ids))
                report = issue(
                    engine,
                    group_id,
                    template,
                    ids,
                    key,
                    campaign=campaign,
                    progress=lambda done, total: bars.update(task, completed=done, total=total),
                )
    refusals = dict(Counter(report.refused.values()).most_common())
    counts = report.counts
    if as_json:
        emit_json(
            {"template": report.template_code, "version": report.version, **counts}
            | {"refusals": refusals}
        )
        return
    out.print(
        f"{report.template_code} version {report.version}: issued {counts['issued']:,}, "
        f"replayed {counts['replayed']:,}, refused {counts['refused']:,}"
    )
    for reason, n in refusals.items():
        out.print(f"  refused, {reason}: {n:,}")


def _audiences(
    member: list[int] | None, segment: str | None, members_file: Path | None
) -> list[tuple[str, object]]:
    return [("--member", member), ("--segment", segment), ("--members-file", members_file)]


def _segment_members(engine: Any, group_id: str, slug_or_id: str) -> list[int]:
    from siyu.segments.stored import segment_member_ids, segment_named

    with engine.connect() as conn:
        found = segment_named(conn, group_id, slug_or_id)
        if found.archived_at is not None:
            raise ValidationError("--segment", f"{found.slug} is archived")
        if found.evaluated_at is None:
            raise ValidationError(
                "--segment", f"{found.slug} was never evaluated: run siyu segments evaluate"
            )
        return segment_member_ids(conn, group_id, found.segment_id)


def member_ids_in(path: Path) -> list[int]:
    """Member ids from a file: one a line (blank lines and `#` comments skipped), or a
    CSV whose header names a `member_id` column (what `siyu segments export` writes)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ValidationError("--members-file", f"cannot read {path}: {exc.strerror}") from None
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1)]
    rows = [(n, line) for n, line in rows if line and not line.startswith("#")]
    if rows and not rows[0][1].isdigit():
        reader = csv.DictReader(lines)
        if "member_id" not in (reader.fieldnames or []):
            raise ValidationError(
                "--members-file", "one member id a line, or a CSV with a member_id column"
            )
        rows = [(reader.line_num, (r["member_id"] or "").strip()) for r in reader]
    for n, value in rows:
        if not value.isdigit():
            raise ValidationError("--members-file", f"line {n}: {value!r} is not a member id")
    return [int(value) for _, value in rows]


def _json_file(path: Path, name: str) -> object:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(name, f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(name, f"is not JSON ({exc.msg} at line {exc.lineno})") from None
