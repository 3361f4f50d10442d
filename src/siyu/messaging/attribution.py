"""Orders attributed to sends: an order of a recipient placed within `window_days` after
a message was sent to them goes to the latest such send (last touch), so no order is
counted for two sends. Paid and refunded orders count at what was paid; cancelled
orders do not count.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.store.dialect import dialect_of

_ATTRIBUTED = """SELECT o.order_id, o.member_id, o.paid_fen, (
      SELECT r.send_id FROM send_recipients r
      WHERE r.group_id = o.group_id AND r.person_id = o.member_id AND r.status = 'sent'
        AND r.sent_at <= o.ordered_at AND {ordered} - {sent} < :window
      ORDER BY r.sent_at DESC, r.send_id DESC LIMIT 1) AS send_id
    FROM orders o
    WHERE o.group_id = :g AND o.status <> 'cancelled' AND o.member_id IN (
      SELECT person_id FROM send_recipients WHERE group_id = :g AND send_id = :s
        AND status = 'sent')"""


@dataclass(frozen=True)
class SendResult:
    send_id: int
    code: str
    recipients: int  # planned and skipped (rows and skip sets)
    sent: int  # accepted by the platform
    delivered: int  # members with a delivery status callback
    clicked: int  # members who clicked
    buyers: int
    orders: int
    revenue_fen: int


def buyers_sql(conn: Connection) -> str:
    """SQL of the people (`member_id`) with an order attributed to send :s within
    :window seconds, for the members behind the buyers figure (parameter :g the group)."""
    d = dialect_of(conn)
    attributed = _ATTRIBUTED.format(
        ordered=d.epoch_seconds("o.ordered_at"), sent=d.epoch_seconds("r.sent_at")
    )
    return f"SELECT DISTINCT a.member_id FROM ({attributed}) a WHERE a.send_id = :s"


def send_result(engine: Engine, group_id: str, code: str, window_days: int = 7) -> SendResult:
    """What one send did: sent, delivered, clicked, and the orders attributed to it."""
    if not 1 <= window_days <= 90:
        raise ValidationError("window_days", "1 to 90 days", window_days)
    with engine.connect() as conn:
        d = dialect_of(conn)
        send = conn.execute(
            text("SELECT send_id FROM sends WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": code},
        ).scalar()
        if send is None:
            raise NotFoundError(f"send: no send {code!r}")
        p = {"g": group_id, "s": int(send), "window": window_days * 86400}
        counts = conn.execute(
            text("""SELECT COUNT(*) + (SELECT COALESCE(SUM(member_count), 0) FROM send_skips
                                         WHERE group_id = :g AND send_id = :s) AS n,
                      SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) AS sent
                    FROM send_recipients WHERE group_id = :g AND send_id = :s"""),
            p,
        ).one()
        events = {
            str(kind): int(n)
            for kind, n in conn.execute(
                text("""SELECT kind, COUNT(DISTINCT member_id) FROM message_events
                        WHERE group_id = :g AND send_id = :s GROUP BY kind"""),
                p,
            )
        }
        attributed = _ATTRIBUTED.format(
            ordered=d.epoch_seconds("o.ordered_at"), sent=d.epoch_seconds("r.sent_at")
        )
        bought = conn.execute(
            text(f"""SELECT COUNT(DISTINCT a.member_id) AS buyers, COUNT(*) AS orders,
                       COALESCE(SUM(a.paid_fen), 0) AS revenue
                     FROM ({attributed}) a WHERE a.send_id = :s"""),
            p,
        ).one()
    return SendResult(
        int(send),
        code,
        int(counts.n),
        int(counts.sent or 0),
        int(events.get("delivered", 0)),
        int(events.get("clicked", 0)),
        int(bought.buyers),
        int(bought.orders),
        int(bought.revenue),
    )
