"""Set-up shared by the messaging tests: members with addresses, made by OneID or in bulk,
a stage to target, consent, sends, and a real HTTP receiver that keeps what it was sent."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, text

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import attach_identity
from siyu.messaging import sends
from siyu.messaging.recipients import recipients_sql
from siyu.orders.models import orders
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

# a Monday, 10:00 in Shanghai: outside quiet hours, far from a month's edge
T = datetime(2030, 1, 7, 2, 0)


def person(
    engine: Engine, encoder: IdentifierEncoder, group_id: str, openid: str, phone: str | None = None
) -> int:
    """A member as a mini-program sign-up makes one (openid), with a phone if given."""
    ident = encoder.encode("openid", openid)
    linked = None if phone is None else encoder.encode("phone", phone)
    member = attach_identity(
        engine, encoder, group_id, ident, "wechat_mp", T, DEFAULT_STRONG_TYPES, True, linked
    ).member_id
    return member


def bulk_members(engine: Engine, group_id: str, n: int) -> list[int]:
    """`n` members with an openid each, written set-wise (thousands in a second)."""
    now = stored_now()
    with engine.begin() as conn:
        # from the key's sequence on PostgreSQL: the session's database is shared
        ids = [int(m) for m in dialect_of(conn).new_ids(conn, "members", "member_id", n)]
        conn.execute(
            text("""INSERT INTO members (member_id, group_id, status, registered_at, created_at,
                      updated_at) VALUES (:m, :g, 'active', :t, :t, :t)"""),
            [{"m": m, "g": group_id, "t": now} for m in ids],
        )
        conn.execute(
            text("""INSERT INTO identities (group_id, type, value_key, value, value_masked,
                      scope, verified, source_channel, first_seen, last_seen, member_id)
                    VALUES (:g, 'openid', :k, :v, :v, '', true, 'wechat_mp', :t, :t, :m)"""),
            [{"g": group_id, "k": f"{group_id}-{m}", "v": f"o-{m}", "t": now, "m": m} for m in ids],
        )
    return ids


def at_stage(engine: Engine, group_id: str, ids: list[int], stage: str = "at_risk") -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, :s, 1, :t)"""),
            [{"g": group_id, "m": m, "s": stage, "t": stored_now()} for m in ids],
        )


def grant_all(engine: Engine, group_id: str, ids: list[int], channel: str = "*") -> None:
    """Marketing consent for `ids`, written as the consent state directly (bulk)."""
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_consents (group_id, member_id, purpose, channel,
                      last_grant_at) VALUES (:g, :m, 'marketing', :c, :t)"""),
            [{"g": group_id, "m": m, "c": channel, "t": datetime(2029, 1, 1)} for m in ids],
        )


def send(engine: Engine, group_id: str, code: str, at: datetime = T, **fields: Any) -> sends.Stored:
    doc: dict[str, Any] = {
        "code": code,
        "channel": "wechat_subscribe",
        "content": {"template": "TPL-1", "params": {"thing1": "春季上新"}},
        "target": {"stage": "at_risk"},
        "scheduled_at": at.replace(tzinfo=UTC).isoformat(),
        **fields,
    }
    return sends.save(engine, group_id, sends.Send.model_validate(doc))


def statuses(engine: Engine, group_id: str, code: str) -> dict[int, tuple[str, str | None]]:
    """Each member the send recorded (a row, or in a skip set) with its status and reason."""
    with engine.connect() as conn:
        send_id = conn.execute(
            text("SELECT send_id FROM sends WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": code},
        ).scalar_one()
        rows = conn.execute(
            text(f"SELECT x.member_id, x.status, x.reason FROM ({recipients_sql(conn, 'all')}) x"),
            {"g": group_id, "s": send_id, "after": 0, "b0": 0, "b1": 2**62},
        ).all()
    found = {int(m): (s, r) for m, s, r in rows}
    assert len(found) == len(rows), "a member recorded twice"
    return found


class Receiver:
    """A platform stand-in: answers the first `fail_first` requests 503, then accepts;
    a repeated Idempotency-Key is answered with the first answer and not delivered again."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.delivered: Counter[str] = Counter()
        self.lock = threading.Lock()

    def handle(self, key: str, body: dict[str, Any]) -> int:
        with self.lock:
            self.requests.append(body)
            if len(self.requests) <= self.fail_first:
                return 503
            if key not in self.delivered:
                self.delivered[key] += 1
            return 200


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls it by this name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            code = receiver.handle(self.headers["Idempotency-Key"], body)
            answer = json.dumps({"id": f"msg-{self.headers['Idempotency-Key']}"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:  # addresses are personal: never logged
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/messages"
    finally:
        server.shutdown()
        server.server_close()


def till_order(
    engine: Engine,
    group_id: str,
    order_id: str,
    member_id: int,
    paid_fen: int,
    at: datetime,
    status: str = "paid",
    channel: str = "pos",
    store_id: str | None = None,
) -> None:
    """An order, paid at the till unless `channel` says otherwise (`pos`: no send can be
    its last touch)."""
    with engine.begin() as conn:
        conn.execute(
            orders.insert().values(
                group_id=group_id,
                order_id=order_id,
                brand_id="B1",
                channel=channel,
                store_id=store_id,
                buyer_identity_id=0,
                member_id=member_id,
                status=status,
                ordered_at=at.replace(tzinfo=None),
                total_fen=paid_fen,
                discount_fen=0,
                paid_fen=paid_fen,
            )
        )
