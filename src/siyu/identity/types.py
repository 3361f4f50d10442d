"""The identity types siyu knows, how each is normalised, which are personal data, and
in what scope each value is unique.

Normalising is what makes one person's identifiers meet: `138 1234 5678` at the till and
`+86 138-1234-5678` in the mini-program must become the same key.

Scoping is what keeps two people apart: a card number is issued by a brand, an openid by
an app, so the same value in two scopes is two identifiers. An identity is
(type, scope, value); a global type's scope is ''.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from siyu.errors import ValidationError
from siyu.privacy import mask_phone, mask_text

# What the scope of a scoped type names. A value is unique only within its scope.
SCOPE_KINDS = {
    "brand": "the brand that issued it (its brand_id)",
    "app": "the app that issued it: a mini-program's or official account's appid, a "
    "Douyin app's client key",
    "corp": "the WeCom company (corp id) whose contact it is",
    "platform": "the WeChat open-platform account the apps are bound to",
    "shop": "the marketplace shop whose buyer it is",
}


@dataclass(frozen=True)
class IdentityType:
    name: str
    # 'encrypt': store keyed hash + AES-GCM + mask; 'hash': keyed hash + mask only;
    # 'clear': not personal, store the value as is.
    personal: str
    description: str
    # A key of SCOPE_KINDS, or None for a global type (one person everywhere: a phone).
    scope: str | None = None


IDENTITY_TYPES: dict[str, IdentityType] = {
    t.name: t
    for t in (
        IdentityType("phone", "encrypt", "mobile phone, E.164"),
        IdentityType("phone_hash", "hash", "SHA-256 hex of the 11-digit national number"),
        IdentityType("unionid", "clear", "WeChat unionid", "platform"),
        IdentityType("openid", "clear", "WeChat mini-program / official account openid", "app"),
        IdentityType("external_userid", "clear", "WeCom external contact id", "corp"),
        IdentityType("tmall_ouid", "clear", "Tmall/Taobao member ouid", "shop"),
        # JD's pin is the buyer's own JD account name, the same in every shop.
        IdentityType("jd_pin", "clear", "JD account pin"),
        IdentityType("douyin_open_id", "clear", "Douyin open_id", "app"),
        IdentityType("youzan_id", "clear", "Youzan buyer id", "shop"),
        IdentityType("card", "clear", "member card number, issued per brand", "brand"),
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
_SCOPE = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}")


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


def scope_of(
    type_name: str, scope: str | None = None, brand_id: str | None = None, field: str = "scope"
) -> str:
    """The scope an identifier of `type_name` is stored under; ValidationError names the
    field and the rule.

    A card's scope is its brand: `brand_id` when no scope is given (a card without either
    is refused, naming brand_id; one whose scope and brand differ, naming `field`). Another
    scoped type without a scope takes '', the group's default app, company, account or
    shop: a group with one mini-program need never name it. A global type takes no scope.
    """
    kind = IDENTITY_TYPES[type_name].scope if type_name in IDENTITY_TYPES else None
    given = scope.strip() if scope is not None else ""
    if kind is None:
        if given:
            raise ValidationError(field, f"{type_name} is global: it takes no scope", scope)
        return ""
    if given and not _SCOPE.fullmatch(given):
        rule = f"a scope (the {kind} of the {type_name}) must be 1-64 characters without spaces"
        raise ValidationError(field, rule, scope)
    if kind == "brand":
        if brand_id and given and given != brand_id:
            rule = f"a card's scope is its brand: {given!r} is not brand_id {brand_id!r}"
            raise ValidationError(field, rule, scope)
        if not (given or brand_id):
            raise ValidationError("brand_id", "a card is issued per brand: name its brand_id")
        if not given and not _SCOPE.fullmatch(str(brand_id)):
            rule = "a card's brand_id must be 1-64 characters without spaces"
            raise ValidationError("brand_id", rule, brand_id)
        return given or str(brand_id)
    return given


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
