"""The demo brand's day-to-day: loyalty and stock made real, so the console has a ledger
and shelves to show.

`seed_operations` runs after the import and OneID of the demo pipeline:

1. **Settle** every order (`ledger.jobs.settle_orders`, in batches): points earned by the
   rules, refunds clawed back, tiers upgraded as of the latest order of the data.
2. **Spend**: a seeded share of the members who bought something tops up stored value
   (储值) and pays with it, and a share of those holding points redeems some, through the
   ledger's own postings (`post_many`), so statements are not only earnings.
3. **Stock**: every store, counter and warehouse becomes a stock location (a store's
   coordinates are its city's, nudged per store); each holds every SKU of its brand, set
   by a count movement (`inventory.stock.move`, the outbox announced in the same
   transaction). Online channels ship from locations so that ATP per channel means
   something: the marketplaces (Tmall, JD, Douyin, Youzan) from the warehouses only, with
   5 units of safety stock; the brand's own channels (mini-program, official account,
   WeCom) from the warehouses and the stores (ship-from-store and pickup; supermarket
   counters are left out), with 1.

Everything is keyed (`demo:...`) and drawn from a hash of the data's seed and the row's
own ids, never from the order of a query: a second run finds every key taken and changes
nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.catalog.models import CHANNELS
from siyu.inventory.stock import announce, move
from siyu.ledger.batch import post_many
from siyu.ledger.jobs import SettleReport, settle_orders
from siyu.ledger.models import POINTS
from siyu.ledger.points import spend_item
from siyu.ledger.posting import Item, Request, Result
from siyu.ledger.stored_value import pay_item, top_up_item
from siyu.store.times import stored_now, stored_time

Progress = Callable[[str, int, int], None]  # (step, done, total)
BATCH = 500

TOP_UP_SHARE = 0.08  # of the members who ordered
TOP_UPS_FEN = (20_000, 50_000, 100_000, 200_000)  # 200 to 2,000 yuan
BONUS_PERCENT = {20_000: 0, 50_000: 5, 100_000: 10, 200_000: 15}
REDEEM_SHARE = 0.25  # of the members holding at least REDEEM_MIN spendable points
REDEEM_MIN = 300
MARKETPLACES = tuple(c for c, kind in CHANNELS.items() if kind == "marketplace")
OWN_CHANNELS = tuple(c for c, kind in CHANNELS.items() if kind == "private_domain")
SAFETY_STOCK = {**dict.fromkeys(MARKETPLACES, 5), **dict.fromkeys(OWN_CHANNELS, 1)}
# city -> (lat, lon) in microdegrees: the city centre; a store is placed within ~5 km
CITY_CENTRES = {
    "上海": (31_230_400, 121_473_700),
    "杭州": (30_274_100, 120_155_100),
    "南京": (32_060_300, 118_796_900),
    "北京": (39_904_200, 116_407_400),
    "广州": (23_129_100, 113_264_400),
    "深圳": (22_543_100, 114_057_900),
    "成都": (30_572_800, 104_066_800),
    "武汉": (30_592_800, 114_305_500),
}


@dataclass
class OperationsReport:
    settle: SettleReport
    top_ups: int = 0
    payments: int = 0
    redemptions: int = 0
    refused: int = 0  # postings the ledger refused (an overdraft): left out, not retried
    locations: int = 0  # stock locations created by this run
    channel_locations: int = 0
    stock_counts: int = 0  # SKU x location levels set by this run
    units: int = 0  # units those counts put on the shelves
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("settle", "timings")}
        out["settle"] = vars(self.settle)
        out["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        return out


def seed_operations(
    engine: Engine, group_id: str, data_dir: Path, progress: Progress | None = None
) -> OperationsReport:
    """Settle, spend and stock the demo brand in `data_dir` (already imported into
    `group_id` and resolved). Safe to run again: nothing changes the second time."""
    seed = _seed(data_dir)
    step = progress or (lambda _s, _d, _t: None)
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"), {"g": group_id}
        ).scalar()
    as_of = stored_time(last) if last is not None else stored_now()

    started = time.perf_counter()
    settled = settle_orders(engine, group_id, lambda d, t: step("settle", d, t), now=as_of)
    report = OperationsReport(settled)
    report.timings["settle"] = time.perf_counter() - started

    started = time.perf_counter()
    _spend(engine, group_id, seed, report, step)
    report.timings["spend"] = time.perf_counter() - started

    started = time.perf_counter()
    _stock(engine, group_id, seed, report, step)
    report.timings["stock"] = time.perf_counter() - started
    return report


def _seed(data_dir: Path) -> int:
    truth = data_dir / "truth" / "truth.json"
    if truth.is_file():
        return int(json.loads(truth.read_text(encoding="utf-8"))["seed"])
    return 0


def _draw(seed: int, *what: object) -> float:
    """A uniform number in [0, 1) named by the seed and `what`: the same every run,
    whatever order the rows come in."""
    digest = hashlib.blake2b(":".join(map(str, (seed, *what))).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def _spend(
    engine: Engine, group_id: str, seed: int, report: OperationsReport, step: Progress
) -> None:
    now = stored_now()
    with engine.connect() as conn:
        buyers = [
            int(m)
            for m in conn.execute(
                text("""SELECT DISTINCT member_id FROM orders WHERE group_id = :g
                        AND member_id IS NOT NULL ORDER BY member_id"""),
                {"g": group_id},
            ).scalars()
        ]
        done = set(
            conn.execute(
                text("""SELECT idempotency_key FROM ledger_postings WHERE group_id = :g
                        AND idempotency_key LIKE 'demo:%'"""),
                {"g": group_id},
            ).scalars()
        )
        # points that can be spent now (lots not yet past their date)
        spendable = {
            int(m): int(n)
            for m, n in conn.execute(
                text("""SELECT member_id, SUM(remaining) FROM point_lots
                        WHERE group_id = :g AND remaining > 0 AND expires_at > :now
                        GROUP BY member_id"""),
                {"g": group_id, "now": now},
            )
        }
        balances = {
            int(m): int(b)
            for m, b in conn.execute(
                text("""SELECT member_id, balance FROM ledger_accounts WHERE group_id = :g
                        AND owner = 'member' AND asset = :a"""),
                {"g": group_id, "a": POINTS},
            )
        }
    items: list[tuple[str, Item]] = []
    for member in buyers:
        if _draw(seed, "stored_value", member) < TOP_UP_SHARE:
            paid = TOP_UPS_FEN[int(_draw(seed, "top_up", member) * len(TOP_UPS_FEN))]
            bonus = paid * BONUS_PERCENT[paid] // 100
            key = f"demo:top_up:{member}"
            request = Request(group_id, member, "top_up", key, {"paid_fen": paid}, channel="pos")
            items.append(("top_up", top_up_item(request, paid, bonus)))
            # one to three payments of 10-30% of what was paid in
            for i in range(1 + int(_draw(seed, "payments", member) * 3)):
                amount = paid * (10 + int(_draw(seed, "pay", member, i) * 21)) // 100
                key = f"demo:pay:{member}:{i}"
                fields = {"amount_fen": amount}
                request = Request(group_id, member, "pay", key, fields, channel="pos")
                items.append(("pay", pay_item(request, amount)))
        # a redemption of about half of what can be spent, in hundreds; never into a debt
        held = min(spendable.get(member, 0), max(balances.get(member, 0), 0))
        if held >= REDEEM_MIN and _draw(seed, "redeem", member) < REDEEM_SHARE:
            points = held // 2 // 100 * 100
            key = f"demo:redeem:{member}"
            request = Request(group_id, member, "spend", key, {"points": points}, reason="gift")
            items.append(("redeem", spend_item(request, points)))
    todo = [(kind, item) for kind, item in items if item[0].idempotency_key not in done]
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        outcomes = post_many(engine, [item for _, item in chunk])
        for (kind, _), outcome in zip(chunk, outcomes, strict=True):
            if not isinstance(outcome, Result):
                report.refused += 1
            elif not outcome.replayed:
                if kind == "top_up":
                    report.top_ups += 1
                elif kind == "pay":
                    report.payments += 1
                else:
                    report.redemptions += 1
        step("spend", start + len(chunk), len(todo))


def _stock(
    engine: Engine, group_id: str, seed: int, report: OperationsReport, step: Progress
) -> None:
    now = stored_now()
    with engine.begin() as conn:
        stores = conn.execute(
            text("""SELECT store_id, brand_id, city, kind FROM stores WHERE group_id = :g
                    ORDER BY store_id"""),
            {"g": group_id},
        ).all()
        report.locations = _locations(conn, group_id, seed, stores)
        report.channel_locations = _channels(conn, group_id, stores)
        skus_of: dict[str, list[str]] = {}
        for sku, brand in conn.execute(
            text("SELECT sku, brand_id FROM products WHERE group_id = :g ORDER BY sku"),
            {"g": group_id},
        ):
            skus_of.setdefault(brand, []).append(sku)
        counted = set(
            conn.execute(
                text("""SELECT idempotency_key FROM stock_movements WHERE group_id = :g
                        AND idempotency_key LIKE 'demo:count:%'"""),
                {"g": group_id},
            ).scalars()
        )
        on_hand = {
            (r.sku, r.location_id): int(r.on_hand)
            for r in conn.execute(
                text("SELECT sku, location_id, on_hand FROM stock_levels WHERE group_id = :g"),
                {"g": group_id},
            )
        }
        wanted = [
            (store, sku)
            for store in stores
            for sku in skus_of.get(store.brand_id, [])
            if f"demo:count:{store.store_id}:{sku}" not in counted
        ]
        touched: set[str] = set()
        for i, (store, sku) in enumerate(wanted, start=1):
            units = _units(seed, store.kind, store.store_id, sku)
            location = store.store_id
            move(
                conn,
                group_id,
                sku,
                location,
                "count",
                units - on_hand.get((sku, location), 0),
                0,
                now,
                reason="demo: opening count",
                idempotency_key=f"demo:count:{location}:{sku}",
            )
            touched.add(sku)
            report.stock_counts += 1
            report.units += units
            if i % 1000 == 0 or i == len(wanted):
                step("stock", i, len(wanted))
        # one ATP event per SKU and channel, with the counts (the transactional outbox)
        announce(conn, group_id, sorted(touched), now)


def _units(seed: int, kind: str, location: str, sku: str) -> int:
    """On hand: a warehouse holds cases, a store a shelf (sometimes empty), a counter in
    a supermarket a few."""
    draw = _draw(seed, "stock", location, sku)
    if kind == "warehouse":
        return 80 + int(draw * 520)
    if draw < 0.08:
        return 0  # out of stock: the console's ATP shows what that does
    return 1 + int(draw * (15 if kind == "counter" else 40))


def _locations(conn: Connection, group_id: str, seed: int, stores: Sequence[Any]) -> int:
    rows = []
    for s in stores:
        lat, lon = CITY_CENTRES.get(s.city, (None, None))
        if lat is not None and lon is not None:
            lat += int((_draw(seed, "lat", s.store_id) - 0.5) * 90_000)
            lon += int((_draw(seed, "lon", s.store_id) - 0.5) * 100_000)
        warehouse = s.kind == "warehouse"
        rows.append(
            {
                "g": group_id,
                "l": s.store_id,
                "k": "warehouse" if warehouse else "store",
                "s": None if warehouse else s.store_id,
                "c": s.city,
                "lat": lat,
                "lon": lon,
            }
        )
    return _insert_new(
        conn,
        """INSERT INTO stock_locations (group_id, location_id, kind, store_id, city, lat_e6,
             lon_e6) VALUES (:g, :l, :k, :s, :c, :lat, :lon)
           ON CONFLICT (group_id, location_id) DO NOTHING""",
        rows,
    )


def _channels(conn: Connection, group_id: str, stores: Sequence[Any]) -> int:
    warehouses = [s.store_id for s in stores if s.kind == "warehouse"]
    shops = [s.store_id for s in stores if s.kind == "store"]
    rows = [
        {"g": group_id, "c": channel, "l": location}
        for channel in (*MARKETPLACES, *OWN_CHANNELS)
        for location in (warehouses if channel in MARKETPLACES else warehouses + shops)
    ]
    added = _insert_new(
        conn,
        """INSERT INTO channel_locations (group_id, channel, location_id)
           VALUES (:g, :c, :l) ON CONFLICT (group_id, channel, location_id) DO NOTHING""",
        rows,
    )
    _insert_new(
        conn,
        """INSERT INTO channel_safety_stock (group_id, channel, units) VALUES (:g, :c, :u)
           ON CONFLICT (group_id, channel) DO NOTHING""",
        [{"g": group_id, "c": c, "u": u} for c, u in SAFETY_STOCK.items()],
    )
    return added


def _insert_new(conn: Connection, statement: str, rows: list[dict[str, Any]]) -> int:
    """Insert what is not there yet; returns how many rows were new."""
    return sum(conn.execute(text(statement), row).rowcount for row in rows)
