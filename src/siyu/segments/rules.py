"""The segment rule language: a JSON document, parsed into frozen dataclasses.

`{"version": 1, "rule": <condition>}`. A condition is an object with exactly one key naming
its kind (`all`, `any`, `not`, `attribute`, `orders`, `last_order`, `bought`, `event`,
`event_then_not`, `segment`, `tag`); docs/segments.md is the reference. Parsing checks shape and
types only; whether an attribute column exists is known when the rule is compiled against
tables (`compile.py`). Every refusal is a ValidationError naming the JSON path of the field
(`rule.all[2].orders.within_days`) and the rule broken. Each node keeps its path so the
compiler's refusals name it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from siyu.errors import ValidationError

VERSION = 1
MAX_DEPTH = 8  # boolean nesting; deeper rules are unreadable and cost a join per level
MAX_LIST = 1_000  # values in one `in` / sku / category list
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ATTRIBUTE_OPS = ("eq", "ne", "in", "not_in", "gte", "lte", "between")
COMPARE_OPS = ("gte", "lte", "eq")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    """`count` or `spend_fen` against a bound: op is gte, lte or eq."""

    op: str
    value: int


@dataclass(frozen=True)
class All:
    conditions: tuple[Condition, ...]
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Not:
    condition: Condition
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Attribute:
    """`name` is a column of the members table, or `<x>_days_ago` for a timestamp column
    `<x>_at` (whole days between it and the as-of time)."""

    name: str
    op: str
    value: Scalar | tuple[Scalar, ...]
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class OrderScope:
    """Which orders count: a window of days before the as-of time (None: all time) and
    optional brand, channel, store and shopping-guide lists."""

    within_days: int | None = None
    brand_id: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    store_id: tuple[str, ...] = ()
    guide_id: tuple[str, ...] = ()


@dataclass(frozen=True)
class Orders:
    """Members whose orders in scope satisfy every comparison; none given means count >= 1.
    A member without orders has count 0 and spend 0, so `count lte 0` means never bought."""

    scope: OrderScope
    count: Compare | None = None
    spend_fen: Compare | None = None
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class LastOrder:
    """Members who have a last order in scope, older than `more_than_days` or within
    `within_days` (exactly one). Never-buyers have no last order and never match."""

    more_than_days: int | None
    within_days: int | None
    scope: OrderScope = OrderScope()
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Bought:
    """Members with a line of one of `sku` or of a product in `category` (at least one list
    given) in an order in the window."""

    sku: tuple[str, ...]
    category: tuple[str, ...]
    within_days: int | None = None
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Event:
    """Members with events of `type` (optionally for one of `sku`, in one of `channel`) in
    the last `within_seconds`, counted and compared; none given means count >= 1."""

    type: str
    within_seconds: int | None = None
    sku: tuple[str, ...] = ()
    count: Compare | None = None
    path: str = field(default="rule", compare=False)
    channel: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventThenNot:
    """Members with an event of `event_type` (and `sku`) at time e with
    T - since_days < e <= T - within_hours, and no follow-up at f with e <= f <= e + within_hours
    (an event of `follow_type`, or a non-cancelled order when `follow_type` is None; with
    `same_sku` the follow-up event must be for the same sku)."""

    event_type: str
    sku: tuple[str, ...]
    follow_type: str | None
    same_sku: bool
    within_hours: int
    since_days: int
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Segment:
    slug: str
    path: str = field(default="rule", compare=False)


@dataclass(frozen=True)
class Tag:
    """Members holding the tag; with `values`, only those whose value is one of them."""

    slug: str
    values: tuple[str, ...] | None = None
    path: str = field(default="rule", compare=False)


Condition = (
    All
    | AnyOf
    | Not
    | Attribute
    | Orders
    | LastOrder
    | Bought
    | Event
    | EventThenNot
    | Segment
    | Tag
)


@dataclass(frozen=True)
class References:
    """What a rule reads beyond the members: which fact tables, tags and segments, so an
    evaluation loads only those (a group's tags can be hundreds of millions of rows)."""

    tables: frozenset[str]
    tags: frozenset[str]
    segments: frozenset[str]
    attributes: frozenset[str]


def references(rule: Condition) -> References:
    tables: set[str] = set()
    tag_slugs: set[str] = set()
    segment_slugs: set[str] = set()
    attributes: set[str] = set()

    def walk(node: Condition) -> None:
        if isinstance(node, (All, AnyOf)):
            for child in node.conditions:
                walk(child)
        elif isinstance(node, Not):
            walk(node.condition)
        elif isinstance(node, Attribute):
            attributes.add(node.name)
        elif isinstance(node, (Orders, LastOrder)):
            tables.add("orders")
        elif isinstance(node, Bought):
            tables.update(("orders", "order_lines"))
            if node.category:
                tables.add("products")
        elif isinstance(node, Event):
            tables.add("events")
        elif isinstance(node, EventThenNot):
            tables.add("events")
            if node.follow_type is None:  # followed by an order
                tables.add("orders")
        elif isinstance(node, Segment):
            tables.add("memberships")
            segment_slugs.add(node.slug)
        elif isinstance(node, Tag):
            tables.add("tags")
            tag_slugs.add(node.slug)

    walk(rule)
    return References(
        frozenset(tables), frozenset(tag_slugs), frozenset(segment_slugs), frozenset(attributes)
    )


@dataclass(frozen=True)
class RuleDocument:
    version: int
    rule: Condition


def parse_document(doc: object) -> RuleDocument:
    """Parse and validate a rule document (the JSON already decoded)."""
    if not isinstance(doc, dict):
        raise ValidationError("$", "must be an object with version and rule", doc)
    obj = _object(doc, "", {"version", "rule"}, required={"version", "rule"})
    version = obj["version"]
    if type(version) is not int or version != VERSION:
        raise ValidationError("version", f"must be {VERSION}", version)
    return RuleDocument(version, parse_condition(obj["rule"], "rule", 1))


def parse_condition(raw: object, path: str, depth: int = 1) -> Condition:
    if not isinstance(raw, dict):
        raise ValidationError(path, "must be an object with one condition key", raw)
    if "attribute" in raw:  # the one kind whose body is the object itself (three keys)
        return _parse_attribute(raw, path)
    if len(raw) != 1:
        raise ValidationError(
            path,
            f"must have exactly one key of {', '.join(_PARSERS)}, or be an attribute",
            sorted(raw),
        )
    ((kind, body),) = raw.items()
    parser = _PARSERS.get(kind)
    if parser is None:
        kinds = ", ".join(["attribute", *_PARSERS])
        raise ValidationError(f"{path}.{kind}", f"unknown condition; one of {kinds}")
    return parser(body, f"{path}.{kind}", depth)


def _boolean_list(body: object, path: str, depth: int) -> tuple[Condition, ...]:
    if depth >= MAX_DEPTH:
        raise ValidationError(path, f"nesting deeper than {MAX_DEPTH} levels")
    if not isinstance(body, list) or not body:
        raise ValidationError(path, "must be a non-empty list of conditions", body)
    return tuple(parse_condition(c, f"{path}[{i}]", depth + 1) for i, c in enumerate(body))


def _all(body: object, path: str, depth: int) -> Condition:
    return All(_boolean_list(body, path, depth), path)


def _any(body: object, path: str, depth: int) -> Condition:
    return AnyOf(_boolean_list(body, path, depth), path)


def _not(body: object, path: str, depth: int) -> Condition:
    if depth >= MAX_DEPTH:
        raise ValidationError(path, f"nesting deeper than {MAX_DEPTH} levels")
    return Not(parse_condition(body, path, depth + 1), path)


def _parse_attribute(raw: dict[str, Any], path: str) -> Attribute:
    obj = _object(raw, path, {"attribute", "op", "value"}, required={"attribute", "op", "value"})
    name = obj["attribute"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name):
        raise ValidationError(f"{path}.attribute", "must be a column name (a-z, 0-9, _)", name)
    op = obj["op"]
    if op not in ATTRIBUTE_OPS:
        raise ValidationError(f"{path}.op", f"must be one of {', '.join(ATTRIBUTE_OPS)}", op)
    value = obj["value"]
    vpath = f"{path}.value"
    if op in ("eq", "ne"):
        return Attribute(name, op, _scalar(value, vpath), path)
    if op in ("gte", "lte"):
        return Attribute(name, op, _number(value, vpath), path)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationError(vpath, "must be a list [low, high]", value)
        low, high = _number(value[0], f"{vpath}[0]"), _number(value[1], f"{vpath}[1]")
        if low > high:
            raise ValidationError(vpath, "low must not exceed high", value)
        return Attribute(name, op, (low, high), path)
    items = _list(value, vpath, _scalar)
    if len({type(v) for v in items}) > 1:
        raise ValidationError(vpath, "values must all have one type", value)
    return Attribute(name, op, items, path)


def _scope(obj: dict[str, Any], path: str) -> OrderScope:
    return OrderScope(
        within_days=_optional(obj, "within_days", path, _positive),
        brand_id=_optional(obj, "brand_id", path, _strings) or (),
        channel=_optional(obj, "channel", path, _strings) or (),
        store_id=_optional(obj, "store_id", path, _strings) or (),
        guide_id=_optional(obj, "guide_id", path, _strings) or (),
    )


SCOPE_KEYS = {"within_days", "brand_id", "channel", "store_id", "guide_id"}


def _orders(body: object, path: str, depth: int) -> Condition:
    obj = _object(body, path, SCOPE_KEYS | {"count", "spend_fen"})
    return Orders(
        _scope(obj, path),
        _optional(obj, "count", path, _compare),
        _optional(obj, "spend_fen", path, _compare),
        path,
    )


def _last_order(body: object, path: str, depth: int) -> Condition:
    obj = _object(body, path, SCOPE_KEYS | {"more_than_days"})
    more = _optional(obj, "more_than_days", path, _non_negative)
    within = _optional(obj, "within_days", path, _positive)
    if (more is None) == (within is None):
        raise ValidationError(path, "needs exactly one of more_than_days, within_days")
    # within_days is the recency bound here, not a window on which orders count
    scope = _scope({k: v for k, v in obj.items() if k != "within_days"}, path)
    return LastOrder(more, within, scope, path)


def _bought(body: object, path: str, depth: int) -> Condition:
    obj = _object(body, path, {"sku", "category", "within_days"})
    sku = _optional(obj, "sku", path, _strings) or ()
    category = _optional(obj, "category", path, _strings) or ()
    if not sku and not category:
        raise ValidationError(path, "needs sku or category")
    return Bought(sku, category, _optional(obj, "within_days", path, _positive), path)


def _event(body: object, path: str, depth: int) -> Condition:
    obj = _object(
        body,
        path,
        {"type", "within_hours", "within_days", "sku", "channel", "count"},
        required={"type"},
    )
    hours = _optional(obj, "within_hours", path, _positive)
    days = _optional(obj, "within_days", path, _positive)
    if hours is not None and days is not None:
        raise ValidationError(path, "give within_hours or within_days, not both")
    seconds = hours * 3600 if hours is not None else days * 86_400 if days is not None else None
    return Event(
        _name(obj["type"], f"{path}.type"),
        seconds,
        _optional(obj, "sku", path, _strings) or (),
        _optional(obj, "count", path, _compare),
        path,
        _optional(obj, "channel", path, _strings) or (),
    )


def _event_then_not(body: object, path: str, depth: int) -> Condition:
    obj = _object(
        body,
        path,
        {"event", "not_followed_by", "within_hours", "since_days", "same_sku"},
        required={"event", "not_followed_by", "within_hours", "since_days"},
    )
    event = _object(obj["event"], f"{path}.event", {"type", "sku"}, required={"type"})
    follow = _object(obj["not_followed_by"], f"{path}.not_followed_by", {"type", "order"})
    fpath = f"{path}.not_followed_by"
    if len(follow) != 1:
        raise ValidationError(fpath, "needs exactly one of type, order")
    if "type" in follow:
        follow_type: str | None = _name(follow["type"], f"{fpath}.type")
    else:
        _object(follow["order"], f"{fpath}.order", set())  # {} : any non-cancelled order
        follow_type = None
    same_sku = obj.get("same_sku", False)
    if type(same_sku) is not bool:
        raise ValidationError(f"{path}.same_sku", "must be true or false", same_sku)
    if same_sku and follow_type is None:
        raise ValidationError(f"{path}.same_sku", "applies to a follow-up event, not an order")
    return EventThenNot(
        _name(event["type"], f"{path}.event.type"),
        _optional(event, "sku", f"{path}.event", _strings) or (),
        follow_type,
        same_sku,
        _positive(obj["within_hours"], f"{path}.within_hours"),
        _positive(obj["since_days"], f"{path}.since_days"),
        path,
    )


def _segment(body: object, path: str, depth: int) -> Condition:
    if not isinstance(body, str) or not SLUG.fullmatch(body):
        raise ValidationError(path, "must be a segment slug (a-z, 0-9, _ and -)", body)
    return Segment(body, path)


TAG_SLUG = re.compile(r"^[a-z0-9_.-]{1,64}$")  # as segments.models.SLUG_PATTERN


def _tag(body: object, path: str, depth: int) -> Condition:
    if isinstance(body, str):
        body = {"slug": body}
    if not isinstance(body, dict):
        raise ValidationError(path, "must be a tag slug or an object with slug and values", body)
    obj = _object(body, path, {"slug", "values"}, required={"slug"})
    slug = obj["slug"]
    if not isinstance(slug, str) or not TAG_SLUG.fullmatch(slug):
        raise ValidationError(f"{path}.slug", "must be a tag slug (a-z, 0-9, _ . and -)", slug)
    values = _optional(obj, "values", path, _strings)
    return Tag(slug, values, path)


_PARSERS = {
    "all": _all,
    "any": _any,
    "not": _not,
    "orders": _orders,
    "last_order": _last_order,
    "bought": _bought,
    "event": _event,
    "event_then_not": _event_then_not,
    "segment": _segment,
    "tag": _tag,
}

# -- values ---------------------------------------------------------------------------


def _object(
    raw: object, path: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError(path, "must be an object", raw)
    for key in raw:
        if key not in allowed:
            rule = (
                f"unknown key; allowed: {', '.join(sorted(allowed))}" if allowed else "must be {}"
            )
            raise ValidationError(f"{path}.{key}" if path else key, rule)
    for key in sorted(required):
        if key not in raw:
            raise ValidationError(f"{path}.{key}" if path else key, "is required")
    return raw


def _optional(obj: dict[str, Any], key: str, path: str, check: Any) -> Any:
    return check(obj[key], f"{path}.{key}") if key in obj else None


def _positive(value: object, path: str) -> int:
    if type(value) is not int or not 0 < value <= 36_500:
        raise ValidationError(path, "must be an integer from 1 to 36500", value)
    return value


def _non_negative(value: object, path: str) -> int:
    if type(value) is not int or not 0 <= value <= 36_500:
        raise ValidationError(path, "must be an integer from 0 to 36500", value)
    return value


def _number(value: object, path: str) -> int | float:
    if type(value) not in (int, float):
        raise ValidationError(path, "must be a number", value)
    return value  # type: ignore[return-value]


def _scalar(value: object, path: str) -> Scalar:
    if type(value) not in (str, int, float, bool):
        raise ValidationError(path, "must be a string, number or boolean", value)
    return value  # type: ignore[return-value]


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise ValidationError(path, "must be a non-empty string of at most 64 characters", value)
    return value


def _list(value: object, path: str, item: Any) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError(path, "must be a non-empty list", value)
    if len(value) > MAX_LIST:
        raise ValidationError(path, f"must have at most {MAX_LIST} values", len(value))
    return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))


def _strings(value: object, path: str) -> tuple[str, ...]:
    return _list(value, path, _name)


def _compare(value: object, path: str) -> Compare:
    obj = _object(value, path, set(COMPARE_OPS))
    if len(obj) != 1:
        raise ValidationError(path, f"needs exactly one of {', '.join(COMPARE_OPS)}", value)
    ((op, bound),) = obj.items()
    return Compare(op, _non_negative_int(bound, f"{path}.{op}"))


def _non_negative_int(value: object, path: str) -> int:
    if type(value) is not int or value < 0:
        raise ValidationError(path, "must be a non-negative integer", value)
    return value
