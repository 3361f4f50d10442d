"""Docs and code are checked together: every setting and every command is in the README."""

from __future__ import annotations

import re
from pathlib import Path

from siyu.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    settings = set(re.findall(r"SIYU_[A-Z_]+", (ROOT / "src/siyu/config.py").read_text()))
    assert settings, "config.py reads no SIYU_* variables?"
    missing = sorted(s for s in settings if f"`{s}`" not in README)
    assert missing == [], f"settings missing from the README's configuration table: {missing}"


def test_every_command_is_documented() -> None:
    commands = {c.name for c in app.registered_commands}
    missing = sorted(c for c in commands if f"`siyu {c}`" not in README)
    assert missing == [], f"commands missing from the README: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert lines == ["make demo", "make test"]
