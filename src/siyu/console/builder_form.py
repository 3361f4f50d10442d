"""The segment builder's form and the rule it stands for, both ways.

A form is a list of condition rows combined by `all` or `any`, each row one condition of
a kind (attribute, orders, last order, bought, event, event-then-not, tag, segment),
optionally negated. `to_rule` turns the form into a rule document (a row's own numbers
are checked here, naming the row and field; the document is then checked by
`segments.rules`); `from_rule` fills the form from a stored rule when the rule has this
shape, and `from_criteria` from a member list's criteria that a rule can say.

Fields are plain text as a form posts them: `c<i>.<field>`. Money is typed in yuan and
kept in integer fen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.errors import ValidationError
from siyu.segments import rules as r
from siyu.segments.lists import MemberCriteria

KINDS = ("attribute", "orders", "last_order", "bought", "event", "event_then_not", "tag", "segment")
ATTRIBUTES = (
    "stage",
    "rfm_segment",
    "r",
    "f",
    "m",
    "orders",
    "clv_fen",
    "affinity",
    "tier",
    "brand_id",
    "home_store_id",
    "registered_days_ago",
)
FIELDS = (
    "kind",
    "not",
    "attr",
    "attr_op",
    "attr_value",
    "orders_measure",
    "orders_op",
    "orders_n",
    "orders_days",
    "orders_channel",
    "orders_brand",
    "orders_store",
    "orders_guide",
    "last_dir",
    "last_days",
    "last_channel",
    "last_brand",
    "last_store",
    "last_guide",
    "bought_what",
    "bought_list",
    "bought_days",
    "event_type",
    "event_days",
    "event_op",
    "event_n",
    "event_sku",
    "event_channel",
    "etn_type",
    "etn_follow",
    "etn_hours",
    "etn_since",
    "tag",
    "tag_values",
    "segment",
)
MIN_ROWS = 3
MAX_ROWS = 12
COMBINES = ("all", "any")


@dataclass
class BuilderForm:
    combine: str = "all"
    rows: list[dict[str, str]] = field(default_factory=list)

    def padded(self, extra: int = 0) -> list[dict[str, str]]:
        """The rows and enough empty ones to fill the form (`extra` more on request)."""
        want = min(MAX_ROWS, max(MIN_ROWS, len(self.rows) + 1 + extra))
        return [*self.rows, *({} for _ in range(want - len(self.rows)))]


class NotAForm(Exception):
    """A stored rule the form cannot show (deeper nesting, a scope the rows lack): it is
    edited as JSON."""


# --- the form, read ---------------------------------------------------------------------------


def read_form(fields: Mapping[str, str]) -> BuilderForm:
    """The rows the form posted (rows without a kind dropped), in order."""
    combine = fields.get("combine", "all")
    if combine not in COMBINES:
        raise ValidationError("combine", "must be all or any")
    rows = []
    for i in range(MAX_ROWS):
        row = {k: fields.get(f"c{i}.{k}", "").strip() for k in FIELDS}
        if row["kind"]:
            rows.append(row)
    return BuilderForm(combine, rows)


def to_rule(form: BuilderForm) -> dict[str, Any]:
    """The rule document the rows say; `ValidationError` naming `c<i>.<field>` (the row's
    position) when a row's value is not what its field takes."""
    if not form.rows:
        raise ValidationError("c0.kind", "add at least one condition")
    conditions = [_condition(i, row) for i, row in enumerate(form.rows)]
    return {"version": 1, "rule": {form.combine: conditions}}


def row_of(path: str) -> int | None:
    """The form row a rule path points into (`rule.all[2].orders...` -> 2)."""
    for combine in COMBINES:
        prefix = f"rule.{combine}["
        if path.startswith(prefix):
            index = path[len(prefix) :].split("]", 1)[0]
            return int(index) if index.isdigit() else None
    return None


def _condition(i: int, row: dict[str, str]) -> dict[str, Any]:
    kind = row["kind"]
    if kind not in KINDS:
        raise ValidationError(f"c{i}.kind", f"must be one of {', '.join(KINDS)}")
    body = _BUILD[kind](i, row)
    return {"not": body} if row.get("not") in ("1", "on", "true") else body


