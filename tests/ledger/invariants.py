"""The ledger's invariants, checked against the database itself."""

from __future__ import annotations

from sqlalchemy import Engine, text


def check_invariants(engine: Engine, group_id: str, debt_allowed: bool = False) -> None:
    with engine.connect() as conn:
        # every posting balances
        unbalanced = conn.execute(
            text("""SELECT posting_id, SUM(amount) FROM ledger_entries WHERE group_id = :g
                    GROUP BY posting_id HAVING SUM(amount) <> 0"""),
            {"g": group_id},
        ).all()
        assert unbalanced == []
        # per member account: the balance is the sum of its entries, and never negative
        accounts = conn.execute(
            text("""SELECT a.account_id, a.balance, COALESCE(SUM(e.amount), 0) AS total
                    FROM ledger_accounts a LEFT JOIN ledger_entries e
                      ON e.account_id = a.account_id
                    WHERE a.group_id = :g AND a.owner = 'member'
                    GROUP BY a.account_id, a.balance"""),
            {"g": group_id},
        ).all()
        for account_id, balance, total in accounts:
            assert balance == total, f"account {account_id}: balance {balance} != {total}"
            assert debt_allowed or balance >= 0, f"account {account_id} is negative"
        # the running balances chain: each entry starts where the previous one ended
        chain = conn.execute(
            text("""SELECT account_id, balance_before, balance_after, amount FROM ledger_entries
                    WHERE group_id = :g AND balance_after IS NOT NULL
                    ORDER BY account_id, entry_id"""),
            {"g": group_id},
        ).all()
        last: dict[int, int] = {}
        for account_id, before, after, amount in chain:
            assert before == last.get(account_id, 0)
            assert after == before + amount
            last[account_id] = after

        def system(owner: str, asset: str) -> int:
            return int(
                conn.execute(
                    text("""SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
                            JOIN ledger_accounts a ON a.account_id = e.account_id
                            WHERE a.group_id = :g AND a.owner = :o AND a.asset = :a"""),
                    {"g": group_id, "o": owner, "a": asset},
                ).scalar_one()
            )

        def outstanding(asset: str) -> int:
            return int(
                conn.execute(
                    text("""SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts
                            WHERE group_id = :g AND owner = 'member' AND asset = :a"""),
                    {"g": group_id, "a": asset},
                ).scalar_one()
            )

        # points: issued - redeemed - expired = outstanding
        issued = -system("issuance", "points")
        assert issued - system("redemption", "points") - system("breakage", "points") == (
            outstanding("points")
        )
        # and the points balance is what the lots still hold
        lots = conn.execute(
            text("""SELECT member_id, SUM(remaining) FROM point_lots WHERE group_id = :g
                    GROUP BY member_id"""),
            {"g": group_id},
        ).all()
        points = dict(
            conn.execute(
                text("""SELECT member_id, balance FROM ledger_accounts
                        WHERE group_id = :g AND owner = 'member' AND asset = 'points'"""),
                {"g": group_id},
            ).all()
        )
        for member_id, remaining in lots:
            # a member in debt (a clawback of spent points) holds no points in lots
            assert max(points.get(member_id, 0), 0) == remaining
        # stored value: paid in - refunded - spent = outstanding principal
        assert -system("cash", "sv_principal") - system("redemption", "sv_principal") == (
            outstanding("sv_principal")
        )
