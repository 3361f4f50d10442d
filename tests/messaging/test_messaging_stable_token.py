"""The shared WeChat access token (`token_api = "stable"`): fetched with POST
/cgi-bin/stable_token in normal mode, checked against the published request schema by the
local platform server, shared with another system of the brand on the same appid without
retiring its token, and fetched again when the platform expires it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tests.messaging.platform_server import Platform, serving, validator

from siyu.errors import ConfigError
from siyu.messaging.transports.base import Message
from siyu.messaging.transports.registry import registry

STABLE = "/cgi-bin/stable_token"
SUBSCRIBE = "/cgi-bin/message/subscribe/send"


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    found = Platform()
    with serving(found) as url:
        yield found, url


def _message(member: int) -> Message:
    return Message(
        group_id="G",
        send_id=1,
        send_code="S",
        member_id=member,
        channel="wechat_subscribe",
        address=f"o-{member}",
        idempotency_key=f"G:1:{member}",
        content={"template": "TPL-1", "params": {"thing1": "春季上新"}},
    )


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def _stable(p: Platform, url: str) -> Any:
    settings = {"appid": p.appid, "secret": p.secret, "base_url": url, "token_api": "stable"}
    return registry.transport("wechat_subscribe", settings)


def test_the_stable_token_is_fetched_by_post_in_normal_mode(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    # when a transport set to the stable token delivers twice
    transport = _stable(p, url)
    assert [o.ok for o in transport.deliver([_message(1), _message(2)])] == [True, True]
    # then it fetched one token, by POST, never forcing a refresh, and never by GET
    (fetch,) = p.posts(STABLE)
    assert fetch.body == {
        "grant_type": "client_credential",
        "appid": p.appid,
        "secret": p.secret,
        "force_refresh": False,
    }
    assert p.schema_errors == []
    assert not [r for r in p.requests if r.path == "/cgi-bin/token"]
    assert {r.query["access_token"] for r in p.posts(SUBSCRIBE)} == {p.stable_token}


def test_siyu_does_not_retire_the_token_another_system_holds(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    # given another system of the brand holding the appid's stable token
    other = _post(
        f"{url}{STABLE}", {"grant_type": "client_credential", "appid": p.appid, "secret": p.secret}
    )
    # when siyu fetches its own and delivers
    assert _stable(p, url).deliver([_message(1)])[0].ok
    # then both hold the same token, and the other system's still works
    assert p.posts(SUBSCRIBE)[0].query["access_token"] == other["access_token"]
    assert other["access_token"] in p.valid
    # whereas a forced refresh (which siyu never sends) would have retired it
    forced = _post(
        f"{url}{STABLE}",
        {
            "grant_type": "client_credential",
            "appid": p.appid,
            "secret": p.secret,
            "force_refresh": True,
        },
    )
    assert forced["access_token"] != other["access_token"]
    assert other["access_token"] not in p.valid


def test_an_expired_stable_token_is_fetched_again_and_the_call_retried(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    transport = _stable(p, url)
    assert transport.deliver([_message(1)])[0].ok
    # when the platform expires the token, the next call is refused once (42001), a new
    # token is fetched in normal mode and the call goes
    p.expire_tokens()
    assert transport.deliver([_message(2)])[0].ok
    fetches = p.posts(STABLE)
    assert len(fetches) == 2 and all(f.body["force_refresh"] is False for f in fetches)
    tokens = [r.query["access_token"] for r in p.posts(SUBSCRIBE)]
    assert tokens[0] == tokens[1] != tokens[2] == p.stable_token


def test_the_schema_refuses_a_stable_token_request_without_its_grant_type() -> None:
    schema = validator("wechat_stable_token")
    assert (
        list(
            schema.iter_errors(
                {
                    "grant_type": "client_credential",
                    "appid": "a",
                    "secret": "s",
                    "force_refresh": False,
                }
            )
        )
        == []
    )
    assert list(schema.iter_errors({"appid": "a", "secret": "s"}))
    assert list(
        schema.iter_errors(
            {"grant_type": "client_credential", "appid": "a", "secret": "s", "force_refresh": "no"}
        )
    )


def test_an_unknown_token_api_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="token_api"):
        registry.transport("wechat_subscribe", {"appid": "a", "secret": "s", "token_api": "shared"})
