"""The `siyu` command. Thin: each command parses options and calls one service.

One module per group of commands; this one builds `app` (the console script's entry
point) and registers them, in the order `siyu --help` lists them.
"""

from __future__ import annotations

import typer

# analyze_warehouse adds the warehouse-fed analyses (stages, snapshot, kpis) to the analyze
# group, after its three file-fed ones, when it loads; coupons_jobs adds expire, liability
# and run to the coupons group; messages_sends and messages_jobs fill the messages group.
from siyu.cli import (
    analyze,
    analyze_warehouse,  # noqa: F401
    campaigns,
    coupons,
    coupons_jobs,  # noqa: F401
    data,
    experiments,
    guides,
    identity,
    inventory,
    keys,
    lotteries,
    loyalty,
    matching,
    messages,
    messages_jobs,  # noqa: F401
    messages_sends,  # noqa: F401
    receipts,
    scenes,
    segments,
    serve,
    tags,
    warehouse,
)

app = typer.Typer(
    name="siyu",
    help="siyu (私域): one member, one ledger and one stock across every store and channel.",
    no_args_is_help=True,
    add_completion=False,
)

app.command("migrate")(data.migrate_cmd)
app.command("generate")(data.generate_cmd)
app.command("import")(data.import_cmd)
app.command("resolve")(identity.resolve_cmd)
app.command("unmerge")(identity.unmerge_cmd)
app.command("conflicts")(identity.conflicts_cmd)
app.command("evaluate")(identity.evaluate_cmd)
app.command("match")(matching.match_cmd)
app.command("serve")(serve.serve_cmd)
app.command("demo")(serve.demo_cmd)

app.add_typer(keys.app, name="keys")
app.add_typer(analyze.app, name="analyze")
app.add_typer(loyalty.app, name="loyalty")
app.add_typer(warehouse.app, name="warehouse")
app.add_typer(inventory.app, name="inventory")
app.add_typer(guides.app, name="guides")
app.add_typer(tags.app, name="tags")
app.add_typer(segments.app, name="segments")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(experiments.app, name="experiments")
app.add_typer(coupons.app, name="coupons")
app.add_typer(scenes.app, name="scenes")
app.add_typer(lotteries.app, name="lotteries")
app.add_typer(receipts.app, name="receipts")
app.add_typer(messages.app, name="messages")

__all__ = ["app"]
