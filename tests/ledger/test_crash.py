"""kill -9 in the middle of a stream of postings: after a restart the invariants hold and
every posting the dead process acknowledged is there, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.ledger import points, stored_value
from siyu.ledger.errors import InsufficientBalance
from siyu.ledger.posting import Request

WORKER = textwrap.dedent(
    """
    import sys
    from siyu.ledger import points, stored_value
    from siyu.ledger.errors import InsufficientBalance
    from siyu.ledger.posting import Request
    from siyu.store.engine import make_engine

    url, group = sys.argv[1], sys.argv[2]
    engine = make_engine(url)
    for i in range(100_000):
        member = 1 + i % 5
        try:
            if i % 3 == 0:
                points.earn(engine, Request(group, member, "earn", f"e{i}", {}), 7, None)
            elif i % 3 == 1:
                points.spend(engine, Request(group, member, "spend", f"s{i}", {}), 5)
            else:
                stored_value.top_up(engine, Request(group, member, "top_up", f"t{i}", {}), 9, 1)
        except InsufficientBalance:
            continue
        print(f"{'est'[i % 3]}{i}", flush=True)  # acknowledged: the commit returned
    """
)


def test_acknowledged_postings_survive_a_kill(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, store.group_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 300:
            proc.send_signal(signal.SIGKILL)  # in the middle of the next posting
            break
    proc.wait()
    # lines the worker printed before the kill but this side had not read yet were
    # acknowledged too (on a loaded machine the pipe holds a few dozen)
    acknowledged += [line.strip() for line in proc.stdout if line.strip()]
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    # after the restart: every acknowledged posting is there, and the books balance
    with store.engine.connect() as conn:
        stored = set(
            conn.exec_driver_sql(
                f"SELECT idempotency_key FROM ledger_postings WHERE group_id = '{store.group_id}'"
            ).scalars()
        )
    assert set(acknowledged) <= stored
    assert len(stored) - len(acknowledged) <= 1  # at most the one committed but not printed
    check_invariants(store.engine, store.group_id)
    # and the client's retries of everything it sent apply nothing twice
    for key in acknowledged:
        i, member = int(key[1:]), 1 + int(key[1:]) % 5
        try:
            if key[0] == "e":
                result = points.earn(
                    store.engine, Request(store.group_id, member, "earn", key, {}), 7, None
                )
            elif key[0] == "s":
                result = points.spend(
                    store.engine, Request(store.group_id, member, "spend", key, {}), 5
                )
            else:
                result = stored_value.top_up(
                    store.engine, Request(store.group_id, member, "top_up", key, {}), 9, 1
                )
        except InsufficientBalance:  # pragma: no cover - an acknowledged key always replays
            raise AssertionError(f"{key} ({i}) was acknowledged but is not replayed") from None
        assert result.replayed
    check_invariants(store.engine, store.group_id)
