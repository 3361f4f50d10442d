"""Console sessions: a signed cookie holding the API key's id and an expiry, CSRF tokens,
and a limit on failed logins.

The cookie never holds the key itself; every request loads the key by id again, so a
revoked or expired key ends its sessions at their next request. The signature is an HMAC
with a key derived from the settings' secret under its own label (as `privacy.Vault`
derives its keys), so a cookie signature reveals nothing about the other keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "siyu_session"
CSRF_COOKIE = "siyu_csrf"
LANG_COOKIE = "siyu_lang"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    key_id: int
    expires: int  # unix seconds


class Signer:
    """Signs and checks session cookies: base64url(JSON) + "." + base64url(HMAC)."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, b"siyu/console-session/v1", hashlib.sha256).digest()

    def issue(self, key_id: int, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = _b64(json.dumps({"k": key_id, "e": expires}, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie, or None if it is missing, forged or expired."""
        if not cookie or "." not in cookie or len(cookie) > 512:
            return None
        body, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(int(data["k"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > (now or time.time()) else None

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    """Double submit: the form's token must equal the cookie's. Another site can make a
    browser send the cookie (not with SameSite=Strict, but older browsers) but cannot
    read it to put it in the form."""
    return bool(cookie) and bool(submitted) and hmac.compare_digest(str(cookie), str(submitted))


class LoginLimiter:
    """Failed logins per client address in a sliding window, per worker process: after
    `limit` failures the address must wait until the oldest one leaves the window."""

    def __init__(self, limit: int = 10, window: float = 600.0, size: int = 10_000) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._failures: dict[str, list[float]] = {}

    def blocked(self, client: str, now: float | None = None) -> float:
        """Seconds left to wait (0 when the client may try)."""
        now = now or time.monotonic()
        recent = [t for t in self._failures.get(client, []) if t > now - self.window]
        self._failures[client] = recent
        if len(recent) < self.limit:
            return 0.0
        return recent[0] + self.window - now

    def failed(self, client: str, now: float | None = None) -> None:
        if len(self._failures) >= self.size:
            self._failures.clear()
        self._failures.setdefault(client, []).append(now or time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
