"""What every command shares: settings, errors (exit code 2), JSON and console output,
progress bars, the operational store's engine for the length of one command, and saving
a plan document as a draft."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from siyu.config import Settings
from siyu.errors import Doc, SiyuError, ValidationError, parse_document

if TYPE_CHECKING:
    from sqlalchemy import Engine

console = Console(stderr=True)
out = Console()

GroupOption = Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")]
WarehouseOption = Annotated[
    Path | None,
    typer.Option("--warehouse", help="DuckDB file or Parquet DIR (default SIYU_WAREHOUSE)."),
]


# The secret each store's settings were bound to in this process (`load_settings`), so
# that `open_store` records its fingerprint once the command has migrated a new store.
_BOUND: dict[str, Settings] = {}


def load_settings() -> Settings:
    """The settings, with the store's secret: generated only for a new store, refused
    (exit 2, naming the setting) when an existing store's is missing or another."""
    from siyu.store.secret import bind_secret

    try:
        settings = Settings.from_env()
        with open_store(settings.database_url) as engine:
            settings = bind_secret(engine, settings)
    except SiyuError as exc:
        fail(exc)
        raise
    _BOUND[settings.database_url] = settings
    return settings


def fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except SiyuError as exc:
        fail(exc)


def emit_json(payload: object) -> None:
    """Machine-readable output: one line on stdout, never wrapped or styled by Rich."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def progress_bars() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def progress_steps(bars: Progress) -> Callable[[str, int, int], None]:
    """A `progress(name, done, of)` callback for a service that reports its work in named
    steps (a launch, an experiment's start): a bar per step, added when it first reports."""
    tasks: dict[str, TaskID] = {}

    def step(name: str, done: int, of: int) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=of)
        bars.update(tasks[name], completed=done, total=of)

    return step


@contextmanager
def open_store(database_url: str) -> Iterator[Engine]:
    """The operational store's engine for one command, disposed at the end (its pooled
    connections closed, not left to the garbage collector)."""
    from siyu.store.engine import make_engine
    from siyu.store.secret import check_fingerprint

    engine = make_engine(database_url)
    try:
        yield engine
        bound = _BOUND.get(database_url)
        if bound is not None:  # a store this command made knows its secret from now on
            check_fingerprint(engine, bound)
    finally:
        engine.dispose()


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals, exactly (no float): 123456 -> 1,234.56."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def read_json(path: Path) -> object:
    """The JSON document in `path` (a byte-order mark allowed), or a ValidationError
    naming FILE."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError("FILE", f"cannot read a JSON document: {exc}") from None


def read_document(path: Path, model: type[Doc], name: str) -> Doc:
    """The document in `path` validated as `model` (`errors.parse_document`: a refusal
    names the field and the rule)."""
    return parse_document(model, read_json(path), name)


def save_draft(
    file: Path,
    model: type[Doc],
    name: str,
    save: Callable[[Engine, str, Doc, int | None], Any],
    group: str | None,
    as_json: bool,
) -> None:
    """Store the plan in `file` (a campaign's, an experiment's) as a draft with `save`, by
    the operator (no key), and print its code and status; a refusal names the field and
    the rule, exit 2, and stores nothing."""
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        plan = read_document(file, model, name)
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            stored = save(engine, group or settings.group_id, plan, None)
    # the stored plan is the one read (`save` answers what it stored under its code)
    code = stored.plan.code
    if as_json:
        emit_json({"code": code, "status": stored.status})
    else:
        out.print(f"{code}: {stored.status}")
