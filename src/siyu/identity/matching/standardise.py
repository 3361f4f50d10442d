"""Raw member records -> the clean and derived columns Splink compares.

Every text rule runs once per distinct value (names, cities and addresses repeat a lot),
so a million records cost what their distinct values cost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from siyu.errors import ValidationError
from siyu.identity.matching.columns import STANDARD_COLUMNS, UNIQUE_ID, conform
from siyu.identity.matching.names import clean_name, clean_text, pinyin, split_full_name

_NOT_DIGIT = re.compile(r"\D")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_CITY_SUFFIX = re.compile(r"(?<=..)(市|city)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIN_PHONE_DIGITS = 6  # shorter is an extension or a typo, not a phone


def _as_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# Below this many rows (a real-time call: a record and its candidates) a Python dict maps
# values faster than Arrow's unique / index_in kernels; both apply the same functions.
SMALL = 256


def _map_unique(column: pa.ChunkedArray | pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    """Apply `fn` to each distinct non-null string once; nulls stay null."""
    column = _as_array(column)
    if len(column) < SMALL:
        done: dict[str, str | None] = {}
        out: list[str | None] = []
        for value in column.to_pylist():
            if value is None:
                out.append(None)
            else:
                if value not in done:
                    done[value] = fn(value)
                out.append(done[value])
        return pa.array(out, pa.string())
    values = pc.unique(column).drop_null()
    mapped = pa.array([fn(v) for v in values.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(column, value_set=values))


def _phone(raw: str) -> str | None:
    digits = _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", raw))
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def _city(raw: str) -> str | None:
    text = clean_text(raw)
    if text is None:
        return None
    return _CITY_SUFFIX.sub("", text).strip() or None


def _postcode(raw: str) -> str | None:
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", raw).upper()) or None


def _email(raw: str) -> str | None:
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", raw)).strip().lower()
    return text if "@" in text.strip("@") else None


def _email_user(email: str) -> str | None:
    return email.split("@", 1)[0].split("+", 1)[0] or None


def _device(raw: str) -> str | None:
    return _CONTROL.sub("", raw).strip().lower() or None


def _names(raw: pa.Table) -> tuple[pa.Array, pa.Array]:
    """(given, family) cleaned; the full name is split where both parts are null."""
    given = _map_unique(raw.column("given_name"), clean_name)
    family = _map_unique(raw.column("family_name"), clean_name)
    both_missing = pc.and_(pc.is_null(given), pc.is_null(family))
    if not pc.any(pc.and_(both_missing, pc.is_valid(raw.column("name")))).as_py():
        return given, family
    split = {
        full: split_full_name(full)
        for full in pc.unique(raw.column("name")).drop_null().to_pylist()
    }
    full_names = _as_array(raw.column("name")).to_pylist()
    mask = both_missing.to_pylist()
    given_list, family_list = given.to_pylist(), family.to_pylist()
    for i, full in enumerate(full_names):
        if mask[i] and full is not None:
            given_list[i], family_list[i] = split[full]
    return pa.array(given_list, pa.string()), pa.array(family_list, pa.string())


def standardise(raw: pa.Table) -> pa.Table:
    """The columns Splink compares (STANDARD_COLUMNS) from RAW_COLUMNS records.

    Names: simplified characters, lower-case, letters only, and their toneless pinyin;
    a full name is split into parts when the parts are missing. Dates: also as YYYYMMDD.
    Phones: digits only. E-mail: lower-case, and its user part. Cities and addresses:
    simplified, lower-case, punctuation dropped.
    """
    raw = conform(raw)
    ids = raw.column(UNIQUE_ID)
    if pc.count_distinct(ids).as_py() != raw.num_rows:
        raise ValidationError(UNIQUE_ID, "must be unique within the records")
    given, family = _names(raw)
    given_pinyin = _map_unique(given, pinyin)
    family_pinyin = _map_unique(family, lambda name: pinyin(name, family=True))
    name_pinyin = pc.binary_join_element_wise(
        pc.fill_null(family_pinyin, ""), pc.fill_null(given_pinyin, ""), " "
    )
    no_name = pc.and_(pc.is_null(given_pinyin), pc.is_null(family_pinyin))
    name_pinyin = pc.if_else(no_name, None, pc.utf8_trim_whitespace(name_pinyin))
    birth_date = _as_array(raw.column("birth_date"))
    email = _map_unique(raw.column("email"), _email)
    columns = {
        UNIQUE_ID: ids,
        "given_name": given,
        "family_name": family,
        "given_pinyin": given_pinyin,
        "family_pinyin": family_pinyin,
        "name_pinyin": name_pinyin,
        "birth_date": birth_date,
        "birth_ymd": pc.strftime(birth_date, format="%Y%m%d"),
        "city": _map_unique(raw.column("city"), _city),
        "postcode": _map_unique(raw.column("postcode"), _postcode),
        "address": _map_unique(raw.column("address"), clean_text),
        "email": email,
        "email_user": _map_unique(email, _email_user),
        "phone": _map_unique(raw.column("phone"), _phone),
        "nickname": _map_unique(raw.column("nickname"), clean_text),
        "device_id": _map_unique(raw.column("device_id"), _device),
        "id_number": _map_unique(raw.column("id_number"), _postcode),
    }
    return pa.Table.from_arrays(
        [_as_array(columns[f.name]) for f in STANDARD_COLUMNS], schema=STANDARD_COLUMNS
    )
