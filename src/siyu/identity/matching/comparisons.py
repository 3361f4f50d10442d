"""What Splink compares, field by field, and the labels of each comparison's levels.

Each field is one Splink comparison whose levels run from the strongest agreement to
"else"; EM learns how often true matches and non-matches fall in each level. Labels name
the level ("pinyin", "one digit off"), never a value: they travel with every scored pair
to the review queue. SQL is written once with the dialect's function names filled in, so
the same model runs on DuckDB and Spark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.dialects import SplinkDialect

# A field is compared only when at least this share of records carries it: a field that
# almost nobody has teaches EM nothing and adds noise to every weight.
MIN_FIELD_SHARE = 0.01


class Level(ComparisonLevelCreator):
    """A level from an SQL template: {jw}, {lev} and {dl} become the dialect's
    Jaro-Winkler, Levenshtein and Damerau-Levenshtein functions; `label` names the level
    for people."""

    def __init__(self, template: str, label: str, *, null: bool = False) -> None:
        self.template = template
        self.label = label
        if null:
            self.configure(is_null_level=True)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        return self.template.format(
            jw=sql_dialect.jaro_winkler_function_name,
            lev=sql_dialect.levenshtein_function_name,
            dl=sql_dialect.damerau_levenshtein_function_name,
        )

    def create_label_for_charts(self) -> str:
        return self.label


def _typos(column: str, most: int) -> str:
    """Damerau-Levenshtein distance <= most (a swap of neighbours counts one). DuckDB's
    DL is eight times slower than its Levenshtein, and DL <= k implies Levenshtein <= 2k,
    so Levenshtein screens the pairs first (AND evaluates its right side only where the
    left holds)."""
    pair = f"{column}_l, {column}_r"
    return f"{{lev}}({pair}) <= {2 * most} AND {{dl}}({pair}) <= {most}"


def _null(*columns: str) -> Level:
    either = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in columns)
    return Level(either, "missing", null=True)


def _else() -> Level:
    return Level("ELSE", "else")


def _comparison(
    name: str, levels: list[ComparisonLevelCreator | dict[str, Any]], description: str
) -> ComparisonCreator:
    return cl.CustomComparison(
        comparison_levels=levels, output_column_name=name, comparison_description=description
    )


def _name() -> ComparisonCreator:
    no_name = (
        "(given_pinyin_l IS NULL AND family_pinyin_l IS NULL) OR "
        "(given_pinyin_r IS NULL AND family_pinyin_r IS NULL)"
    )
    return _comparison(
        "name",
        [
            Level(no_name, "missing", null=True),
            Level("given_name_l = given_name_r AND family_name_l = family_name_r", "exact"),
            Level(
                "given_pinyin_l = given_pinyin_r AND family_pinyin_l = family_pinyin_r",
                "pinyin",
            ),
            Level(
                "given_pinyin_l = family_pinyin_r AND family_pinyin_l = given_pinyin_r",
                "swapped",
            ),
            Level("{jw}(name_pinyin_l, name_pinyin_r) >= 0.92", "close"),
            Level(
                "{jw}(given_pinyin_l, family_pinyin_r) + {jw}(family_pinyin_l, given_pinyin_r)"
                " >= 1.8",
                "swapped close",
            ),
            Level("given_pinyin_l = given_pinyin_r", "given name"),
            Level("family_pinyin_l = family_pinyin_r", "family name"),
            Level(
                "given_pinyin_l = family_pinyin_r OR family_pinyin_l = given_pinyin_r",
                "one part crossed",
            ),
            Level("{jw}(given_pinyin_l, given_pinyin_r) >= 0.9", "given name close"),
            Level("{jw}(family_pinyin_l, family_pinyin_r) >= 0.9", "family name close"),
            Level("{jw}(name_pinyin_l, name_pinyin_r) >= 0.8", "similar"),
            _else(),
        ],
        "given and family name, as characters, pinyin and swapped",
    )


def _birth_date() -> ComparisonCreator:
    ymd_l, ymd_r = "birth_ymd_l", "birth_ymd_r"
    swapped = (
        f"substr({ymd_l}, 1, 4) = substr({ymd_r}, 1, 4) AND "
        f"substr({ymd_l}, 5, 2) = substr({ymd_r}, 7, 2) AND "
        f"substr({ymd_l}, 7, 2) = substr({ymd_r}, 5, 2)"
    )
    return _comparison(
        "birth_date",
        [
            _null("birth_ymd"),
            Level(f"{ymd_l} = {ymd_r}", "exact"),
            Level(_typos("birth_ymd", 1), "one digit off"),
            Level(swapped, "day and month swapped"),
            cll.AbsoluteDateDifferenceLevel(
                "birth_date", input_is_string=False, threshold=1, metric="year"
            ).configure(label_for_charts="within a year"),
            _else(),
        ],
        "birth date: exact, a typo, day and month swapped, within a year",
    )


def _digits(name: str, column: str, description: str) -> ComparisonCreator:
    """Numbers typed by hand: Damerau-Levenshtein counts a swap of neighbours as one."""
    return _comparison(
        name,
        [
            _null(column),
            Level(f"{column}_l = {column}_r", "exact"),
            Level(_typos(column, 1), "one digit off"),
            Level(_typos(column, 2), "two digits off"),
            _else(),
        ],
        description,
    )


def _text(name: str, column: str, close: float, description: str) -> ComparisonCreator:
    return _comparison(
        name,
        [
            _null(column),
            Level(f"{column}_l = {column}_r", "exact"),
            Level(f"{{jw}}({column}_l, {column}_r) >= {close}", "close"),
            _else(),
        ],
        description,
    )


def _location() -> ComparisonCreator:
    """Address, postcode and city as one comparison: an equal address implies the same
    postcode and city, and three comparisons would count that one agreement three times
    (a household would outweigh two different names and birth dates)."""
    nothing = " OR ".join(
        " AND ".join(f"{c}_{side} IS NULL" for c in ("address", "postcode", "city"))
        for side in ("l", "r")
    )
    return _comparison(
        "address",
        [
            Level(nothing, "missing", null=True),
            Level("address_l = address_r", "exact"),
            Level(
                "{jw}(address_l, address_r) >= 0.9 AND postcode_l = postcode_r",
                "close, same postcode",
            ),
            Level("{jw}(address_l, address_r) >= 0.9", "close"),
            Level("postcode_l = postcode_r AND city_l = city_r", "same postcode and city"),
            Level("postcode_l = postcode_r", "same postcode"),
            Level(f"{_typos('postcode', 1)} AND city_l = city_r", "postcode one off, same city"),
            Level("{jw}(address_l, address_r) >= 0.8", "similar"),
            Level("city_l = city_r", "same city"),
            Level("{jw}(city_l, city_r) >= 0.9", "city close"),
            _else(),
        ],
        "where the member lives: street address, postcode and city together",
    )


def _email() -> ComparisonCreator:
    return _comparison(
        "email",
        [
            _null("email"),
            Level("email_l = email_r", "exact"),
            Level("email_user_l = email_user_r", "user exact"),
            Level("{jw}(email_l, email_r) >= 0.88", "close"),
            _else(),
        ],
        "e-mail: exact, the same user at another domain, a typo",
    )


def _device() -> ComparisonCreator:
    return _comparison(
        "device_id",
        [_null("device_id"), Level("device_id_l = device_id_r", "exact"), _else()],
        "device id",
    )


@dataclass(frozen=True)
class Field:
    name: str
    columns: tuple[str, ...]  # standardised columns it needs (present if any is)
    build: Callable[[], ComparisonCreator]


FIELDS: tuple[Field, ...] = (
    Field("name", ("given_pinyin", "family_pinyin"), _name),
    Field("birth_date", ("birth_ymd",), _birth_date),
    Field("phone", ("phone",), lambda: _digits("phone", "phone", "phone, typos and swaps")),
    Field(
        "id_number",
        ("id_number",),
        lambda: _digits("id_number", "id_number", "id number typed by hand"),
    ),
    Field("email", ("email",), _email),
    Field("address", ("address", "postcode", "city"), _location),
    Field("nickname", ("nickname",), lambda: _text("nickname", "nickname", 0.9, "nickname")),
    Field("device_id", ("device_id",), _device),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def present_fields(standard: pa.Table) -> list[str]:
    """The fields enough records carry to be compared (MIN_FIELD_SHARE), in FIELDS order."""
    rows = max(standard.num_rows, 1)
    present = []
    for field in FIELDS:
        carried = max(rows - standard.column(c).null_count for c in field.columns)
        if carried >= 2 and carried / rows >= MIN_FIELD_SHARE:
            present.append(field.name)
    return present


def comparisons(fields: list[str]) -> list[ComparisonCreator | dict[str, Any]]:
    """The Splink comparisons of `fields`, in order."""
    return [FIELDS_BY_NAME[name].build() for name in fields]
