"""Personal data at rest: keyed hashes for matching, AES-GCM for values that may be shown,
and masks for everyone else.

Two keys are derived from the one secret so that a leaked hash key does not decrypt and
the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class Vault:
    """Hashes, encrypts and decrypts personal values with keys derived from the secret."""

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) != 32:
            raise ValueError("secret_key: must be 32 bytes")
        self._hash_key = hmac.new(secret_key, b"siyu/keyed-hash/v1", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(secret_key, b"siyu/aes-gcm/v1", hashlib.sha256).digest())

    def keyed_hash(self, canonical: str) -> str:
        """HMAC-SHA256 hex: equal values give equal keys, and nobody without the secret
        can test a guessed phone number against it (a bare SHA-256 of a phone can be
        reversed by enumerating the ~10^10 numbers)."""
        return hmac.digest(self._hash_key, canonical.encode(), "sha256").hex()

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Nonce + AES-GCM ciphertext; `context` (e.g. the identity type) is authenticated,
        so a ciphertext cannot be replayed into another kind of field."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, context: str) -> str:
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, context.encode()).decode()


def mask_phone(e164: str) -> str:
    """+8613812345678 -> 138****5678; other countries keep the code and the last four."""
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    return f"{e164[:3]}****{e164[-4:]}"


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧**; Latin names keep their first letter."""
    name = name.strip()
    if not name:
        return ""
    keep = 1
    return name[:keep] + "*" * max(1, len(name) - keep)


def mask_text(value: str) -> str:
    """Generic mask for short personal text such as nicknames."""
    return value[:1] + "**" if value else ""
