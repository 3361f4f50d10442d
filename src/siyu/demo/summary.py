"""The demo's human summary, in Chinese or English."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from siyu.config import Settings
from siyu.demo.experiment import CONTROL, TREATMENT, DemoExperiment
from siyu.demo.guide_plans import PlansReport
from siyu.demo.lifecycle import Lifecycle
from siyu.demo.marketing import MarketingReport
from siyu.demo.pipeline import DemoResult
from siyu.i18n import MESSAGES, t
from siyu.segments.automatic.catalogue import CATALOGUE

BAR = 30  # characters of a 100% rate


def _table(title: str, *columns: str) -> Table:
    tab = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        tab.add_column(c, justify="left" if i == 0 else "right")
    return tab


def print_summary(out: Console, result: DemoResult, lang: str) -> None:
    out.rule(t("demo.title", lang))
    tab = _table(
        t("table.import", lang),
        t("col.kind", lang),
        t("col.read", lang),
        t("col.accepted", lang),
        t("col.rejected", lang),
        t("col.inserted", lang),
    )
    for r in result.imports:
        tab.add_row(r.kind, f"{r.read:,}", f"{r.accepted:,}", f"{r.rejected:,}", f"{r.inserted:,}")
    out.print(tab)

    tab = _table(
        t("table.channels", lang),
        t("col.channel", lang),
        t("col.orders", lang),
        t("col.cancelled", lang),
        t("col.sales", lang),
    )
    for channel, n, fen in result.orders_by_channel:
        cancelled = result.cancelled_by_channel.get(channel, 0)
        tab.add_row(channel, f"{n:,}", f"{cancelled:,}", f"{fen / 100:,.0f}")
    out.print(tab)
    out.print(
        t(
            "demo.orders_counted",
            lang,
            total=f"{result.counted_orders + result.cancelled_orders:,}",
            cancelled=f"{result.cancelled_orders:,}",
            counted=f"{result.counted_orders:,}",
        )
    )

    tab = _table(t("table.identities", lang), t("col.type", lang), t("col.count", lang))
    for type_name, n in result.identities_by_type:
        tab.add_row(type_name, f"{n:,}")
    out.print(tab)

    tab = _table(t("table.per_member", lang), t("col.count", lang), t("col.members", lang))
    buckets = {"1": 0, "2": 0, "3": 0, "4-5": 0, "6-9": 0, "10+": 0}
    for n, members in result.identities_per_member:
        label = str(n) if n <= 3 else "4-5" if n <= 5 else "6-9" if n <= 9 else "10+"
        buckets[label] += members
    for label, members in buckets.items():
        tab.add_row(label, f"{members:,}")
    out.print(tab)

    q, res = result.quality, result.resolve
    tab = _table(t("table.quality", lang), t("col.metric", lang), t("col.value", lang))
    for key, value in (
        ("metric.identities", f"{q.identities:,}"),
        ("metric.members", f"{q.members:,}"),
        ("metric.true_persons", f"{q.true_persons:,}"),
        ("metric.precision", f"{q.precision:.4f}"),
        ("metric.recall", f"{q.recall:.4f}"),
        ("metric.f1", f"{q.f1:.4f}"),
        ("metric.merges", f"{res.merges:,}"),
        ("metric.conflicts", f"{res.conflicts:,}"),
        ("metric.phone_changes", f"{res.phone_changes:,}"),
    ):
        tab.add_row(t(key, lang), value)
    out.print(tab)

    if result.lifecycle is not None:
        print_lifecycle(out, result.lifecycle, lang)
    if result.automatic_tags:
        print_automatic_tags(out, result.automatic_tags, lang)
    if result.marketing is not None and result.marketing.campaign is not None:
        print_campaign(out, result.marketing, lang)
    if result.experiment is not None:
        print_experiment(out, result.experiment, lang)
    if result.guides is not None:
        g = result.guides
        out.print(
            t(
                "demo.guides",
                lang,
                month=g.month,
                bound=f"{g.bound:,}",
                attributed=", ".join(f"{k} {v:,}" for k, v in sorted(g.attributed.items())),
                a=g.classes.get("A", 0),
                b=g.classes.get("B", 0),
                c=g.classes.get("C", 0),
                flagged=g.flagged,
                commission=f"{g.commission_fen / 100:,.2f}",
                released=f"{g.released_fen / 100:,.2f}",
                paid=g.guides_paid,
            )
        )
        if g.plans is not None:
            print_guide_plans(out, g.plans, lang)

    tab = _table(t("table.timings", lang), t("col.step", lang), t("col.seconds", lang))
    for step, seconds in result.timings.items():
        tab.add_row(
            t(f"step.{step}", lang) if f"step.{step}" in MESSAGES else step, f"{seconds:.2f}"
        )
    out.print(tab)
    out.print(t("demo.done", lang, seconds=result.seconds, db=result.database_url))


def _stage_label(stage: str, lang: str) -> str:
    if stage.startswith("new_"):
        return f"{stage} · {t('stage.new', lang, k=stage[4:])}"
    return f"{stage} · {t(f'stage.{stage}', lang)}"


def print_lifecycle(out: Console, life: Lifecycle, lang: str) -> None:
    """The retention curve with its knee marked, the knee against the truth, the stages."""
    tab = _table(
        t("table.retention", lang, w=life.window_days),
        t("col.k", lang),
        t("col.eligible", lang),
        t("col.retained", lang),
        t("col.rate", lang),
        "",
    )
    tab.columns[-1].justify = "left"
    for r in life.curve:
        rate = "-" if r.rate is None else f"{r.rate:.1%}"
        bar = "" if r.rate is None else "█" * round(r.rate * BAR)
        mark = " ◀" if r.k == life.knee_found else ""
        tab.add_row(f"{r.k}{mark}", f"{r.eligible:,}", f"{r.retained:,}", rate, bar)
    out.print(tab)
    if life.knee_found is None:
        out.print(t("demo.no_knee", lang, true=life.knee_true))
        return
    mark = "✓" if life.knee_found == life.knee_true else "✗"
    out.print(t("demo.knee", lang, found=life.knee_found, true=life.knee_true, mark=mark))
    tab = _table(t("table.stages", lang), t("col.stage", lang), t("col.members", lang))
    for stage, members in life.stages:
        tab.add_row(_stage_label(stage, lang), f"{members:,}")
    out.print(tab)


@dataclass(frozen=True)
class DemoKey:
    """A login key the demo made: its role, the secret (shown once) and, for a store's or
    a guide's, whose it is and how many members that one has."""

    role: str
    secret: str
    scope: str = ""
    members: int = 0


