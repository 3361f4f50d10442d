"""The one place that reads the environment.

Every setting is `SIYU_*`; everything else in siyu receives a `Settings` object, so tests
and the CLI can build one explicitly instead of mutating `os.environ`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siyu.errors import ConfigError

DEFAULT_STRONG_TYPES = (
    "phone",
    "phone_hash",
    "unionid",
    "card",
    "openid",
    "external_userid",
    "tmall_ouid",
    "jd_pin",
    "douyin_open_id",
    "youzan_id",
)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with `Settings.from_env()` or directly in tests."""

    database_url: str = "sqlite:///siyu.db"
    warehouse: str = "siyu.duckdb"
    lang: str = "zh"
    group_id: str = "default"
    rate_limit: float = 200.0
    secret_key: bytes = field(default=b"", repr=False)
    # The file the secret was read from or, for a new embedded store, is generated into
    # (`siyu.store.secret.bind_secret`); "" when it came from SIYU_SECRET_KEY or a test.
    secret_key_file: str = ""
    strong_identity_types: tuple[str, ...] = DEFAULT_STRONG_TYPES
    # The console's chart bundle; "" = the one inside the package (built from web/).
    console_bundle: str = ""
    # The messaging transports' settings file (TOML, `messaging_transports`); "" = none.
    messaging_file: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        lang = env.get("SIYU_LANG", "zh").strip().lower()
        if lang not in ("zh", "en"):
            raise ConfigError(f"SIYU_LANG={lang!r}: must be 'zh' or 'en'")
        database_url = env.get("SIYU_DATABASE_URL", "sqlite:///siyu.db")
        strong = tuple(
            t.strip()
            for t in env.get("SIYU_ONEID_STRONG_TYPES", ",".join(DEFAULT_STRONG_TYPES)).split(",")
            if t.strip()
        )
        secret, key_file = _secret_key(env, database_url)
        return cls(
            database_url=database_url,
            warehouse=env.get("SIYU_WAREHOUSE", "siyu.duckdb"),
            lang=lang,
            group_id=env.get("SIYU_GROUP", "default").strip() or "default",
            rate_limit=_positive_float(env, "SIYU_RATE_LIMIT", 200.0),
            secret_key=secret,
            secret_key_file=key_file,
            strong_identity_types=strong,
            console_bundle=env.get("SIYU_CONSOLE_BUNDLE", "").strip(),
            messaging_file=env.get("SIYU_MESSAGING_FILE", "").strip(),
        )

    @property
    def secret_origin(self) -> str:
        """Where the secret comes from, for messages: its file, or the variable."""
        return self.secret_key_file or "SIYU_SECRET_KEY"


def _positive_float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: must be >= 0 (0 turns the limit off)")
    return value


