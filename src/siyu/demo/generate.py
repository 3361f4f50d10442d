"""`generate()`: write a synthetic brand group with its ground truth, chunk by chunk.

Memory is bounded by `chunk_persons`: each chunk of persons is drawn, bought for, turned
into rows and appended to the Parquet files before the next one starts. Only the set of
typo phones (~3% of cards) and the nickname owners (a small pool) live across chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siyu.demo import words
from siyu.demo.accounts import build_accounts
from siyu.demo.buying import buy, survival
from siyu.demo.calendar import build_calendar
from siyu.demo.catalog import build_catalog, write_reference_csv
from siyu.demo.config import GeneratorConfig
from siyu.demo.events import build_events, scene_values
from siyu.demo.ids import NICKNAME, IdSpace
from siyu.demo.people import BLOCK, draw_persons
from siyu.demo.rand import Rng
from siyu.demo.render import Renderer
from siyu.demo.truth import truth_json, write_truth_json
from siyu.demo.truthlog import NicknameOwners, TruthLog, split_nicknames
from siyu.demo.writer import Sink


@dataclass(frozen=True)
class GenerateReport:
    """What `generate` wrote: the directory, rows per file (relative path) and seconds taken."""

    out_dir: Path
    rows: dict[str, int]
    seconds: float


def generate(
    out_dir: Path, config: GeneratorConfig, progress: Callable[[int, int], None] | None = None
) -> GenerateReport:
    """Write reference CSVs, Parquet facts and truth/ into `out_dir`.

    `progress(done_persons, total_persons)` is called after each chunk. The same config
    gives byte-identical files; `chunk_persons` changes memory use, not content.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    cal = build_calendar(config)
    catalog = build_catalog(config.seed, config.start)
    ids = IdSpace(
        config.seed, words.nicknames(config.nickname_pool), config.members, config.card_range
    )
    rng = Rng(config.seed)
    surv = survival(config)
    render = Renderer(ids, catalog, scene_values(catalog), rng)
    rows = write_reference_csv(catalog, out_dir)
    chunk = -(-config.chunk_persons // BLOCK) * BLOCK  # households never straddle chunks
    typos_seen: set[int] = set()
    nicknames = NicknameOwners(config.nickname_pool)
    with Sink(out_dir) as sink:
        for lo in range(0, config.members, chunk):
            hi = min(lo + chunk, config.members)
            persons = draw_persons(rng, config, cal, catalog, ids, lo, hi)
            bought = buy(rng, config, cal, catalog, persons, surv)
            log = TruthLog()
            o = bought.orders
            log.add(o.buyer_type, o.buyer_key, o.buyer_owner, o.ordered_at)
            accounts = build_accounts(
                rng, config, cal, catalog, persons, bought, ids, render.spellings, typos_seen, log
            )
            events = build_events(rng, config, cal, catalog, persons, bought, accounts, log)

            order_id = render.order_ids(persons, o)
            sink.write("members", render.members(persons, accounts.members))
            sink.write("identities", render.identities(accounts.identities))
            sink.write("orders", render.orders(o, order_id))
            sink.write("order_lines", render.lines(bought.lines, order_id))
            sink.write("refunds", render.refunds(persons, o, bought.refunds, order_id))
            sink.write("events", render.events(persons, events, order_id))
            strong, nick = split_nicknames(log.resolve())
            nicknames.update(*nick)
            sink.write("truth/identity_truth", render.identity_truth(*strong))
            sink.write("truth/persons", render.persons(persons, bought))
            sink.write("truth/members", render.member_truth(persons, accounts.members))
            if progress is not None:
                progress(hi, config.members)
        keys, owners = nicknames.resolved()
        nick_types = np.full(len(keys), NICKNAME, dtype=np.int64)
        sink.write("truth/identity_truth", render.identity_truth(nick_types, keys, owners))
    rows.update(sink.rows)
    write_truth_json(out_dir / "truth" / "truth.json", truth_json(config, cal, catalog, rows))
    return GenerateReport(out_dir=out_dir, rows=rows, seconds=time.perf_counter() - started)
