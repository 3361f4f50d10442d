"""The README describes the product, not the history of its making (issue #14: a heading
still read "What is here (issue #2: the foundation)")."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_the_readme_names_no_issue_of_the_project() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#") and " " in line]
    assert len(headings) > 5
    history = re.compile(r"\bissue\b|#\d+", re.I)
    assert [h for h in headings if history.search(h)] == []
    # nor anywhere else in its prose (an "issue" of keys is a verb, not a ticket)
    assert re.findall(r"issue #\d+|the \w+ issue\b", text) == []