def _int(i: int, row: dict[str, str], key: str, low: int = 0, optional: bool = False) -> Any:
    raw = row.get(key, "")
    if not raw and optional:
        return None
    if not raw.isdigit() or int(raw) < low or int(raw) > 10**12:
        raise ValidationError(f"c{i}.{key}", f"must be a whole number from {low}")
    return int(raw)


def _list(i: int, row: dict[str, str], key: str, optional: bool = False) -> list[str] | None:
    items = [x.strip() for x in row.get(key, "").replace("，", ",").split(",") if x.strip()]
    if not items and not optional:
        raise ValidationError(f"c{i}.{key}", "needs at least one value (comma-separated)")
    return items or None


def _scalar(text: str) -> str | int | float | bool:
    """A typed value: a number when it reads as one, true/false, else the text."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _attribute(i: int, row: dict[str, str]) -> dict[str, Any]:
    name, op = row.get("attr", ""), row.get("attr_op", "") or "eq"
    if not name:
        raise ValidationError(f"c{i}.attr", "choose an attribute")
    raw = row.get("attr_value", "")
    value: Any
    if op in ("in", "not_in", "between"):
        value = [_scalar(v) for v in _list(i, row, "attr_value") or []]
    else:
        if not raw:
            raise ValidationError(f"c{i}.attr_value", "needs a value")
        value = _scalar(raw)
    return {"attribute": name, "op": op, "value": value}


def _yuan_to_fen(i: int, raw: str) -> int:
    try:
        fen = Decimal(raw.replace(",", "")) * 100
    except InvalidOperation:
        fen = Decimal(-1)
    if fen < 0 or fen != fen.to_integral_value():
        raise ValidationError(f"c{i}.orders_n", "must be an amount in yuan (at most 2 decimals)")
    return int(fen)


# an orders or last-order row's scope: the rule's OrderScope list and the form field that
# types it (the last-order row's fields are prefixed last_ instead of orders_)
_SCOPE_FIELDS = (
    ("brand_id", "brand"),
    ("channel", "channel"),
    ("store_id", "store"),
    ("guide_id", "guide"),
)


def _scope(i: int, row: dict[str, str], prefix: str) -> dict[str, list[str]]:
    """Which orders count: the scope's lists (OrderScope), each optional."""
    body = {}
    for key, name in _SCOPE_FIELDS:
        values = _list(i, row, f"{prefix}_{name}", optional=True)
        if values:
            body[key] = values
    return body


def _scope_row(scope: r.OrderScope, prefix: str) -> dict[str, str]:
    return {f"{prefix}_{name}": ", ".join(getattr(scope, key)) for key, name in _SCOPE_FIELDS}


