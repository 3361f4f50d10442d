"""Normalising identifiers so one person's spellings meet, and masking what is personal."""

from __future__ import annotations

import re

import pytest

from siyu.errors import ValidationError
from siyu.identity.types import mask, normalise, phone_hash_of
from siyu.privacy import Vault, mask_name


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "+86 138-1234-5678",
        "008613812345678",
        "8613812345678",
        "(138) 1234.5678",
    ],
)
def test_mainland_mobiles_in_any_spelling_become_one_e164(raw: str) -> None:
    assert normalise("phone", raw) == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("12345", "must be a mainland mobile"),
        ("+8612345678901", "a +86 number must be 11 digits starting 13-19"),
        ("", "phone must not be empty"),
    ],
)
def test_bad_phones_name_the_rule(raw: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(rule)) as err:
        normalise("phone", raw)
    assert err.value.field == "value"


def test_other_identifiers() -> None:
    assert normalise("card", " c-001 ") == "C-001"
    assert normalise("phone_hash", "A" * 64) == "a" * 64
    with pytest.raises(ValidationError, match="64 hexadecimal"):
        normalise("phone_hash", "abc")
    with pytest.raises(ValidationError, match="without spaces"):
        normalise("openid", "o 1")
    with pytest.raises(ValidationError, match="unknown identity type 'fax'"):
        normalise("fax", "1")


def test_marketplace_hash_is_sha256_of_the_national_number() -> None:
    assert phone_hash_of("+8613812345678") == (
        "38aed9048140b0e437ea81461d9ea4524169f6795004da120bcf7d41894e4d15"
    )


def test_masks() -> None:
    assert mask("phone", "+8613812345678") == "138****5678"
    assert mask("nickname", "小美") == "小**"
    assert mask("openid", "o-1") == "o-1"  # not personal
    assert mask_name("欧阳娜娜") == "欧***"


def test_vault_hashes_with_a_key_and_encrypts_with_context() -> None:
    a, b = Vault(bytes(32)), Vault(bytes([1] * 32))
    assert a.keyed_hash("+8613812345678") != b.keyed_hash("+8613812345678")
    assert a.keyed_hash("x") == a.keyed_hash("x")
    blob = a.encrypt("+8613812345678", "phone")
    assert a.decrypt(blob, "phone") == "+8613812345678"
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        a.decrypt(blob, "name")  # ciphertext moved to another kind of field
    with pytest.raises(Exception):  # noqa: B017
        b.decrypt(blob, "phone")  # wrong key
