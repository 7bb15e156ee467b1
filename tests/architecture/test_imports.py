"""The package's floors, as pyproject.toml states them: no upward import, no import loop.

import-linter's contract is the statement; these tests check it with grimp (the graph library
import-linter is built on), so ``pytest`` alone catches a break, and show that the checks can
fail at all by adding a forbidden import to the graph.
"""

from __future__ import annotations

import graphlib
import tomllib
from pathlib import Path

import grimp
import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _contract() -> dict[str, object]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "floors"]
    return dict(contract)


def _floors() -> list[list[str]]:
    floors = _contract()["layers"]
    assert isinstance(floors, list)
    return [[name.strip() for name in floor.split("|")] for floor in floors]


def _layers() -> list[grimp.Layer]:
    return [grimp.Layer(*floor) for floor in _floors()]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("tunery")


def _upward(graph: grimp.ImportGraph) -> set[grimp.PackageDependency]:
    return graph.find_illegal_dependencies_for_layers(layers=_layers(), containers={"tunery"})


def _import_loop(graph: grimp.ImportGraph) -> tuple[str, ...] | None:
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as error:
        return tuple(error.args[1])
    return None


def test_no_module_imports_from_a_floor_above_its_own(graph: grimp.ImportGraph) -> None:
    found = sorted(f"{d.importer} -> {d.imported}" for d in _upward(graph))
    assert found == []


def test_every_module_of_the_package_sits_on_a_floor(graph: grimp.ImportGraph) -> None:
    listed = {name for floor in _floors() for name in floor}
    top = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    assert top - listed - {"__main__"} == set()


def test_there_is_no_import_loop_anywhere(graph: grimp.ImportGraph) -> None:
    assert _import_loop(graph) is None


def test_the_floor_check_catches_an_upward_import(graph: grimp.ImportGraph) -> None:
    graph.add_import(importer="tunery.run._sequential", imported="tunery.study")
    try:
        found = {(d.importer, d.imported) for d in _upward(graph)}
    finally:
        graph.remove_import(importer="tunery.run._sequential", imported="tunery.study")
    assert ("tunery.run", "tunery.study") in found


def test_the_loop_check_catches_a_loop(graph: grimp.ImportGraph) -> None:
    graph.add_import(importer="tunery.records", imported="tunery.trial")
    try:
        loop = _import_loop(graph)
    finally:
        graph.remove_import(importer="tunery.records", imported="tunery.trial")
    assert loop is not None
    assert {"tunery.records", "tunery.trial"} <= set(loop)
