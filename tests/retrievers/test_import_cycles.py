"""No import cycle between the model catalogue and the modules it names.

``retrievers.registry`` names its loaders as strings; the embedders and rerankers get what
they need from it as constructor arguments (``dimension=``, ``family=``) and may look a name up
only inside a function. Each module is imported FIRST in a fresh interpreter, so an order-
dependent cycle (A needs B half-initialised) cannot hide behind an earlier import.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("retrievers/embedders", "retrievers/rerank")


def _modules() -> list[str]:
    names = ["retrievers.registry", "retrievers.router", "generators.registry", "generators.local_vlm", "rag._models"]
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
            names.append(module.removesuffix(".__init__"))
    return names


@pytest.mark.parametrize("module", _modules())
def test_module_imports_first_in_a_fresh_interpreter(module):
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr


def _module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (outside functions and classes' methods)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(item, ast.Import):
                found.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom) and item.module:
                found.add(item.module)
                found.update(f"{item.module}.{alias.name}" for alias in item.names)
            stack.extend(ast.iter_child_nodes(item))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_embedders_and_rerankers_do_not_import_the_catalogue_at_module_level(package):
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    for path in files:
        imported = _module_level_imports(path)
        assert "retrievers.registry" not in imported, f"{path.relative_to(ROOT)} imports retrievers.registry"
        assert not any(m.startswith("generators") for m in imported), path


def test_the_module_level_import_scan_sees_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from retrievers import registry\nif True:\n    import retrievers.registry as r\n"
                      "def f():\n    from retrievers.registry import build\n")
    assert {"retrievers.registry", "retrievers"} <= _module_level_imports(sample)
    sample.write_text("def f():\n    from retrievers.registry import build\n")
    assert "retrievers.registry" not in _module_level_imports(sample)
