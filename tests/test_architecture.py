"""The package's structure stays as docs/architecture.md draws it.

The import contracts live in pyproject.toml (`[tool.importlinter]`, also run by `make lint`
as `lint-imports`): faces over domains over the store, the API and the console never
importing each other, and no cycle between folders. This test checks them on the real
import graph, and checks that they would catch a face-to-face import and a folder cycle
(an import added to a copy of the graph), so a contract that can no longer fail is caught
too. The rest are rules a grep can state: dialect spellings only in `store/`, small CLI
modules.
"""

from __future__ import annotations

import copy
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter import configuration
from importlinter.application.use_cases import read_user_options
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "siyu"
PYPROJECT = ROOT / "pyproject.toml"


@cache
def _graph() -> grimp.ImportGraph:
    options = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return grimp.build_graph(
        "siyu", exclude_type_checking_imports=options["exclude_type_checking_imports"]
    )


CONTRACT_TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


def _contracts() -> dict[str, Contract]:
    configuration.configure()  # import-linter's readers, as its CLI sets them up
    options = read_user_options(str(PYPROJECT))
    contracts = {}
    for contract_options in options.contracts_options:
        kind = CONTRACT_TYPES[contract_options["type"]]
        contracts[contract_options["id"]] = kind(
            name=contract_options["name"],
            session_options=options.session_options,
            contract_options=contract_options,
        )
    return contracts


def _broken(contract: Contract, graph: grimp.ImportGraph) -> Any:
    """The contract's check, or None when kept."""
    check = contract.check(copy.deepcopy(graph), verbose=False)
    return None if check.kept else check.metadata


@pytest.mark.parametrize("contract_id", ["layers", "acyclic"])
def test_the_package_keeps_its_import_contracts(contract_id: str) -> None:
    # Given the real import graph of siyu, when each contract is checked, then it holds
    broken = _broken(_contracts()[contract_id], _graph())
    assert broken is None, f"import contract {contract_id!r} broken: {broken}"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("siyu.console.web", "siyu.api.deps"),  # face to face
        ("siyu.api.app", "siyu.console.routes"),  # face to face, the other way
        ("siyu.identity.merge", "siyu.api.problems"),  # a domain importing a face
        ("siyu.ledger.posting", "siyu.cli"),  # a domain importing the CLI
        ("siyu.store.engine", "siyu.ledger.models"),  # the store importing a domain
    ],
)
def test_the_layers_contract_catches_an_upward_import(importer: str, imported: str) -> None:
    # Given the real graph plus one import that goes up a layer
    graph = copy.deepcopy(_graph())
    graph.add_import(importer=importer, imported=imported)
    # When the layers contract is checked, then it is broken
    assert _broken(_contracts()["layers"], graph) is not None


def test_the_acyclic_contract_catches_a_folder_cycle() -> None:
    # Given two domains where one already imports the other (importer -> identity) ...
    graph = copy.deepcopy(_graph())
    assert graph.find_shortest_chain(
        importer="siyu.importer", imported="siyu.identity", as_packages=True
    )
    # ... when identity imports the importer back, then the folders form a cycle
    graph.add_import(importer="siyu.identity.types", imported="siyu.importer.kinds")
    assert _broken(_contracts()["acyclic"], graph) is not None


def _python_files(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def test_dialect_spellings_live_only_in_the_store() -> None:
    # Domain code asks store.dialect for a spelling; it never tests the dialect's name.
    pattern = re.compile(r"dialect\.name\s*[!=]=|FOR UPDATE")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _python_files(PACKAGE)
        if PACKAGE / "store" not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_cli_modules_stay_small() -> None:
    cli = PACKAGE / "cli"
    assert cli.is_dir(), "the CLI is a package: one module per command group"
    sizes = {p.name: len(p.read_text().splitlines()) for p in _python_files(cli)}
    assert {name: n for name, n in sizes.items() if n > 300} == {}


def _error_classes() -> list[type]:
    """Every SiyuError subclass siyu defines, after importing every module of the package."""
    import importlib
    import pkgutil

    import siyu
    from siyu.errors import SiyuError

    for info in pkgutil.walk_packages(siyu.__path__, "siyu."):
        if ".migrations." not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, todo = [], [SiyuError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("siyu."):
                found.append(sub)
            todo.append(sub)
    return found


def test_each_error_lives_in_an_errors_module_with_its_own_code() -> None:
    classes = _error_classes()
    assert len(classes) >= 10
    misplaced = [
        f"{c.__module__}.{c.__name__}"
        for c in classes
        if c.__module__ != "siyu.errors" and not c.__module__.endswith(".errors")
    ]
    assert misplaced == [], "a domain's errors belong in its errors.py"
    # A code is what API clients branch on: a subclass that declares one declares a new one.
    declared = [(c.__dict__["code"], c.__name__) for c in classes if "code" in c.__dict__]
    codes = [code for code, _ in declared]
    assert sorted(codes) == sorted(set(codes)), f"codes used twice: {declared}"
    documented = (ROOT / "docs" / "architecture.md").read_text()
    assert [c for c in codes if f"`{c}`" not in documented] == []
