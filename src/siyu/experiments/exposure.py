"""When each member of an experiment was first exposed: derived at read time from what the
treatment's own delivery recorded, not written by the domains that deliver it.

Messaging, coupons, campaigns and guides never import the experiments (the import
contracts in pyproject.toml: experiments read them, never the reverse), so they cannot
mark a member exposed when they deliver. Instead this module reads their tables and takes,
per live member (`merged_into IS NULL`), the earliest of:

- its logged exposure (`experiment_members.exposed_at`, `assign.expose`: a caller said
  the member was shown its variant);
- `coupon` variant: when the coupon the experiment gave it was issued (`coupons` of the
  variant's template, `campaign = experiment:<code>`; a coupon follows its holder's OneID
  merges);
- `message` variant: when its message of the variant's send was sent (`send_recipients`
  in status `sent`, at `sent_at`: the platform accepted it). A message still waiting,
  failed (the outbox gave up), skipped (consent, caps, a cancelled send), or sent but
  reported failed by the platform's receipt (a `failed` message event) is no exposure;
- `campaign` variant: when the campaign gave it its incentive: the member is in the
  campaign's treatment and was granted (`campaign_members.granted_at`; an over-budget or
  campaign-held-out member is not exposed), at the earlier of the grant and the issue of
  the campaign's coupon it got (points are posted in the same start as the grant);
- `guide_task` variant: when its guide first marked the task contacted or done (a
  `guide_task_events` row made by a person: the generator's closings are no contact). An
  open or dismissed task is no exposure.

A delivery time before the member's assignment (a campaign incentive the member had from
the campaign's own launch) counts from the assignment: nobody is exposed to a variant
before being in it. Logged exposures are taken as logged, and the first wins: a later log
leaves an earlier delivery the first exposure, an earlier log wins over a later delivery.

The control (a variant with no `ref`) is delivered nothing, so it has no derived
exposure: its members count as exposed only where a caller logged it (the counterfactual
exposure: "would have been shown the treatment now"). This is chosen over marking the
control exposed at the start because an exposure-anchored reading is per protocol: the
treated arm keeps only the members the treatment reached (those with consent, an address,
a guide, within the budget), and a control stamped at the start would keep everyone, the
unreachable too, so the two arms would differ by reachability as well as by the treatment,
and the windows would start at different moments (the control at the start, the treated
at delivery). With logged control exposures, the caller decides what the comparable
moment is; without them the exposure reading has no control and says so (`results`), and
the assignment reading (intent to treat) remains the causal one.

OneID merges (`identity/experiment_follow.py`): the survivor's exposure also counts what
was delivered to, or logged for, the members absorbed into it (followed along chains) in
the same variant, since messaging, campaigns and guides keep the id they were given. An
absorbed member of another variant (the survivor kept its own) exposes nothing: it was
shown another treatment. Only the absorbed member's variant and the survivor's are
compared, not those of the members between them on a chain.

`ctes` gives the SQL (common table expressions, ending in `exposure (member_id,
exposed_at)`) for the results to join; `counts` the exposed members per variant and
`first_exposures` each member's time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.experiments.deliver import coupon_campaign
from siyu.experiments.plan import Stored, load
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

MAX_CHAIN = 32  # as identity follows merges: A into B, B into C ...

# Each live member and the rows that are the same person in the same variant: itself, and
# the members absorbed into it (along chains) whose variant is the live member's.
# `assigned_at` is the live member's. The chains are walked up from the absorbed rows
# (few: merges are rare), each hop a key lookup, not down from every live member: a
# step keyed on `merged_into` has no index and read the whole experiment per member
# (0.4 s for the demo's 1,400 members, quadratic beyond).
_ALIASES = """exposure_up (member_id, variant, exposed_at, parent, depth) AS (
    SELECT member_id, variant, exposed_at, merged_into, 1 FROM experiment_members
    WHERE group_id = :g AND experiment_id = :e AND merged_into IS NOT NULL
    UNION ALL
    SELECT u.member_id, u.variant, u.exposed_at, p.merged_into, u.depth + 1
    FROM exposure_up u JOIN experiment_members p ON p.group_id = :g
      AND p.experiment_id = :e AND p.member_id = u.parent
    WHERE p.merged_into IS NOT NULL AND u.depth < {max_chain}
),
exposure_aliases (live_id, member_id, variant, assigned_at, exposed_at) AS (
    SELECT member_id, member_id, variant, assigned_at, exposed_at FROM experiment_members
    WHERE group_id = :g AND experiment_id = :e AND merged_into IS NULL
    UNION ALL
    SELECT l.member_id, u.member_id, u.variant, l.assigned_at, u.exposed_at
    FROM exposure_up u JOIN experiment_members l ON l.group_id = :g
      AND l.experiment_id = :e AND l.member_id = u.parent
    WHERE l.merged_into IS NULL AND l.variant = u.variant
)"""
_LOGGED = "SELECT a.live_id, a.exposed_at FROM exposure_aliases a WHERE a.exposed_at IS NOT NULL"
_COUPON = """SELECT a.live_id, {at} FROM exposure_aliases a
    JOIN coupons c ON c.group_id = :g AND c.member_id = a.member_id
      AND c.campaign = :xcampaign AND c.template_code = :xr{i}
    WHERE a.variant = :xv{i}"""
_MESSAGE = """SELECT a.live_id, {at} FROM exposure_aliases a
    JOIN sends s ON s.group_id = :g AND s.code = :xr{i}
    JOIN send_recipients r ON r.group_id = :g AND r.send_id = s.send_id
      AND r.member_id = a.member_id
    WHERE a.variant = :xv{i} AND r.status = 'sent' AND r.sent_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM message_events me WHERE me.group_id = :g
                      AND me.send_id = r.send_id AND me.member_id = r.member_id
                      AND me.kind = 'failed')"""
_GRANTED = """SELECT a.live_id, {at} FROM exposure_aliases a
    JOIN campaigns k ON k.group_id = :g AND k.code = :xr{i}
    JOIN campaign_members cm ON cm.group_id = :g AND cm.campaign_id = k.campaign_id
      AND cm.member_id = a.member_id
    WHERE a.variant = :xv{i} AND cm.arm = 'treatment' AND cm.granted_at IS NOT NULL"""
_CAMPAIGN_COUPON = """SELECT a.live_id, {at} FROM exposure_aliases a
    JOIN campaigns k ON k.group_id = :g AND k.code = :xr{i}
    JOIN campaign_members cm ON cm.group_id = :g AND cm.campaign_id = k.campaign_id
      AND cm.member_id = a.member_id
    JOIN coupons c ON c.group_id = :g AND c.member_id = a.member_id AND c.campaign = k.code
    WHERE a.variant = :xv{i} AND cm.arm = 'treatment' AND cm.granted_at IS NOT NULL"""
_CONTACTED = """SELECT a.live_id, {at} FROM exposure_aliases a
    JOIN guide_tasks t ON t.group_id = :g AND t.campaign_code = :xr{i}
      AND t.member_id = a.member_id
    JOIN guide_task_events ev ON ev.group_id = :g AND ev.task_id = t.task_id
      AND ev.state IN ('contacted', 'done') AND ev.actor_key_id IS NOT NULL
    WHERE a.variant = :xv{i}"""
# kind -> (the branches giving its delivery times, the column each takes the time from)
_DELIVERED: dict[str, list[tuple[str, str]]] = {
    "coupon": [(_COUPON, "c.issued_at")],
    "message": [(_MESSAGE, "r.sent_at")],
    "campaign": [(_GRANTED, "cm.granted_at"), (_CAMPAIGN_COUPON, "c.issued_at")],
    "guide_task": [(_CONTACTED, "ev.at")],
}


def _not_before_assignment(column: str) -> str:
    return f"CASE WHEN {column} < a.assigned_at THEN a.assigned_at ELSE {column} END"


def _treated(stored: Stored) -> list[tuple[str, str, str]]:
    """(kind, variant, ref) of each variant that delivers something."""
    return [
        (v.kind, v.name, v.ref)
        for v in stored.plan.variants
        if v.ref is not None and v.kind in _DELIVERED
    ]


def ctes(conn: Connection, stored: Stored) -> str:
    """Common table expressions for a `WITH RECURSIVE` list (no leading WITH, no trailing
    comma), the last named `exposure (member_id, exposed_at)`: each live member exposed
    by `:until` (epoch seconds, to the second) and its first exposure. Parameters: `params(...)`."""
    d = dialect_of(conn)
    branches = [_LOGGED]
    for i, (kind, _, _) in enumerate(_treated(stored)):
        for sql, column in _DELIVERED[kind]:
            branches.append(sql.format(i=i, at=_not_before_assignment(column)))
    union = "\n    UNION ALL\n    ".join(branches)
    return f"""{_ALIASES.format(max_chain=MAX_CHAIN)},
