"""Recomputing a pool's draws from its seed: the audit anyone can run once it is revealed.

`verify` checks that the seed matches the commitment published when the pool opened,
that every logged draw's number is HMAC-SHA256(seed, pool|member|key) and its roll and
prize follow from it (a `sold_out` draw names the prize its roll fell on), and that the
counts agree: won draws per prize = its `awarded` <= its `units`, draws per member = the
member's counter <= the pool's limit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from siyu.lotteries import fairness, pools


@dataclass
class Verification:
    pool_code: str
    seed_sha256: str
    draws: int = 0
    won: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(engine: Engine, group_id: str, pool_code: str) -> Verification:
    """Recompute every draw of the pool (see the module docstring)."""
    with engine.connect() as conn:
        pool = pools.load(conn, group_id, pool_code)
        rows = conn.execute(
            text("""SELECT draw_id, member_id, idempotency_key, random_hex, roll, outcome,
                      prize_code, claim_code FROM prize_draws
                    WHERE group_id = :g AND pool_code = :p ORDER BY draw_id"""),
            {"g": group_id, "p": pool_code},
        ).all()
        counters: dict[int, int] = dict(
            conn.execute(
                text("""SELECT member_id, draws FROM prize_pool_entrants
                        WHERE group_id = :g AND pool_code = :p"""),
                {"g": group_id, "p": pool_code},
            ).all()
        )
    report = Verification(pool_code, pool.seed_sha256, draws=len(rows))
    if fairness.commitment(pool.seed) != pool.seed_sha256:
        report.problems.append("seed: does not match the published SHA-256")
    won: Counter[str] = Counter()
    per_member: Counter[int] = Counter()
    for r in rows:
        per_member[int(r.member_id)] += 1
        random = fairness.random_hex(pool.seed, pool_code, int(r.member_id), r.idempotency_key)
        roll = fairness.roll_of(random)
        prize = fairness.pick(roll, pool.prizes)
        if (random, roll) != (r.random_hex, int(r.roll)):
            report.problems.append(f"draw {r.draw_id}: its number is not the seed's")
        if prize != r.prize_code:
            report.problems.append(f"draw {r.draw_id}: roll {roll} falls on {prize}")
        expected = {"no_prize"} if prize is None else {"won", "sold_out"}
        if r.outcome not in expected or (r.outcome == "won") != (r.claim_code is not None):
            report.problems.append(f"draw {r.draw_id}: outcome {r.outcome} for prize {prize}")
        if r.outcome == "won":
            won[r.prize_code] += 1
    for kept in pool.prizes:
        n = won.get(kept.prize_code, 0)
        if n != kept.awarded or n > kept.units:
            report.problems.append(
                f"prize {kept.prize_code}: {n} won, {kept.awarded} counted, {kept.units} units"
            )
    for member, n in per_member.items():
        if n > pool.per_member or int(counters.get(member, 0)) != n:
            report.problems.append(
                f"member {member}: {n} draws, {counters.get(member, 0)} counted, "
                f"limit {pool.per_member}"
            )
    report.won = dict(won)
    return report
