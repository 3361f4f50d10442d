"""A distribution installed with a `siyu.channels` entry point adds its channels when a
registry loads, after the built-ins. The distribution here is real: a dist-info directory
and a module on sys.path, found by importlib.metadata as pip's would be."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.channels.builtin import BUILTIN
from siyu.channels.registry import ENTRY_POINT_GROUP, Registry
from siyu.errors import ValidationError

PLUGIN = """
from siyu.channels import Channel, Label

def register_channels(register):
    register(Channel("xhs_fake", "marketplace", ("phone_hash",), Label("小红书", "Xiaohongshu")))
"""


@pytest.fixture(autouse=True)
def _forget_plugin_modules() -> Iterator[None]:
    yield
    for name in ("siyu_fake_channel", "siyu_broken_channel"):
        sys.modules.pop(name, None)


def _install(root: Path, dist: str, module: str, source: str) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{dist} = {module}\n")
    (root / f"{module}.py").write_text(source)


def test_an_installed_distribution_registers_its_channels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a distribution with a siyu.channels entry point on sys.path
    _install(tmp_path, "siyu_fake_channel", "siyu_fake_channel", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    # when a registry loads
    reg = Registry()
    # then its channel follows the built-ins
    assert [c.code for c in reg.all()] == [*(c.code for c in BUILTIN), "xhs_fake"]
    assert reg.get("xhs_fake").label is not None
    # and a registry told not to discover stays with the built-ins
    assert "xhs_fake" not in [c.code for c in Registry(discover=False).all()]


def test_an_entry_point_without_the_hook_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, "siyu_broken_channel", "siyu_broken_channel", "X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValidationError, match="has no register_channels"):
        Registry().all()