exposure_events (member_id, at) AS (
    {union}
),
exposure AS {d.materialized()} (
    SELECT member_id, MIN(at) AS exposed_at FROM exposure_events
    WHERE {d.epoch_seconds("at")} <= :until GROUP BY member_id
)"""


def params(
    stored: Stored, group_id: str, code: str, until: datetime | None = None
) -> dict[str, Any]:
    """The parameters `ctes` names; `until` (default now): exposures by then only."""
    out: dict[str, Any] = {
        "g": group_id,
        "e": stored.experiment_id,
        "xcampaign": coupon_campaign(code),
        "until": epoch(until),
    }
    for i, (_, variant, ref) in enumerate(_treated(stored)):
        out |= {f"xv{i}": variant, f"xr{i}": ref}
    return out


def epoch(until: datetime | None) -> int:
    """A stored (naive UTC) time, or now, as epoch seconds, as the queries compare them."""
    at = as_stored(until) if until is not None else stored_now()
    return int(at.replace(tzinfo=UTC).timestamp())


def counts(engine: Engine, group_id: str, code: str, at: datetime | None = None) -> dict[str, int]:
    """The live members of each variant exposed by `at` (default now), every variant
    named (0 when none)."""
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        rows = conn.execute(
            text(f"""WITH RECURSIVE {ctes(conn, stored)}
                     SELECT em.variant, COUNT(*) AS n FROM experiment_members em
                     JOIN exposure ex ON ex.member_id = em.member_id
                     WHERE em.group_id = :g AND em.experiment_id = :e
                       AND em.merged_into IS NULL
                     GROUP BY em.variant"""),
            params(stored, group_id, code, at),
        ).all()
    found = {str(v): int(n) for v, n in rows}
    return {v.name: found.get(v.name, 0) for v in stored.plan.variants}


def first_exposures(
    engine: Engine, group_id: str, code: str, at: datetime | None = None
) -> dict[int, datetime]:
    """Each live member exposed by `at` (default now) and its first exposure (naive
    UTC, to the second)."""
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        seconds = dialect_of(conn).epoch_seconds("exposed_at")
        rows = conn.execute(
            text(f"""WITH RECURSIVE {ctes(conn, stored)}
                     SELECT member_id, {seconds} AS t FROM exposure"""),
            params(stored, group_id, code, at),
        ).all()
    return {int(m): datetime.fromtimestamp(int(t), UTC).replace(tzinfo=None) for m, t in rows}
