"""The identity types siyu knows, how each is normalised, and which are personal data.

Normalising is what makes one person's identifiers meet: `138 1234 5678` at the till and
`+86 138-1234-5678` in the mini-program must become the same key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from siyu.errors import ValidationError
from siyu.privacy import mask_phone, mask_text


@dataclass(frozen=True)
class IdentityType:
    name: str
    # 'encrypt': store keyed hash + AES-GCM + mask; 'hash': keyed hash + mask only;
    # 'clear': not personal, store the value as is.
    personal: str
    description: str


IDENTITY_TYPES: dict[str, IdentityType] = {
    t.name: t
    for t in (
        IdentityType("phone", "encrypt", "mobile phone, E.164"),
        IdentityType("phone_hash", "hash", "SHA-256 hex of the 11-digit national number"),
        IdentityType("unionid", "clear", "WeChat unionid"),
        IdentityType("openid", "clear", "WeChat mini-program / official account openid"),
        IdentityType("external_userid", "clear", "WeCom external contact id"),
        IdentityType("tmall_ouid", "clear", "Tmall/Taobao member ouid"),
        IdentityType("jd_pin", "clear", "JD account pin"),
        IdentityType("douyin_open_id", "clear", "Douyin open_id"),
        IdentityType("youzan_id", "clear", "Youzan buyer id"),
        IdentityType("card", "clear", "member card number, issued per brand"),
        IdentityType("device_id", "clear", "device identifier (weak)"),
        IdentityType("nickname", "hash", "display nickname (weak)"),
        IdentityType("email", "encrypt", "e-mail address, lower-cased"),
    )
}

_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN = re.compile(r"[^\s\x00-\x1f]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CARD = re.compile(r"[A-Za-z0-9\-]{1,64}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def normalise_phone(raw: str) -> str:
    """Mainland mobiles with or without +86/0086/86, or any E.164 number -> E.164."""
    text = _SEPARATORS.sub("", raw)
    if text.startswith("0086"):
        text = "+86" + text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = "+" + text
    elif _CN_MOBILE.fullmatch(text):
        text = "+86" + text
    if not _E164.fullmatch(text):
        raise ValidationError(
            "phone", "must be a mainland mobile (11 digits, 13-19...) or E.164 (+country...)", raw
        )
    if text.startswith("+86") and not _CN_MOBILE.fullmatch(text[3:]):
        raise ValidationError("phone", "a +86 number must be 11 digits starting 13-19", raw)
    return text


def phone_hash_of(e164: str) -> str:
    """The hash marketplaces share (Tmall, JD, Douyin): SHA-256 hex of the national number."""
    national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    return hashlib.sha256(national.encode()).hexdigest()


def normalise(type_name: str, raw: str, field: str = "value") -> str:
    """The canonical form of an identifier of `type_name`; ValidationError names the rule."""
    if type_name not in IDENTITY_TYPES:
        raise ValidationError(
            "type", f"unknown identity type {type_name!r}; known: {', '.join(IDENTITY_TYPES)}"
        )
    value = raw.strip()
    if not value:
        raise ValidationError(field, f"{type_name} must not be empty", raw)
    if type_name == "phone":
        try:
            return normalise_phone(value)
        except ValidationError as exc:
            raise ValidationError(field, exc.rule, raw) from None
    if type_name == "phone_hash":
        value = value.lower()
        if not _HEX64.fullmatch(value):
            raise ValidationError(field, "phone_hash must be 64 hexadecimal characters", raw)
        return value
    if type_name == "card":
        if not _CARD.fullmatch(value):
            raise ValidationError(field, "card must be 1-64 letters, digits or '-'", raw)
        return value.upper()
    if type_name == "email":
        value = value.lower()
        if len(value) > 254 or not _EMAIL.fullmatch(value):
            rule = "email must be local@domain.tld, at most 254 characters"
            raise ValidationError(field, rule, raw)
        return value
    if type_name == "nickname":
        if _CONTROL.search(value):
            raise ValidationError(field, "nickname must not contain control characters", raw)
        if len(value) > 64:
            raise ValidationError(field, "nickname must be at most 64 characters", raw)
        return value
    if not _TOKEN.fullmatch(value):
        raise ValidationError(field, f"{type_name} must be 1-128 characters without spaces", raw)
    return value


def mask(type_name: str, canonical: str) -> str:
    """What roles that may not see personal data are shown."""
    kind = IDENTITY_TYPES[type_name].personal
    if type_name == "phone":
        return mask_phone(canonical)
    if type_name == "phone_hash":
        return canonical[:8] + "…"
    if kind != "clear":
        return mask_text(canonical)
    return canonical if len(canonical) <= 64 else canonical[:61] + "…"
