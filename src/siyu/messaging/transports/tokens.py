"""Access tokens for the WeCom and WeChat APIs, and the one way those APIs are called.

Both platforms answer JSON with `errcode` / `errmsg` and take `?access_token=...`. A token
is fetched on first use (WeCom: GET /cgi-bin/gettoken?corpid&corpsecret; WeChat: GET
/cgi-bin/token?grant_type=client_credential&appid&secret), kept until shortly before it
expires, and fetched again when the platform says it expired or is invalid (40001, 40014,
42001): the call is then retried once with the new token. A WeChat fetch retires the
appid's previous token, so a brand whose other systems call with the same appid sets
`token_api = "stable"`: the token comes from POST /cgi-bin/stable_token in normal mode
(`force_refresh` false), which answers the token in force to every caller and renews it
only in its last 5 minutes, so siyu never retires a token another system holds; siyu never
forces a refresh. The secret and the token are
never logged and never put in an error message (they travel in the query string, so no
URL is ever repeated in one).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from siyu.errors import ConfigError
from siyu.messaging.transports.base import Outcome

EXPIRED = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
MARGIN = 300  # seconds: a token is refreshed this long before the platform says it ends


class PlatformUnreachable(Exception):
    """No usable answer (network, HTTP status, not JSON): the batch is tried again."""


def request_json(
    url: str, body: Mapping[str, Any] | None, timeout: float, headers: Mapping[str, str] = {}
) -> dict[str, Any]:
    """POST `body` as JSON (GET when None) and read a JSON object back."""
    if body is None:
        return exchange(url, None, timeout, headers)
    data = json.dumps(body, ensure_ascii=False).encode()
    return exchange(url, data, timeout, {"Content-Type": "application/json", **headers})


def exchange(
    url: str, data: bytes | None, timeout: float, headers: Mapping[str, str]
) -> dict[str, Any]:
    """Send `data` as it is (POST; GET when None) and read a JSON object back."""
    request = urllib.request.Request(
        url, data=data, method="GET" if data is None else "POST", headers=dict(headers)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        raise PlatformUnreachable(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PlatformUnreachable(type(exc).__name__) from None
    try:
        found = json.loads(raw)
    except ValueError:
        raise PlatformUnreachable("answer is not JSON") from None
    if not isinstance(found, dict):
        raise PlatformUnreachable("answer is not a JSON object")
    return found


def required(settings: Mapping[str, Any], *names: str) -> list[str]:
    missing = [n for n in names if not settings.get(n)]
    if missing:
        raise ConfigError(f"transport settings: missing {', '.join(missing)}")
    return [str(settings[n]) for n in names]


class TokenCache:
    """One access token, fetched by `fetch` (returns the token and its lifetime in
    seconds) on first use and again after `invalidate`; thread-safe."""

    def __init__(
        self, fetch: Callable[[], tuple[str, int]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._until = 0.0
        self.fetches = 0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._until:
                token, lifetime = self._fetch()
                self.fetches += 1
                self._token, self._until = token, self._clock() + max(lifetime - MARGIN, 60)
            return self._token

    def invalidate(self, token: str) -> None:
        """Drop `token` if it is still the current one (another thread may have renewed)."""
        with self._lock:
            if self._token == token:
                self._token = None


class WxApi:
    """A WeCom or WeChat API at `base_url`, called with a cached access token."""

    def __init__(self, base_url: str, tokens: TokenCache, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `body` to `path`; on an expired or invalid token, refresh once and retry."""
        for attempt in (1, 2):
            token = self.tokens.get()
            query = urllib.parse.urlencode({"access_token": token})
            answer = request_json(f"{self.base_url}{path}?{query}", body, self.timeout)
            if int(answer.get("errcode", 0)) in EXPIRED and attempt == 1:
                self.tokens.invalidate(token)
                continue
            return answer
        raise AssertionError("unreachable")  # the loop returns on its second pass


def outcome(answer: Mapping[str, Any], permanent: Mapping[int, str]) -> Outcome:
    """An answer's errcode as an Outcome: 0 accepted (`msgid`), a code in `permanent`
    refused for good (with its reason), any other tried again later."""
    code = int(answer.get("errcode", 0))
    if code == 0:
        ref = answer.get("msgid")
        return Outcome(True, provider_ref=None if ref is None else str(ref)[:128])
    if code in permanent:
        return Outcome(False, error=permanent[code], permanent=True)
    return Outcome(False, error=f"errcode {code}: {str(answer.get('errmsg', ''))[:200]}")


def _token_answer(answer: Mapping[str, Any], platform: str) -> tuple[str, int]:
    token = answer.get("access_token")
    if int(answer.get("errcode", 0)) != 0 or not token:
        # the errcode says what is wrong (40013 bad corpid/appid, 40001 bad secret ...)
        raise PlatformUnreachable(f"{platform} token refused: errcode {answer.get('errcode')}")
    return str(token), int(answer.get("expires_in", 7200))


def wecom_api(settings: Mapping[str, Any]) -> WxApi:
    """Settings: corpid, corpsecret (the customer-contact secret), base_url, timeout."""
    corpid, secret = required(settings, "corpid", "corpsecret")
    base = str(settings.get("base_url", "https://qyapi.weixin.qq.com"))
    timeout = float(settings.get("timeout", 10.0))

    def fetch() -> tuple[str, int]:
        query = urllib.parse.urlencode({"corpid": corpid, "corpsecret": secret})
        answer = request_json(f"{base.rstrip('/')}/cgi-bin/gettoken?{query}", None, timeout)
        return _token_answer(answer, "WeCom")

    return WxApi(base, TokenCache(fetch), timeout)


TOKEN_APIS = ("token", "stable")


def wechat_api(settings: Mapping[str, Any]) -> WxApi:
    """Settings: appid, secret, base_url, timeout (a mini-program or an official account);
    token_api `token` (GET /cgi-bin/token, the default) or `stable` (the shared token)."""
    appid, secret = required(settings, "appid", "secret")
    base = str(settings.get("base_url", "https://api.weixin.qq.com"))
    timeout = float(settings.get("timeout", 10.0))
    token_api = str(settings.get("token_api", "token"))
    if token_api not in TOKEN_APIS:
        raise ConfigError(f"transport settings: token_api {token_api!r}: one of token, stable")

    def stable() -> tuple[str, int]:
        body = {
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret,
            "force_refresh": False,
        }
        answer = request_json(f"{base.rstrip('/')}/cgi-bin/stable_token", body, timeout)
        return _token_answer(answer, "WeChat")

    def fetch() -> tuple[str, int]:
        query = urllib.parse.urlencode(
            {"grant_type": "client_credential", "appid": appid, "secret": secret}
        )
        answer = request_json(f"{base.rstrip('/')}/cgi-bin/token?{query}", None, timeout)
        return _token_answer(answer, "WeChat")

    return WxApi(base, TokenCache(stable if token_api == "stable" else fetch), timeout)
