"""Reference data: the brand group, its stores and warehouses, products and shopping guides.

Small (a few hundred rows) and drawn from a `numpy.random.Generator` seeded by the config
seed; the per-person generators look stores, products and guides up by array index.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from siyu.demo import words
from siyu.demo.rand import F64, I64

SKILL_WEIGHT = {"A": 3.0, "B": 1.5, "C": 0.6}  # better guides sell more
SKILL_SHARE = (("A", 0.2), ("B", 0.5), ("C", 0.3))
WAREHOUSE_CITIES = ((0, 0), (0, 4), (0, 3), (1, 0), (2, 1))  # (brand, city) of each warehouse


@dataclass(frozen=True)
class Catalog:
    """Reference rows plus index arrays for vectorised look-ups."""

    brand_ids: list[str]
    brand_names: list[str]
    brand_share: F64  # cumulative primary-brand weights
    lines_cum: F64  # (brands, 4) cumulative weights of 1..4 lines per order
    qty_cum: F64  # (brands, 3) cumulative weights of qty 1..3
    city_names: list[str]
    city_regions: list[str]
    city_cum: F64
    store_ids: list[str]
    store_brand: I64
    store_city: I64
    store_kind: list[str]
    store_name: list[str]
    store_opened: list[date]
    home_off: I64  # (brands, cities): first physical store of the brand in the city
    home_cnt: I64  # (brands, cities): how many
    warehouse: I64  # (brands, cities): store index of the warehouse serving the city
    sku: list[str]
    sku_brand: I64
    sku_name: list[str]
    sku_category: list[str]
    sku_price: I64
    sku_off: I64  # (brands,) first sku of each brand
    sku_cum: list[F64]  # per brand: cumulative popularity of its skus
    guide_ids: list[str]
    guide_store: I64
    guide_alias: list[str]
    guide_hired: list[date]
    guide_skill: list[str]
    guide_off: I64  # (stores,) first guide of each store (guides sorted by store)
    guide_cnt: I64
    guide_cum: F64  # cumulative skill weights over all guides (sorted by store)

    def arrow(self, name: str) -> pa.Array:
        """A string column of the catalog as an Arrow array (for `pyarrow.compute.take`)."""
        values: list[str] = getattr(self, name)
        return pa.array(values, type=pa.string())


def build_catalog(seed: int, start: date) -> Catalog:
    """The brand group: 3 brands, stores in 8 cities, ~50-200 SKUs per brand, guides."""
    rng = np.random.default_rng([seed, 0xCA7A])
    n_brands, n_cities = len(words.BRANDS), len(words.CITIES)
    city_share = np.array([c[2] for c in words.CITIES])
    store_rows: list[tuple[int, int, str, str]] = []  # brand, city, kind, name
    for b, brand in enumerate(words.BRANDS):
        for c, (city, _region, share, districts) in enumerate(words.CITIES):
            count = max(1, round(share * brand[4] + rng.normal(0, 0.7)))
            for i in range(count):
                district = districts[i % len(districts)]
                counter = b == 1 and i % 4 == 3
                suffix = (
                    f"{district}超市专柜" if counter else f"{district}{i // len(districts) + 1}店"
                )
                store_rows.append(
                    (b, c, "counter" if counter else "store", f"{brand[1]}{city}{suffix}")
                )
    home_off = np.zeros((n_brands, n_cities), dtype=np.int64)
    home_cnt = np.zeros((n_brands, n_cities), dtype=np.int64)
    for i, (b, c, _k, _n) in enumerate(store_rows):
        if home_cnt[b, c] == 0:
            home_off[b, c] = i
        home_cnt[b, c] += 1
    warehouse = np.zeros((n_brands, n_cities), dtype=np.int64)
    for b, c in WAREHOUSE_CITIES:
        city, region = words.CITIES[c][0], words.CITIES[c][1]
        store_rows.append((b, c, "warehouse", f"{words.BRANDS[b][1]}{region}仓（{city}）"))
    by_brand = {
        b: [i for i, r in enumerate(store_rows) if r[0] == b and r[2] == "warehouse"]
        for b in range(n_brands)
    }
    for b, ws in by_brand.items():
        for c2 in range(n_cities):
            same = [i for i in ws if words.CITIES[store_rows[i][1]][1] == words.CITIES[c2][1]]
            warehouse[b, c2] = same[0] if same else ws[0]  # else the brand's main one
    n_stores = len(store_rows)
    opened = [start - timedelta(days=int(d)) for d in rng.integers(30, 3650, n_stores)]

    skus: list[str] = []
    sku_name: list[str] = []
    sku_cat: list[str] = []
    sku_brand: list[int] = []
    sku_price: list[int] = []
    sku_off = np.zeros(n_brands, dtype=np.int64)
    sku_cum: list[F64] = []
    for b, brand in enumerate(words.BRANDS):
        sku_off[b] = len(skus)
        n = 0
        for category, base, items in words.PRODUCTS[b]:
            for item in items:
                jitter = rng.uniform(0.8, 1.3)
                for spec, factor in words.SPECS[b]:
                    n += 1
                    skus.append(f"{brand[2]}{n:04d}")
                    sku_brand.append(b)
                    sku_name.append(f"{item} {spec}" if spec else item)
                    sku_cat.append(category)
                    sku_price.append(max(290, round(base * factor * jitter / 100) * 100 - 10))
        # a few best sellers (Zipf), and cheap everyday items sell more than gift boxes
        prices = np.array(sku_price[-n:], dtype=np.float64)
        popularity = (
            rng.permutation(1.0 / np.arange(1, n + 1) ** 1.1) * (np.median(prices) / prices) ** 1.5
        )
        sku_cum.append(np.cumsum(popularity))

    guide_store: list[int] = []
    guide_skill: list[str] = []
    skills = [s for s, _ in SKILL_SHARE]
    skill_p = [p for _, p in SKILL_SHARE]
    for s, row in enumerate(store_rows):
        if row[2] != "warehouse":
            for _ in range(int(rng.integers(2, 7))):
                guide_store.append(s)
                guide_skill.append(str(rng.choice(skills, p=skill_p)))
    n_guides = len(guide_store)
    g_store = np.array(guide_store, dtype=np.int64)
    guide_cnt = np.bincount(g_store, minlength=n_stores).astype(np.int64)
    guide_off = np.concatenate([[0], np.cumsum(guide_cnt)[:-1]]).astype(np.int64)
    weights = np.array([SKILL_WEIGHT[k] for k in guide_skill])
    guide_cum = np.cumsum(weights)
    aliases = [
        f"小{words.GUIDE_ALIASES[int(i)]}"
        for i in rng.integers(0, len(words.GUIDE_ALIASES), n_guides)
    ]
    hired = [start - timedelta(days=int(d)) for d in rng.integers(10, 2000, n_guides)]

    return Catalog(
        brand_ids=[b[0] for b in words.BRANDS],
        brand_names=[b[1] for b in words.BRANDS],
        brand_share=np.cumsum([b[3] for b in words.BRANDS]),
        lines_cum=np.cumsum(np.array([b[5] for b in words.BRANDS]), axis=1),
        qty_cum=np.cumsum(np.array([b[6] for b in words.BRANDS]), axis=1),
        city_names=[c[0] for c in words.CITIES],
        city_regions=[c[1] for c in words.CITIES],
        city_cum=np.cumsum(city_share),
        store_ids=_store_ids([r[2] for r in store_rows]),
        store_brand=np.array([r[0] for r in store_rows], dtype=np.int64),
        store_city=np.array([r[1] for r in store_rows], dtype=np.int64),
        store_kind=[r[2] for r in store_rows],
        store_name=[r[3] for r in store_rows],
        store_opened=opened,
        home_off=home_off,
        home_cnt=home_cnt,
        warehouse=warehouse,
        sku=skus,
        sku_brand=np.array(sku_brand, dtype=np.int64),
        sku_name=sku_name,
        sku_category=sku_cat,
        sku_price=np.array(sku_price, dtype=np.int64),
        sku_off=sku_off,
        sku_cum=sku_cum,
        guide_ids=[f"G{i + 1:04d}" for i in range(n_guides)],
        guide_store=g_store,
        guide_alias=aliases,
        guide_hired=hired,
        guide_skill=guide_skill,
        guide_off=guide_off,
        guide_cnt=guide_cnt,
        guide_cum=guide_cum,
    )


def write_reference_csv(catalog: Catalog, out_dir: Path) -> dict[str, int]:
    """brands.csv, stores.csv, products.csv and guides.csv; returns rows per file."""
    c = catalog
    tables: dict[str, tuple[list[str], list[list[object]]]] = {
        "brands": (
            ["brand_id", "name"],
            [[b, n] for b, n in zip(c.brand_ids, c.brand_names, strict=True)],
        ),
        "stores": (
            ["store_id", "brand_id", "name", "city", "region", "kind", "opened_at"],
            [
                [
                    sid,
                    c.brand_ids[c.store_brand[i]],
                    c.store_name[i],
                    c.city_names[c.store_city[i]],
                    c.city_regions[c.store_city[i]],
                    c.store_kind[i],
                    _iso(c.store_opened[i]),
                ]
                for i, sid in enumerate(c.store_ids)
            ],
        ),
        "products": (
            ["sku", "brand_id", "name", "category", "list_price_fen"],
            [
                [
                    s,
                    c.brand_ids[c.sku_brand[i]],
                    c.sku_name[i],
                    c.sku_category[i],
                    int(c.sku_price[i]),
                ]
                for i, s in enumerate(c.sku)
            ],
        ),
        "guides": (
            ["guide_id", "store_id", "alias", "hired_at"],
            [
                [g, c.store_ids[c.guide_store[i]], c.guide_alias[i], _iso(c.guide_hired[i])]
                for i, g in enumerate(c.guide_ids)
            ],
        ),
    }
    counts: dict[str, int] = {}
    for name, (header, rows) in tables.items():
        with (out_dir / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        counts[f"{name}.csv"] = len(rows)
    return counts


def _store_ids(kinds: list[str]) -> list[str]:
    """S0001.. for stores and counters, W001.. for warehouses."""
    n_w = n_s = 0
    out = []
    for kind in kinds:
        if kind == "warehouse":
            n_w += 1
            out.append(f"W{n_w:03d}")
        else:
            n_s += 1
            out.append(f"S{n_s:04d}")
    return out


def _iso(d: date) -> str:
    return datetime(d.year, d.month, d.day, 9, 0).isoformat()
