"""The channel registry: built-in channels register like a plugin's, and what the rest of
siyu reads about channels (CHANNELS, ONLINE_CHANNELS) comes from it."""

from __future__ import annotations

import pytest

from siyu.catalog.models import CHANNELS, ONLINE_CHANNELS
from siyu.channels import Channel
from siyu.channels import registry as channels
from siyu.channels.builtin import BUILTIN
from siyu.channels.registry import Registry
from siyu.console.i18n import channel_label
from siyu.errors import NotFoundError, ValidationError
from siyu.identity.types import IDENTITY_TYPES

# What catalog.models.CHANNELS held before the registry: it must not change.
BEFORE = {
    "pos": "offline",
    "miniprogram": "private_domain",
    "official_account": "private_domain",
    "wecom": "private_domain",
    "tmall": "marketplace",
    "jd": "marketplace",
    "douyin": "marketplace",
    "youzan": "marketplace",
}


def test_the_builtin_channels_are_registered_in_order() -> None:
    assert [c.code for c in channels.all()] == list(BEFORE)
    assert channels.get("tmall") is BUILTIN[4]


def test_catalog_names_read_the_registry_unchanged() -> None:
    assert dict(CHANNELS) == BEFORE
    assert list(CHANNELS) == list(BEFORE)
    assert "pos" in CHANNELS and "weibo" not in CHANNELS
    assert set(ONLINE_CHANNELS) == {c for c, kind in BEFORE.items() if kind != "offline"}
    # the console's set arithmetic works as on the frozenset it replaces
    seen = {"pos", "tmall"}
    assert seen & ONLINE_CHANNELS == {"tmall"}
    assert seen - ONLINE_CHANNELS == {"pos"}


def test_builtins_come_from_the_default_plugin_list() -> None:
    # given registries with and without the default plugins (no entry points)
    bare = Registry(plugins=(), discover=False)
    defaults = Registry(discover=False)
    # then only the default plugin list brings the built-in channels
    assert bare.all() == ()
    assert defaults.all() == BUILTIN


def test_a_channel_must_be_well_formed_and_new() -> None:
    reg = Registry(discover=False)
    with pytest.raises(ValidationError, match="already registered"):
        reg.register(Channel("pos", "offline"))
    with pytest.raises(ValidationError, match="1-32 of a-z"):
        reg.register(Channel("Red Book", "marketplace"))
    with pytest.raises(ValidationError, match="kind must be one of: offline, private_domain"):
        reg.register(Channel("xhs", "social"))
    with pytest.raises(ValidationError, match="unknown identity type 'xhs_id'"):
        reg.register(Channel("xhs", "marketplace", ("xhs_id",)))
    assert [c.code for c in reg.all()] == list(BEFORE)  # nothing half-registered


def test_get_and_unregister_name_the_known_channels() -> None:
    reg = Registry(discover=False)
    with pytest.raises(NotFoundError, match="'weibo': not registered; known: pos, miniprogram"):
        reg.get("weibo")
    reg.unregister("youzan")
    assert "youzan" not in [c.code for c in reg.all()]


def test_channels_declare_the_identifiers_they_bring() -> None:
    brought = {t for c in BUILTIN for t in c.identity_types}
    assert brought <= set(IDENTITY_TYPES)
    # every identifier type except the channel-less ones comes from some channel
    # (e-mail is typed at registration, with the member record)
    assert set(IDENTITY_TYPES) - brought == {"device_id", "nickname", "email"}
    assert channels.get("wecom").identity_types == ("external_userid", "unionid")


def test_the_console_labels_channels_from_the_registry() -> None:
    for channel in BUILTIN:
        assert channel.label is not None
        assert channel_label(channel.code, "zh") == channel.label.zh
        assert channel_label(channel.code, "en") == channel.label.en
    assert channel_label("unknown_channel", "en") == "unknown_channel"


def test_a_plain_channel_has_no_payload_adapter_yet() -> None:
    with pytest.raises(NotImplementedError, match="'pos' has no payload adapter"):
        list(channels.get("pos").canonical({"order": 1}))