def _secret_key(env: dict[str, str], database_url: str) -> tuple[bytes, str]:
    """The key for encrypting and hashing personal data, and the file it is kept in.

    Production sets SIYU_SECRET_KEY (64 hex chars = 32 bytes). For the embedded SQLite
    default the key is kept in a file beside the database (SIYU_SECRET_KEY_FILE names
    another), so that `make demo` needs no set-up. Reading settings never creates that
    file: a key is generated only for a new store (`siyu.store.secret.bind_secret`), since
    a second key for an existing store could read none of its phones nor log in its keys.
    """
    raw = env.get("SIYU_SECRET_KEY")
    if raw:
        return _parse_key(raw.strip(), "SIYU_SECRET_KEY"), ""
    if not database_url.startswith("sqlite"):
        raise ConfigError(
            "SIYU_SECRET_KEY is required when SIYU_DATABASE_URL is not SQLite "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    db_path = database_url.split("///", 1)[-1] or "siyu.db"
    key_path = Path(env.get("SIYU_SECRET_KEY_FILE", str(Path(db_path).with_suffix(".key"))))
    if key_path.exists():
        return _parse_key(key_path.read_text().strip(), f"SIYU_SECRET_KEY_FILE {key_path}"), str(
            key_path
        )
    return b"", str(key_path)


def generate_secret_file(path: Path) -> bytes:
    """A new random key written to `path` (mode 0600, never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key_hex = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use that one
        return _parse_key(path.read_text().strip(), f"SIYU_SECRET_KEY_FILE {path}")
    with os.fdopen(fd, "w") as fh:
        fh.write(key_hex + "\n")
    return bytes.fromhex(key_hex)


def secret_fingerprint(secret: bytes) -> str:
    """What the store keeps of its secret to recognise it: a keyed hash, not the key."""
    return hmac.new(secret, b"siyu/secret-fingerprint/v1", hashlib.sha256).hexdigest()


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: must be 64 hexadecimal characters") from exc
    if len(key) != 32:
        raise ConfigError(f"{where}: must be 64 hexadecimal characters (32 bytes), got {len(key)}")
    return key


# Settings a transport must never read from a file: named by an environment variable.
SECRET_SETTINGS = ("corpsecret", "secret", "secret_id", "secret_key", "token")
# The secrets that check what a platform pushes back (callbacks); read by the API only, so
# the worker needs none of them and the API none of the sending secrets.
CALLBACK_SECRETS = ("callback_token", "encoding_aes_key", "callback_secret")
# Not secret: the account a push must be for (its receiveid), and the transport's kind.
CALLBACK_PLAIN = ("transport", "corpid", "appid")


def _messaging_file(path: str) -> dict[str, dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(
            f"SIYU_MESSAGING_FILE={path!r}: cannot read it ({exc.strerror})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SIYU_MESSAGING_FILE={path!r}: not TOML ({exc})") from None
    for channel, table in doc.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{channel}] must be a table of settings")
        for name in table:
            if name in SECRET_SETTINGS or name in CALLBACK_SECRETS:
                raise ConfigError(
                    f"{path}: [{channel}] {name}: give {name}_env, the name of the "
                    "environment variable holding it, never the secret itself"
                )
    return doc


def _from_env(path: str, channel: str, name: str, value: Any, source: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not source.get(value):
        raise ConfigError(f"{path}: [{channel}] {name}: environment variable {value!r} is not set")
    return source[value]


def messaging_callbacks(
    path: str, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, dict[str, str]]]:
    """The callback settings of each channel in SIYU_MESSAGING_FILE that takes callbacks
    (one with a `callback_token_env`, `encoding_aes_key_env` or `callback_secret_env`):
    its transport kind and those settings, with `corpid` / `appid`. Only the callbacks'
    secrets are read from the environment."""
    source = dict(os.environ if env is None else env)
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for channel, table in _messaging_file(path).items():
        settings = {
            name: _from_env(path, channel, f"{name}_env", table[f"{name}_env"], source)
            for name in CALLBACK_SECRETS
            if f"{name}_env" in table
        }
        if settings:
            settings.update({n: str(table[n]) for n in CALLBACK_PLAIN if n in table})
            found[channel] = (settings.pop("transport", channel), settings)
    return found


def messaging_transports(
    path: str, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each messaging channel's transport kind and settings, from the TOML file `path`
    (SIYU_MESSAGING_FILE): a table per channel code, `transport` its kind (default the
    channel's code: `http` carries any channel to a URL) and the rest its settings.
    Secrets are never in the file: `corpsecret_env = "WECOM_SECRET"` names the variable
    holding `corpsecret`, read here; a secret given in the clear, or a variable not set,
    is a ConfigError naming the setting. The callbacks' settings are left to
    `messaging_callbacks`: the worker needs none of their secrets."""
    source = dict(os.environ if env is None else env)
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for channel, table in _messaging_file(path).items():
        settings: dict[str, Any] = {}
        for name, value in table.items():
            if name.removesuffix("_env") in CALLBACK_SECRETS:
                continue  # the API's (messaging_callbacks), not the transport's
            if name.endswith("_env"):
                settings[name.removesuffix("_env")] = _from_env(path, channel, name, value, source)
            else:
                settings[name] = value
        kind = str(settings.pop("transport", channel))
        found[channel] = (kind, settings)
    return found
