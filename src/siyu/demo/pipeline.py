"""`siyu demo`: generate a brand group, import it, resolve OneID, measure against truth,
then land the orders in a DuckDB warehouse and find the knee of retention by order count
beside the generator's true knee, and stage every member from it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from siyu.analytics.landing import land
from siyu.analytics.snapshot import compute_snapshots, save_snapshots
from siyu.analytics.stages import StageConfig
from siyu.config import Settings
from siyu.demo.config import DEFAULT_UPLIFT, GeneratorConfig
from siyu.demo.experiment import DemoExperiment, run_experiment
from siyu.demo.generate import generate
from siyu.demo.guides import GuidesReport, seed_guides
from siyu.demo.lifecycle import Lifecycle, stage_members
from siyu.demo.marketing import MarketingReport, seed_marketing
from siyu.demo.operations import seed_operations
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.matching.run import MatchReport, run_matching
from siyu.identity.quality import Quality, evaluate_against_truth
from siyu.identity.resolve import ResolveReport
from siyu.identity.service import resolve_all
from siyu.importer.service import ImportReport, ensure_group, import_directory
from siyu.privacy import Vault
from siyu.segments.automatic.refresh import refresh_from_location
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade
from siyu.store.secret import bind_secret, check_fingerprint

Hook = Callable[[str], None]


@dataclass
class DemoResult:
    database_url: str
    data_dir: str
    quality: Quality
    resolve: ResolveReport
    imports: list[ImportReport]
    timings: dict[str, float] = field(default_factory=dict)
    orders_by_channel: list[tuple[str, int, int]] = field(default_factory=list)
    # cancelled orders (never paid) per channel: imported, but analytics never count them
    cancelled_by_channel: dict[str, int] = field(default_factory=dict)
    identities_by_type: list[tuple[str, int]] = field(default_factory=list)
    identities_per_member: list[tuple[int, int]] = field(default_factory=list)
    lifecycle: Lifecycle | None = None
    group_id: str = ""
    snapshot_kinds: list[str] = field(default_factory=list)  # what the console can show
    automatic_tags: dict[str, int] = field(default_factory=dict)  # slug -> members holding it
    # the settings the demo ran on: its store and that store's secret (never printed)
    settings: Settings = field(default_factory=Settings)
    # OneID's quality before the probabilistic pass, and what the pass did
    deterministic: Quality | None = None
    matched: MatchReport | None = None
    marketing: MarketingReport | None = None  # the demo campaign, its redemptions, draws
    experiment: DemoExperiment | None = None  # the stage experiment and its true effect
    guides: GuidesReport | None = None  # own guides, attribution, classes, commission

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    @property
    def cancelled_orders(self) -> int:
        return sum(self.cancelled_by_channel.values())

    @property
    def counted_orders(self) -> int:
        """Orders the analytics and the console count: imported minus cancelled."""
        return sum(n for _, n, _ in self.orders_by_channel) - self.cancelled_orders

    def as_json(self) -> dict[str, Any]:
        q = self.quality
        return {
            "identities": q.identities,
            "members": q.members,
            "true_persons": q.true_persons,
            "precision": round(q.precision, 6),
            "recall": round(q.recall, 6),
            "f1": round(q.f1, 6),
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "conflicts": self.resolve.conflicts,
            "phone_changes": self.resolve.phone_changes,
            "merges": self.resolve.merges,
            "strong_identifiers_only": None
            if self.deterministic is None
            else {
                "precision": round(self.deterministic.precision, 6),
                "recall": round(self.deterministic.recall, 6),
                "f1": round(self.deterministic.f1, 6),
            },
            "probabilistic": None
            if self.matched is None
            else {
                "records": self.matched.records,
                "pairs_scored": self.matched.pairs_scored,
                "merges": self.matched.merges,
                "queued_for_review": self.matched.queued,
                "conflicts_after_pass": self.matched.refused,
            },
            "imports": {
                r.kind: {
                    "read": r.read,
                    "accepted": r.accepted,
                    "rejected": r.rejected,
                    "inserted": r.inserted,
                }
                for r in self.imports
            },
            "orders_by_channel": {c: n for c, n, _ in self.orders_by_channel},
            "orders_cancelled": self.cancelled_orders,
            "orders_counted": self.counted_orders,
            "database_url": self.database_url,
            "group": self.group_id,
            "secret": self.settings.secret_origin,
            "snapshot": self.snapshot_kinds,
            "automatic_tags": self.automatic_tags,
            "campaign": None
            if self.marketing is None or self.marketing.campaign is None
            else {
                **self.marketing.campaign.as_dict(),
                "since": self.marketing.campaign.since.isoformat(),
                "until": self.marketing.campaign.until.isoformat(),
                "draws": self.marketing.draws,
            },
            "experiment": None if self.experiment is None else self.experiment.as_json(),
            "guides": None if self.guides is None else asdict(self.guides),
            **(self.lifecycle.as_json() if self.lifecycle is not None else {}),
        }


def run_demo(
    settings: Settings,
    members: int,
    seed: int,
    workdir: Path,
    database_url: str | None = None,
    on_step: Hook | None = None,
    generate_progress: Callable[[int, int], None] | None = None,
    uplift: float = DEFAULT_UPLIFT,
) -> DemoResult:
    """The whole path on a fresh embedded database (unless `database_url` is given).

    The secret is the one `settings` carries or, when it carries only a key file (see
    `Settings.from_env`), generated into that file for the fresh store.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / f"brand-{members}-{seed}"
    if database_url is None:
        database_url = demo_database_url(workdir)
        db_file = Path(database_url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    timings: dict[str, float] = {}

    def lap(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started

    step = on_step or (lambda _: None)
    started = time.perf_counter()
    step("generate")
    generate(data_dir, GeneratorConfig(members=members, seed=seed), generate_progress)
    lap("generate", started)

    engine = make_engine(database_url)
    settings = bind_secret(engine, replace(settings, database_url=database_url))
    upgrade(engine)
    check_fingerprint(engine, settings)
    vault = Vault(settings.secret_key)
    group = f"demo-{seed}"
    ensure_group(engine, group, "山海集团 (demo)")
    started = time.perf_counter()
    step("import")
    imports = import_directory(engine, vault, group, data_dir, workdir / "rejects")
    lap("import", started)

    started = time.perf_counter()
    step("resolve")
    resolved = resolve_all(engine, group, settings.strong_identity_types)
    lap("resolve", started)

    truth_file = data_dir / "truth" / "identity_truth.parquet"
    started = time.perf_counter()
    deterministic = evaluate_against_truth(engine, group, truth_file, IdentifierEncoder(vault))
    lap("evaluate_strong", started)

    # the probabilistic pass (Splink) on the weak evidence the strong identifiers leave:
    # mistyped phones, second registrations, names written another way
    started = time.perf_counter()
    step("match")
    matched = run_matching(engine, vault, group, settings.strong_identity_types)
    lap("match", started)

    started = time.perf_counter()
    step("evaluate")
    quality = evaluate_against_truth(engine, group, truth_file, IdentifierEncoder(vault))
    lap("evaluate", started)

    # a stage experiment assigned WINDOW_DAYS before the data's end, on the stages as of
    # then, and the generator's second phase: the treatment's true effect, imported
    warehouse = workdir / "siyu-demo.duckdb"
    started = time.perf_counter()
    step("experiment")
    experiment = run_experiment(
        engine, vault, group, data_dir, workdir, warehouse, uplift=uplift, seed=seed
    )
    lap("experiment", started)

    # part of the last step for the progress display; timed on its own
    started = time.perf_counter()
    lifecycle = stage_members(engine, group, warehouse, data_dir)
    lap("analyze", started)

    started = time.perf_counter()
    step("operations")
    seed_operations(engine, group, data_dir)
    lap("operations", started)

    started = time.perf_counter()
    step("snapshot")
    kinds = _snapshot(engine, group, warehouse, lifecycle)
    lap("snapshot", started)

    # the automatic tags, computed in the warehouse the snapshot landed and written back,
    # so Member 360 and the tag pages show who is who (and why) from the first visit
    started = time.perf_counter()
    step("tags")
    tags = refresh_from_location(engine, warehouse, group)
    lap("tags", started)

    # a coupon template, a campaign with a holdout, redemptions on real orders, a lottery
    started = time.perf_counter()
    step("marketing")
    marketing = seed_marketing(engine, group, seed)
    lap("marketing", started)

    # the last full month's guides: own guides bound, orders attributed, classes, commission
    started = time.perf_counter()
    step("guides")
    guides = seed_guides(engine, group)
    lap("guides", started)
    result = DemoResult(database_url, str(data_dir), quality, resolved, imports, timings)
    result.deterministic, result.matched = deterministic, matched
    result.lifecycle = lifecycle
    result.group_id = group
    result.snapshot_kinds = kinds
    result.automatic_tags = {t.slug: t.size for t in tags.tags}
    result.marketing = marketing
    result.experiment = experiment
    result.guides = guides
    result.settings = replace(settings, group_id=group, warehouse=str(warehouse))
    _summaries(engine, group, result)
    engine.dispose()
    return result


def demo_database_url(workdir: Path) -> str:
    """The demo's own embedded store, made afresh by every run."""
    return f"sqlite:///{(workdir / 'siyu-demo.db').resolve()}"


def _summaries(engine: Engine, group: str, result: DemoResult) -> None:
    g = {"g": group}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT channel, COUNT(*),"
                " COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 0 ELSE paid_fen END), 0),"
                " SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END)"
                " FROM orders WHERE group_id = :g GROUP BY channel ORDER BY 2 DESC, 1"
            ),
            g,
        ).all()
        result.orders_by_channel = [(r[0], int(r[1]), int(r[2])) for r in rows]
        result.cancelled_by_channel = {r[0]: int(r[3] or 0) for r in rows}
        result.identities_by_type = [
            (r[0], int(r[1]))
            for r in conn.execute(
                text(
                    "SELECT type, COUNT(*) FROM identities WHERE group_id = :g "
                    "GROUP BY type ORDER BY 2 DESC"
                ),
                g,
            )
        ]
        result.identities_per_member = [
            (int(r[0]), int(r[1]))
            for r in conn.execute(
                text(
                    "SELECT n, COUNT(*) FROM (SELECT member_id, COUNT(*) AS n FROM identities "
                    "WHERE group_id = :g GROUP BY member_id) per GROUP BY n ORDER BY n"
                ),
                g,
            )
        ]


def _snapshot(engine: Engine, group: str, warehouse: Path, life: Lifecycle) -> list[str]:
    """Land the rest of the facts (lines, refunds) and compute the console's snapshot
    with the knee and window the demo found; the stages are already written."""
    land(engine, group, warehouse)
    config = StageConfig(knee=life.knee_found, window_days=life.window_days)
    payloads = compute_snapshots(engine, group, warehouse, config, write_stages=False)
    save_snapshots(engine, group, payloads)
    return sorted(payloads)