def print_where(out: Console, settings: Settings, lang: str) -> None:
    """The brand group, store, warehouse and secret the demo used, and the settings that
    point later commands (siyu keys create, siyu serve, ...) at them."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{Path(url.split('///', 1)[1]).resolve()}"
    else:
        from sqlalchemy.engine import make_url

        url = make_url(url).render_as_string(hide_password=True)
    secret = settings.secret_key_file and str(Path(settings.secret_key_file).resolve())
    out.rule(t("demo.where", lang))
    for key, value in (
        ("demo.where_group", settings.group_id),
        ("demo.where_db", url),
        ("demo.where_warehouse", str(Path(settings.warehouse).resolve())),
        ("demo.where_secret", secret or "SIYU_SECRET_KEY"),
    ):
        out.print(t(key, lang, value=value), soft_wrap=True, highlight=False)
    out.print(t("demo.where_later", lang), highlight=False)
    lines = [
        f"export SIYU_DATABASE_URL='{url}'",
        f"export SIYU_GROUP='{settings.group_id}'",
        f"export SIYU_WAREHOUSE='{Path(settings.warehouse).resolve()}'",
        f"export SIYU_SECRET_KEY_FILE='{secret}'" if secret else t("demo.where_secret_env", lang),
    ]
    for line in lines:
        out.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)


def print_keys(out: Console, keys: list[DemoKey], lang: str) -> None:
    """The login keys (shown once: only their hashes are kept)."""
    for key in keys:
        line = t("demo.console_key", lang, role=key.role, secret=key.secret)
        if key.scope:
            line += t(f"demo.key_scope_{key.role}", lang, scope=key.scope, members=key.members)
        out.print(line, soft_wrap=True, highlight=False, markup=False)


def print_console(
    out: Console, url: str, keys: list[DemoKey], lang: str, missing: str | None = None
) -> None:
    """Where the console is and the keys to log in with; or, without its chart bundle,
    why only the API is served."""
    out.rule(t("demo.console", lang))
    if missing:
        out.print(t("serve.console_off", lang, why=missing), soft_wrap=True, highlight=False)
    out.print(t("demo.console_url", lang, url=url), soft_wrap=True)
    print_keys(out, keys, lang)
    out.print(t("demo.console_stop", lang))


def print_automatic_tags(out: Console, holders: dict[str, int], lang: str) -> None:
    """How many members hold each automatic tag, by the tag's name in `lang`."""
    names = {a.slug: a.name_zh if lang == "zh" else a.name_en for a in CATALOGUE}
    tab = _table(t("table.automatic_tags", lang), t("col.tag", lang), t("col.members", lang))
    for slug, size in holders.items():
        tab.add_row(names.get(slug, slug), f"{size:,}")
    out.print(tab)


