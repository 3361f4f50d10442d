"""A segment rule as people read it: each condition a sentence in the page's language,
nested as the rule nests, every code written as its label (an event type, a stage, a
channel), so a membership manager reads a rule without reading its JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from siyu.console.i18n import STRINGS, channel_label, fmt_cny, fmt_int, label, stage_label, tr
from siyu.console.tag_values import tag_value
from siyu.segments import rules as r

# attributes a rule may name (docs/segments.md) whose values are codes with labels
_VALUE_KINDS = {"rfm_segment": "segment", "status": "status"}
OPS = {"eq": "=", "ne": "≠", "gte": "≥", "lte": "≤"}


@dataclass
class Line:
    """One condition's sentence and the conditions under it (all, any, not)."""

    text: str
    children: list[Line] = field(default_factory=list)


def attribute_label(name: str, lang: str) -> str:
    key = f"attr.{name}"
    return tr(key, lang) if key in STRINGS else name


def attribute_value(name: str, value: object, lang: str) -> str:
    """An attribute's value as its label where the value is a code."""
    if name == "stage":
        return stage_label(str(value), lang)
    if name in _VALUE_KINDS:
        return label(_VALUE_KINDS[name], str(value), lang)
    if name == "clv_fen" and isinstance(value, int):
        return fmt_cny(value)
    return str(value)


def describe(document: object, lang: str) -> Line:
    """The rule document as lines; the document is parsed (and so checked) first."""
    return _line(r.parse_document(document).rule, lang)


def _window(days: int | None, lang: str) -> str:
    return tr("rule.window", lang, n=fmt_int(days)) if days else tr("rule.all_time", lang)


def _compare(what: str, c: r.Compare, lang: str, money: bool = False) -> str:
    value = fmt_cny(c.value) if money else fmt_int(c.value)
    return f"{tr(what, lang)} {OPS[c.op]} {value}"


def _scope(scope: r.OrderScope, lang: str) -> str:
    parts = []
    if scope.channel:
        names = ", ".join(channel_label(c, lang) for c in scope.channel)
        parts.append(f"{tr('rule.channel', lang)}: {names}")
    if scope.brand_id:
        parts.append(f"{tr('rule.brand', lang)}: {', '.join(scope.brand_id)}")
    if scope.store_id:
        parts.append(f"{tr('rule.store', lang)}: {', '.join(scope.store_id)}")
    if scope.guide_id:
        parts.append(f"{tr('rule.guide', lang)}: {', '.join(scope.guide_id)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _events(kinds: tuple[str, ...] | str, lang: str) -> str:
    names = (kinds,) if isinstance(kinds, str) else kinds
    return ", ".join(label("event", k, lang) for k in names)


def _line(node: r.Condition, lang: str) -> Line:
    if isinstance(node, r.All):
        return Line(tr("rule.all", lang), [_line(c, lang) for c in node.conditions])
    if isinstance(node, r.AnyOf):
        return Line(tr("rule.any", lang), [_line(c, lang) for c in node.conditions])
    if isinstance(node, r.Not):
        return Line(tr("rule.not", lang), [_line(node.condition, lang)])
    if isinstance(node, r.Attribute):
        name = attribute_label(node.name, lang)
        if isinstance(node.value, tuple):
            values = [attribute_value(node.name, v, lang) for v in node.value]
            joined = " – ".join(values) if node.op == "between" else ", ".join(values)
            return Line(tr(f"rule.attr.{node.op}", lang, attr=name, values=joined))
        value = attribute_value(node.name, node.value, lang)
        return Line(f"{name} {OPS[node.op]} {value}")
    if isinstance(node, r.Orders):
        compares = [
            *([_compare("rule.count", node.count, lang)] if node.count else []),
            *([_compare("rule.spend", node.spend_fen, lang, True)] if node.spend_fen else []),
        ] or [f"{tr('rule.count', lang)} ≥ 1"]
        window = _window(node.scope.within_days, lang)
        text = tr("rule.orders", lang, window=window, scope=_scope(node.scope, lang))
        return Line(f"{text}: {', '.join(compares)}")
    if isinstance(node, r.LastOrder):
        scope = _scope(node.scope, lang)
        if node.more_than_days is not None:
            n = fmt_int(node.more_than_days)
            return Line(tr("rule.last_order.older", lang, n=n, scope=scope))
        n = fmt_int(node.within_days)
        return Line(tr("rule.last_order.newer", lang, n=n, scope=scope))
    if isinstance(node, r.Bought):
        what = []
        if node.sku:
            what.append(f"{tr('rule.sku', lang)} {', '.join(node.sku)}")
        if node.category:
            what.append(f"{tr('rule.category', lang)} {', '.join(node.category)}")
        window = _window(node.within_days, lang)
        return Line(tr("rule.bought", lang, what="; ".join(what), window=window))
    if isinstance(node, r.Event):
        if node.within_seconds is None:
            window = tr("rule.all_time", lang)
        elif node.within_seconds % 86_400 == 0:
            window = tr("rule.window", lang, n=fmt_int(node.within_seconds // 86_400))
        else:
            window = tr("rule.window_hours", lang, n=fmt_int(node.within_seconds // 3600))
        sku = f" ({tr('rule.sku', lang)} {', '.join(node.sku)})" if node.sku else ""
        if node.channel:
            names = ", ".join(channel_label(c, lang) for c in node.channel)
            sku += f" ({tr('rule.channel', lang)}: {names})"
        count = _compare("rule.count", node.count or r.Compare("gte", 1), lang)
        text = tr("rule.event", lang, type=_events(node.type, lang), window=window, sku=sku)
        return Line(f"{text}: {count}")
    if isinstance(node, r.EventThenNot):
        follow = (
            tr("rule.an_order", lang)
            if node.follow_type is None
            else _events(node.follow_type, lang)
            + (f" ({tr('rule.same_sku', lang)})" if node.same_sku else "")
        )
        sku = f" ({tr('rule.sku', lang)} {', '.join(node.sku)})" if node.sku else ""
        return Line(
            tr(
                "rule.event_then_not",
                lang,
                type=_events(node.event_type, lang),
                sku=sku,
                follow=follow,
                hours=fmt_int(node.within_hours),
                days=fmt_int(node.since_days),
            )
        )
    if isinstance(node, r.Segment):
        return Line(tr("rule.segment", lang, slug=node.slug))
    if isinstance(node, r.Tag):
        shown = [tag_value(node.slug, v, lang) for v in node.values or ()]
        held = f" ({', '.join(shown)})" if shown else ""
        return Line(tr("rule.tag", lang, slug=node.slug, values=held))
    raise AssertionError(f"no sentence for {type(node).__name__}")  # pragma: no cover
