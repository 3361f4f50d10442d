"""Reading a WeCom or WeChat push: the envelope (`Encrypt` in XML or JSON), the message
inside it, and the URL check a platform makes before it pushes anything.

The platforms push XML, or JSON when a mini-program's push format is set to JSON; both are
read into the same nested dict (an element's children by tag, a repeated tag a list), so
an event is read the same whatever the format. XML with a DOCTYPE is refused before it is
parsed (no entity of any kind is expanded).
"""

from __future__ import annotations

import hmac
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from siyu.messaging.transports.wxcrypt import Refused, WxCrypt, fresh, signature

MAX_BODY = 64 * 1024  # a push is a few hundred bytes; anything past this is not one


def parse(raw: bytes) -> dict[str, Any]:
    """A push body or a decrypted message (XML or JSON) as a dict."""
    text = raw.decode("utf-8", errors="strict").strip()
    if text.startswith("{"):
        found = json.loads(text)
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
        return found
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ValueError("XML with a DOCTYPE or an entity")
    value = _element(ET.fromstring(text))
    return value if isinstance(value, dict) else {}


def _element(node: ET.Element) -> Any:
    children = list(node)
    if not children:
        return (node.text or "").strip()
    found: dict[str, Any] = {}
    for child in children:
        value = _element(child)
        if child.tag in found:
            before = found[child.tag]
            found[child.tag] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            found[child.tag] = value
    return found


def open_push(crypt: WxCrypt, query: Mapping[str, str], body: bytes, now: float) -> dict[str, Any]:
    """The message of a safe-mode push: its signature, age and receiveid checked."""
    if len(body) > MAX_BODY:
        raise Refused(f"body: more than {MAX_BODY} bytes")
    try:
        envelope = parse(body)
    except (ValueError, ET.ParseError):
        raise Refused("body: neither XML nor JSON") from None
    ciphertext = envelope.get("Encrypt")
    if not isinstance(ciphertext, str) or not ciphertext:
        raise Refused("Encrypt: missing; set the push to safe mode (安全模式)")
    plain = crypt.open(
        query.get("msg_signature", ""),
        query.get("timestamp", ""),
        query.get("nonce", ""),
        ciphertext,
        now,
    )
    try:
        return parse(plain)
    except (ValueError, ET.ParseError):
        raise Refused("Encrypt: the message inside is neither XML nor JSON") from None


def echo(crypt: WxCrypt, query: Mapping[str, str], now: float) -> str:
    """The answer to the platform's URL check (GET with `echostr`). WeCom signs the
    encrypted echostr with `msg_signature` and wants it decrypted back; WeChat signs
    (token, timestamp, nonce) with `signature` and wants echostr as it came."""
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    echostr = query.get("echostr", "")
    if not echostr:
        raise Refused("echostr: missing")
    if "msg_signature" in query:
        return crypt.open(query["msg_signature"], timestamp, nonce, echostr, now).decode()
    expected = signature(crypt.token, timestamp, nonce)
    if not hmac.compare_digest(expected, query.get("signature", "").lower()):
        raise Refused("signature: does not match")
    fresh(timestamp, now)
    return echostr