def _orders(i: int, row: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    days = _int(i, row, "orders_days", 1, optional=True)
    if days is not None:
        body["within_days"] = days
    body.update(_scope(i, row, "orders"))
    op = row.get("orders_op") or "gte"
    if row.get("orders_measure") == "spend":
        body["spend_fen"] = {op: _yuan_to_fen(i, row.get("orders_n", ""))}
    elif row.get("orders_n"):  # no count given: at least one order (the rule's default)
        body["count"] = {op: _int(i, row, "orders_n")}
    return {"orders": body}


def _last_order(i: int, row: dict[str, str]) -> dict[str, Any]:
    key = "within_days" if row.get("last_dir") == "newer" else "more_than_days"
    body = {key: _int(i, row, "last_days", 1 if key == "within_days" else 0)}
    return {"last_order": {**body, **_scope(i, row, "last")}}


def _bought(i: int, row: dict[str, str]) -> dict[str, Any]:
    what = "category" if row.get("bought_what") == "category" else "sku"
    body: dict[str, Any] = {what: _list(i, row, "bought_list")}
    days = _int(i, row, "bought_days", 1, optional=True)
    if days is not None:
        body["within_days"] = days
    return {"bought": body}


def _event(i: int, row: dict[str, str]) -> dict[str, Any]:
    if not row.get("event_type"):
        raise ValidationError(f"c{i}.event_type", "choose an event type")
    body: dict[str, Any] = {"type": row["event_type"]}
    days = _int(i, row, "event_days", 1, optional=True)
    if days is not None:
        body["within_days"] = days
    skus = _list(i, row, "event_sku", optional=True)
    if skus:
        body["sku"] = skus
    channels = _list(i, row, "event_channel", optional=True)
    if channels:
        body["channel"] = channels
    n = _int(i, row, "event_n", optional=True)
    if n is not None:
        body["count"] = {row.get("event_op") or "gte": n}
    return {"event": body}


def _event_then_not(i: int, row: dict[str, str]) -> dict[str, Any]:
    if not row.get("etn_type"):
        raise ValidationError(f"c{i}.etn_type", "choose an event type")
    follow = row.get("etn_follow") or "order"
    return {
        "event_then_not": {
            "event": {"type": row["etn_type"]},
            "not_followed_by": {"order": {}} if follow == "order" else {"type": follow},
            "within_hours": _int(i, row, "etn_hours", 1),
            "since_days": _int(i, row, "etn_since", 1),
        }
    }


def _tag(i: int, row: dict[str, str]) -> dict[str, Any]:
    slug = row.get("tag", "")
    if not slug:
        raise ValidationError(f"c{i}.tag", "choose a tag")
    values = _list(i, row, "tag_values", optional=True)
    return {"tag": {"slug": slug, "values": values} if values else slug}


def _segment(i: int, row: dict[str, str]) -> dict[str, Any]:
    if not row.get("segment"):
        raise ValidationError(f"c{i}.segment", "choose a segment")
    return {"segment": row["segment"]}


_BUILD = {
    "attribute": _attribute,
    "orders": _orders,
    "last_order": _last_order,
    "bought": _bought,
    "event": _event,
    "event_then_not": _event_then_not,
    "tag": _tag,
    "segment": _segment,
}


# --- a rule, shown as the form ----------------------------------------------------------------


def from_rule(document: dict[str, Any]) -> BuilderForm:
    """The form of a stored rule, or `NotAForm` when the rule says more than rows can
    (it is then edited as JSON). Rebuilding the form gives the same rule back."""
    parsed = r.parse_document(document)
    top = parsed.rule
    combine, nodes = (
        ("all", top.conditions)
        if isinstance(top, r.All)
        else ("any", top.conditions)
        if isinstance(top, r.AnyOf)
        else ("all", (top,))
    )
    if len(nodes) > MAX_ROWS:
        raise NotAForm(f"more than {MAX_ROWS} conditions")
    form = BuilderForm(combine, [_row(n) for n in nodes])
    expected = top if isinstance(top, (r.All, r.AnyOf)) else r.All((top,))
    if r.parse_document(to_rule(form)).rule != expected:
        raise NotAForm("the rule has details the form does not show")
    return form


def _num(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _row(node: r.Condition) -> dict[str, str]:
    negated = isinstance(node, r.Not)
    inner = node.condition if isinstance(node, r.Not) else node
    row = _plain_row(inner)
    if negated:
        row["not"] = "1"
    return row


def _plain_row(node: r.Condition) -> dict[str, str]:
    if isinstance(node, r.Attribute):
        value = node.value
        text = (
            ", ".join(_value_text(v) for v in value)
            if isinstance(value, tuple)
            else _value_text(value)
        )
        return {"kind": "attribute", "attr": node.name, "attr_op": node.op, "attr_value": text}
    if isinstance(node, r.Orders):
        s = node.scope
        if node.count and node.spend_fen:
            raise NotAForm("orders with both count and spend")
        row = {"kind": "orders", "orders_days": str(s.within_days or "")}
        row.update(_scope_row(s, "orders"))
        if node.spend_fen is not None:
            yuan = Decimal(node.spend_fen.value) / 100
            row.update(orders_measure="spend", orders_op=node.spend_fen.op, orders_n=f"{yuan:f}")
        else:
            c = node.count
            row.update(orders_measure="count", orders_op=c.op if c else "gte")
            row["orders_n"] = str(c.value) if c else ""
        return row
    if isinstance(node, r.LastOrder):
        older = node.more_than_days is not None
        days = node.more_than_days if older else node.within_days
        direction = "older" if older else "newer"
        last = {"kind": "last_order", "last_dir": direction, "last_days": str(days)}
        return {**last, **_scope_row(node.scope, "last")}
    if isinstance(node, r.Bought):
        if node.sku and node.category:
            raise NotAForm("bought with both sku and category")
        what = "category" if node.category else "sku"
        return {
            "kind": "bought",
            "bought_what": what,
            "bought_list": ", ".join(node.category or node.sku),
            "bought_days": str(node.within_days or ""),
        }
    if isinstance(node, r.Event):
        seconds = node.within_seconds
        if seconds is not None and seconds % 86_400:
            raise NotAForm("an event with a window in hours")
        row = {"kind": "event", "event_type": node.type}
        row["event_days"] = "" if seconds is None else str(seconds // 86_400)
        row["event_sku"] = ", ".join(node.sku)
        row["event_channel"] = ", ".join(node.channel)
        if node.count is not None:
            row.update(event_op=node.count.op, event_n=str(node.count.value))
        return row
    if isinstance(node, r.EventThenNot):
        if node.sku or node.same_sku:
            raise NotAForm("an event-then-not with a sku")
        return {
            "kind": "event_then_not",
            "etn_type": node.event_type,
            "etn_follow": node.follow_type or "order",
            "etn_hours": str(node.within_hours),
            "etn_since": str(node.since_days),
        }
    if isinstance(node, r.Tag):
        return {"kind": "tag", "tag": node.slug, "tag_values": ", ".join(node.values or ())}
    if isinstance(node, r.Segment):
        return {"kind": "segment", "segment": node.slug}
    raise NotAForm("nested all, any or not")


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _num(value) if isinstance(value, (int, float)) else str(value)


# --- a member list, as a rule -----------------------------------------------------------------

# member list criteria (segments.lists) a rule says the same way, and the rule's attribute
_CRITERIA_ATTRIBUTES = {
    "stage": "stage",
    "rfm": "rfm_segment",
    "r": "r",
    "f": "f",
    "m": "m",
    "store": "home_store_id",
}
# member list criteria met by an order in one place (segments.lists `_BOUGHT`), and the
# orders row's scope field that says it
_CRITERIA_SCOPES = {
    "channel": "orders_channel",
    "bought_at": "orders_store",
    "sold_by": "orders_guide",
}


def from_criteria(criteria: MemberCriteria) -> BuilderForm | None:
    """The form of a member list's criteria, or None when one of them has no rule (a
    cohort, a guide's members: lists' own
    definitions). `until` (the snapshot's time an analytics page counted to) is left out:
    a segment counts to each evaluation's data, which is what it is saved for (the builder
    says so)."""
    rows: list[dict[str, str]] = []
    for name, value in criteria.query().items():
        if name == "until":
            continue
        if name in _CRITERIA_ATTRIBUTES:
            rows.append(
                {
                    "kind": "attribute",
                    "attr": _CRITERIA_ATTRIBUTES[name],
                    "attr_op": "eq",
                    "attr_value": value,
                }
            )
        elif name == "funnel":  # with its step: an event of that type in that channel
            rows.append({"kind": "event", "event_type": str(criteria.step), "event_channel": value})
        elif name == "step":
            continue
        elif name == "segment":
            rows.append({"kind": "segment", "segment": value})
        elif name == "tag":
            rows.append({"kind": "tag", "tag": value})
        elif name in _CRITERIA_SCOPES:  # an order (not cancelled) there, any time
            rows.append(
                {
                    "kind": "orders",
                    _CRITERIA_SCOPES[name]: value,
                    "orders_op": "gte",
                    "orders_n": "1",
                }
            )
        else:
            return None
    return BuilderForm("all", rows) if rows else None
