"""The message crypto of WeCom and WeChat pushes in safe mode (安全模式), as the platforms'
`WXBizMsgCrypt` samples publish it (tested against their worked examples).

`msg_signature` is the SHA-1 of token, timestamp, nonce and the ciphertext, sorted and
joined. The ciphertext is AES-256-CBC over `16 random bytes + 4-byte network-order length
+ message + receiveid`, PKCS#7-padded to 32-byte blocks, base64; the key is the
EncodingAESKey (43 characters) decoded with one `=` added, and the IV its first 16 bytes.
`receiveid` is the corpid (WeCom) or the appid (WeChat): a message for another account,
even one signed with a leaked token, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.errors import ConfigError

BLOCK = 32  # the samples pad to 32 bytes, not AES's 16
MAX_SKEW = 300  # seconds between the platform's timestamp and ours: older is a replay


class Refused(Exception):
    """A push that is not the platform's: a bad signature, a stale timestamp, a
    ciphertext that does not open, or another account's message. The reason says which,
    never what was in it."""


def signature(*parts: str) -> str:
    """SHA-1 of the parts sorted and joined: `msg_signature` over (token, timestamp, nonce,
    ciphertext), or WeChat's plain `signature` over (token, timestamp, nonce)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def fresh(timestamp: str, now: float) -> None:
    """Refuse a timestamp more than MAX_SKEW seconds from `now` (either way)."""
    try:
        at = int(timestamp)
    except ValueError:
        raise Refused("timestamp: not a number of seconds") from None
    if abs(now - at) > MAX_SKEW:
        raise Refused(f"timestamp: more than {MAX_SKEW} s from the server's clock")


class WxCrypt:
    """One account's token, AES key and receiveid (corpid or appid)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ConfigError("encoding_aes_key: the EncodingAESKey has 43 characters")
        try:
            self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ConfigError("encoding_aes_key: not base64 (a-z, A-Z, 0-9)") from None
        self.token = token
        self.receive_id = receive_id

    def signature(self, timestamp: str, nonce: str, ciphertext: str) -> str:
        return signature(self.token, timestamp, nonce, ciphertext)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, ciphertext: str) -> None:
        expected = self.signature(timestamp, nonce, ciphertext)
        if not hmac.compare_digest(expected, msg_signature.lower()):
            raise Refused("msg_signature: does not match")

    def open(
        self, msg_signature: str, timestamp: str, nonce: str, ciphertext: str, now: float
    ) -> bytes:
        """The message inside a push, after its signature, age and receiveid are checked."""
        self.verify(msg_signature, timestamp, nonce, ciphertext)
        fresh(timestamp, now)
        return self.decrypt(ciphertext)

    def decrypt(self, ciphertext: str) -> bytes:
        try:
            raw = base64.b64decode(ciphertext, validate=True)
        except binascii.Error:
            raise Refused("Encrypt: not base64") from None
        if not raw or len(raw) % 16:
            raise Refused("Encrypt: not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise Refused("Encrypt: bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise Refused("Encrypt: too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise Refused("Encrypt: the length field runs past the message")
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise Refused("receiveid: the message is for another corpid or appid")
        return message

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        """The ciphertext the platform would send (tests, and replies if ever needed)."""
        nonce = os.urandom(16) if random16 is None else random16
        body = nonce + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()
