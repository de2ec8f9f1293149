"""The layering of DESIGN.md is checked, not just described.

``pyproject.toml`` holds import-linter contracts: the stages (``ingest``, ``retrievers``,
``generators``) do not import each other; they import from ``rag`` only its vocabulary, never
the modules that compose them (facade, CLI, server, indexer, ...); and rag's vocabulary imports
no stage. Imports inside functions count. These tests run ``lint-imports`` on the real tree,
and on copies of it with one violation planted, to show each contract does catch one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ingest", "retrievers", "generators")
_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LINT, "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_the_tree_keeps_every_layering_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout, result.stdout


def test_every_rag_module_is_either_vocabulary_or_composition():
    """A new module in rag/ must be placed on one side: vocabulary (the stages may import it,
    it imports no stage) or composition (it may compose stages, the stages never import it)."""
    contracts = _contracts()
    composition = set(contracts["stages-use-vocabulary"]["forbidden_modules"])
    vocabulary = set(contracts["vocabulary-imports-no-stage"]["source_modules"])
    found = {f"rag.{p.stem}" for p in (ROOT / "rag").glob("*.py") if p.stem != "__init__"}
    found |= {f"rag.{p.parent.name}" for p in (ROOT / "rag").glob("*/__init__.py")}
    assert not composition & vocabulary, composition & vocabulary
    unplaced = sorted(found - composition - vocabulary)
    assert not unplaced, (
        f"rag modules {unplaced} are in no layering contract: add each to the source_modules of "
        "'vocabulary-imports-no-stage' in pyproject.toml when stages may import it, or to the "
        "forbidden_modules of 'stages-use-vocabulary' when it composes stages"
    )
    assert not (composition | vocabulary) - found, "the contracts name rag modules that do not exist"


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The four packages and pyproject.toml, copied so a violation can be planted."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code if path.exists() else code)


@pytest.mark.parametrize(
    ("module", "code", "broken", "chain"),
    [
        # a stage importing another stage, at module level
        ("generators/_planted.py", "from retrievers.scoring import maxsim_batch\n",
         "ingest, retrievers and generators do not import each other BROKEN", "generators._planted -> retrievers.scoring"),
        # a stage reaching into the facade from inside a function (lazy imports count)
        ("retrievers/_planted.py", "def reach():\n    from rag.kb import KnowledgeBase\n    return KnowledgeBase\n",
         "never the modules that compose them BROKEN", "retrievers._planted -> rag.kb"),
        # a vocabulary module importing a stage lazily
        ("rag/ids.py", "def _reach():\n    import ingest\n    return ingest\n",
         "rag's vocabulary modules import no stage BROKEN", "rag.ids -> ingest"),
    ],
    ids=["stage-imports-stage", "stage-imports-facade", "vocabulary-imports-stage"],
)
def test_a_planted_violation_breaks_its_contract(tree_copy: Path, module: str, code: str, broken: str, chain: str):
    _plant(tree_copy / module, code)
    result = _lint(tree_copy)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout, result.stdout
    assert chain in result.stdout, result.stdout  # the report names the planted import
