"""Every `curl` example of the README runs as written against a live server on a demo
brand and gets a non-error answer (issue #14: the POST examples answered 422, they sent
no JSON content type). Only the server's address, the keys ($KEY, $STORE_KEY,
$CHANNEL_KEY, set as the README sets them) and the ids of a member and a card, which the
reader takes from their own data, are the fixture's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import IN_CI, ROOT
from tests.console.conftest import SECRET, Brand

from siyu.auth.keys import create_key
from siyu.privacy import Vault

README = ROOT / "README.md"
ADDRESS = "http://127.0.0.1:8000"


def curl_examples() -> list[str]:
    """The README's curl commands, continuation lines joined, in reading order."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("curl "):
                commands.append(line.strip())
    return commands


def test_the_readme_shows_curl_for_reading_and_for_each_way_of_writing() -> None:
    commands = curl_examples()
    assert any("-X POST" in c for c in commands) and any("-X PUT" in c for c in commands)
    for command in commands:
        if " -d " in command:  # a body is JSON and says so, or the API answers 422
            assert '-H "Content-Type: application/json"' in command, command


def test_every_readme_curl_example_succeeds(brand: Brand, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("CI=true requires curl (the README's examples use it)")
        pytest.skip("no curl on this machine")
    # given the demo brand served live, and the README's keys made as the README makes them
    assert brand.one("SELECT COUNT(*) FROM stores WHERE group_id = :g AND store_id = 'S0001'")
    vault = Vault(SECRET)
    keys = {
        "KEY": brand.keys["admin"],
        "STORE_KEY": create_key(
            brand.engine, vault, brand.group, "store", stores=("S0001",)
        ).secret,
        "CHANNEL_KEY": create_key(
            brand.engine, vault, brand.group, "channel", channel="tmall"
        ).secret,
    }
    member = brand.one(
        "SELECT MIN(member_id) FROM members WHERE group_id = :g AND status = 'active'"
    )
    identities = pd.read_parquet(Path(brand.demo.data_dir) / "identities.parquet")
    card = str(identities.loc[identities["type"] == "card", "value"].iloc[0])
    commands = curl_examples()
    assert len(commands) >= 5
    for i, command in enumerate(commands):
        run = command.replace(ADDRESS, brand.base).replace("value=C001", f"value={card}")
        run = re.sub(r"/members/42\b", f"/members/{member}", run)
        body = tmp_path / f"answer-{i}.json"
        # when it is run by the shell, as a reader would paste it
        done = subprocess.run(
            ["bash", "-c", f"{run} -s -o {body} -w '%{{http_code}}'"],
            env={**os.environ, **keys},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # then the server answers it with success
        assert done.returncode == 0, done.stderr
        status = int(done.stdout)
        assert 200 <= status < 300, f"{command}\n-> {status} {body.read_text(encoding='utf-8')}"
