"""The service's own endpoints and behaviour: health, metrics, request ids, rate limits."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.api.conftest import Api

from siyu.app import create_app
from siyu.config import Settings


def test_health_and_docs_need_no_key_and_every_v1_path_does(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    schema = api.client.get("/openapi.json").json()
    # every other path is /v1/ (an API key); the platforms' callbacks carry their own proof
    # instead (test_authorization.py checks each refuses without it)
    assert all(path.startswith(("/v1/", "/callbacks/")) for path in schema["paths"])
    assert api.client.get("/docs").status_code == 200


def test_request_ids_are_returned_and_kept(api: Api) -> None:
    given = api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(api.client.get("/healthz").headers["X-Request-ID"]) == 32
    problem = api.client.get("/v1/members/1", headers={"X-Request-ID": "req-9"}).json()
    assert problem["request_id"] == "req-9"


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    api.client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("admin"))
    metrics = api.client.get("/metrics").text
    assert 'route="/v1/members/{member_id}"' in metrics
    assert f'/v1/members/{api.members["M1"]}"' not in metrics


def test_a_key_over_its_rate_gets_429_with_retry_after(api: Api) -> None:
    url = api.store.engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=api.store.group_id),
        rate_per_second=1,
    )
    with TestClient(app) as client:
        statuses = [
            client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("admin")).status_code
            for _ in range(4)
        ]
        limited = client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("admin"))
    app.state.services.engine.dispose()
    assert statuses[:2] == [200, 200] and 429 in statuses
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["code"] == "rate_limited"