def print_campaign(out: Console, marketing: MarketingReport, lang: str) -> None:
    """The demo campaign's report: the two arms side by side, then the lift and its test."""
    report = marketing.campaign
    assert report is not None
    tab = _table(
        t("table.campaign", lang, code=report.code),
        t("col.figure", lang),
        t("col.treatment", lang),
        t("col.holdout", lang),
    )
    arms = (report.treatment, report.holdout)
    tab.add_row(t("campaign.members", lang), *(f"{a.members:,}" for a in arms))
    tab.add_row(t("campaign.buyers", lang), *(f"{a.buyers:,}" for a in arms))
    tab.add_row(
        t("campaign.revenue", lang), *(f"{a.revenue_per_member_fen / 100:,.2f}" for a in arms)
    )
    tab.add_row(t("campaign.redeemed", lang), f"{report.redemptions:,}", "0")
    out.print(tab)
    if report.incremental_revenue_fen is not None and report.ci95_per_member_fen is not None:
        low, high = report.ci95_per_member_fen
        out.print(
            t(
                "campaign.lift",
                lang,
                lift=f"{report.incremental_revenue_fen / 100:,.0f}",
                low=f"{low / 100:,.2f}",
                high=f"{high / 100:,.2f}",
                p=f"{report.p_value:.2f}",
                cost=f"{report.cost_fen / 100:,.0f}",
            )
        )
    elif report.note:
        out.print(report.note)
    if marketing.draws:
        out.print(
            t(
                "campaign.draws",
                lang,
                draws=", ".join(f"{k} {v}" for k, v in marketing.draws.items()),
            )
        )


def print_experiment(out: Console, run: DemoExperiment, lang: str) -> None:
    """The stage experiment: per metric, the true effect beside the measured relative
    lift and its 95% interval, and whether the interval holds the truth."""
    tab = _table(
        t(
            "table.experiment",
            lang,
            code=run.code,
            stage=run.stage,
            start=f"{run.started_at:%Y-%m-%d}",
            days=run.window_days,
        ),
        t("col.metric", lang),
        t("col.true_effect", lang),
        t("col.lift", lang),
        t("col.ci95", lang),
        t("col.contains", lang),
    )
    for e in run.effects:
        tab.add_row(
            t(f"metric.{e.metric}", lang),
            f"{e.relative:+.1%}",
            f"{e.measured.estimate:+.1%}",
            f"[{e.measured.ci_low:+.1%}, {e.measured.ci_high:+.1%}]",
            "✓" if e.contained else "✗",
        )
    out.print(tab)
    for e in run.effects:
        if not e.contained:
            fmt = _per_member(e.metric)
            out.print(
                t(
                    "experiment.missed",
                    lang,
                    metric=t(f"metric.{e.metric}", lang),
                    before=fmt(e.untreated_absolute),
                    effect=fmt(e.absolute),
                )
            )
            break  # the same draw explains every metric's miss
    out.print(
        t(
            "experiment.arms",
            lang,
            control=f"{run.arms.get(CONTROL, 0):,}",
            treated=f"{run.arms.get(TREATMENT, 0):,}",
            eligible=f"{run.eligible:,}",
            back=f"{run.answered:,}",
            uplift=f"{run.uplift:.0%}",
            redeemed=f"{run.redeemed:,}",
        )
    )


def print_guide_plans(out: Console, plans: PlansReport, lang: str) -> None:
    """HQ's task, the programme's stage in force with its met counts, the training."""
    task, stage = plans.task, plans.stage
    if task.note:
        out.print(t("demo.guide_task_note", lang, code=task.code, why=task.note))
    if stage is None:
        return
    out.print(
        t(
            "demo.guide_plans",
            lang,
            code=task.code,
            tasks=f"{task.tasks:,}",
            guides=f"{task.guides:,}",
            held_out=f"{task.held_out:,}",
            no_guide=f"{task.no_guide:,}",
            stage=stage.name_zh if lang == "zh" else stage.name_en,
            starts=stage.starts_on,
            met=f"{stage.met:,}",
            measured=f"{stage.guides:,}",
            by_metric=", ".join(
                f"{_metric_label(k, lang)} {v:,}" for k, v in stage.met_by_metric.items()
            ),
            training=len(plans.training),
        ),
        highlight=False,
    )


def _metric_label(metric: str, lang: str) -> str:
    key = f"guide_metric.{metric}"
    return t(key, lang) if key in MESSAGES else metric


def _per_member(metric: str) -> Callable[[float], str]:
    """A per-member difference as the table's reader reads it: yuan for revenue, else a
    share of the members."""
    if metric == "revenue_fen":
        return lambda fen: f"¥{fen / 100:+,.2f}"
    return lambda share: f"{share:+.1%}"
