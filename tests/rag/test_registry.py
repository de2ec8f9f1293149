"""The one registry shape (rag.registry) and every table built with it.

Pure tests: a one-row registry whose loader is a function of this module shows how a row is
added; the stage tables are checked against their loaders' signatures, so an ``accepts`` set
cannot promise an option the constructor would reject with a ``TypeError``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import ConfigError, MissingDependencyError, ModelError
from rag.registry import ModelSpec, Registry, Spec, find_model, model_rows

ROOT = Path(__file__).resolve().parents[2]


def make_greeting(*, who: str, punctuation: str = "!") -> str:
    """The loader of the test registry's one row."""
    return f"hello {who}{punctuation}"


def strict_loader(*, size: int) -> int:
    """A loader whose own TypeError must reach the caller (the registry never swallows it)."""
    return size


GREETINGS = Registry(
    "greeting",
    (
        Spec("hello", f"{__name__}:make_greeting", frozenset({"punctuation"}), ("who",), "says hello", role="demo"),
        Spec("plain", f"{__name__}:strict_loader", frozenset({"size", "colour"})),
        Spec("remote", "", role="demo", supported=False, reason="needs remote code, which mmrag does not run"),
    ),
)


def test_adding_a_row_is_one_spec_and_builds_through_its_loader():
    assert GREETINGS.names() == ("hello", "plain", "remote")
    assert GREETINGS.build("hello", who="world") == "hello world!"
    assert GREETINGS.build("hello", who="you", punctuation="?") == "hello you?"
    assert GREETINGS["hello"].options == {"who", "punctuation"} and "hello" in GREETINGS and len(GREETINGS) == 3


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown greeting 'bye'; known: hello, plain, remote"):
        GREETINGS.build("bye")


def test_an_option_the_row_does_not_take_is_refused_with_what_it_takes():
    with pytest.raises(ConfigError, match=r"greeting 'hello' does not take \['volume'\]; it takes \['punctuation', 'who'\]"):
        GREETINGS.build("hello", who="world", volume=11)


def test_a_missing_required_option_is_named():
    with pytest.raises(ConfigError, match=r"greeting 'hello' needs who="):
        GREETINGS.build("hello")
    with pytest.raises(ConfigError, match=r"needs who="):  # None is not a value for a required option
        GREETINGS.build("hello", who=None)


def test_an_unsupported_row_refuses_with_its_reason():
    with pytest.raises(ModelError, match="greeting remote is not supported: needs remote code"):
        GREETINGS.build("remote")


def test_the_loaders_own_type_error_is_not_swallowed():
    # "colour" is accepted by the row but not by the loader: a bug in the table, shown as it is
    with pytest.raises(TypeError, match="colour"):
        GREETINGS.build("plain", size=1, colour="red")


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ConfigError, match="registered twice"):
        Registry("greeting", (Spec("a", "m:f"), Spec("a", "m:g")))
    with pytest.raises(ConfigError, match="module:callable"):
        Registry("greeting", (Spec("a", "no_colon"),))


def test_model_catalogue_rows_and_lookup_by_name_or_hub_id():
    models = {"tiny": ModelSpec("tiny", "hello", "org/tiny-model", 8, notes="test")}
    assert find_model(models, "tiny") is find_model(models, "org/tiny-model") is models["tiny"]
    assert find_model(models, "org/other") is None
    families = Registry("greeting", (*GREETINGS.values(), Spec("folder-only", "m:f", role="demo")))
    rows = {r["name"]: r for r in model_rows(models, families, ({"FolderOnlyModel": "folder-only"},))}
    assert rows["tiny"]["role"] == "demo" and rows["tiny"]["dimension"] == 8 and rows["tiny"]["supported"]
    assert rows["<folder:folder-only>"]["notes"] == "a local folder whose config.json names FolderOnlyModel"
    assert not rows["<folder:remote>"]["supported"] and "remote code" in rows["<folder:remote>"]["notes"]


# ------------------------------------------------------------------ every stage's tables
def _tables() -> list[Registry]:
    from generators import registry as generator_registry
    from retrievers import registry as model_registry
    from retrievers.rerank import RERANKERS
    from retrievers.router import ROUTERS

    return [model_registry.FAMILIES, RERANKERS, ROUTERS, generator_registry.GENERATORS, generator_registry.FAMILIES]


@pytest.mark.parametrize("table", _tables(), ids=lambda t: t.kind)
def test_every_row_accepts_only_what_its_loader_takes(table):
    for spec in table.values():
        if not spec.supported:
            continue
        params = inspect.signature(table.loader(spec.name)).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            named = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
            assert named, f"{table.kind} {spec.name}: a loader that takes only **options checks nothing"
            continue
        assert spec.options <= set(params), f"{table.kind} {spec.name}: {sorted(spec.options - set(params))}"
        # and every required constructor argument is one the registry knows about
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty
                    and p.kind is not inspect.Parameter.VAR_POSITIONAL}
        assert required <= spec.options, f"{table.kind} {spec.name}: {sorted(required - spec.options)}"


def test_mmrag_models_lists_both_catalogues_once_grouped_by_role():
    from generators import registry as generator_registry
    from rag._models import LISTING_ROLES, list_models
    from retrievers import registry as model_registry

    rows = list_models()
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    assert set(names) == {r["name"] for r in (*model_registry.list_models(), *generator_registry.list_models())}
    named = [r for r in rows if not r["name"].startswith("<folder:")]
    assert [r["name"] for r in rows[: len(named)]] == [r["name"] for r in named]  # folder-only families last
    ranks = [LISTING_ROLES.index(r["role"]) for r in named]
    assert ranks == sorted(ranks)
    assert {r["role"] for r in rows} <= set(LISTING_ROLES)


def test_a_registered_name_of_another_role_is_refused_by_the_composition_root():
    from rag._models import build_generator_for
    from rag.config import AskConfig, Config

    with pytest.raises(ModelError, match=r"'colqwen2' is a late_interaction model \(family colqwen2\), not a generator"):
        build_generator_for("local", None, Config(ask=AskConfig(generator="local", generator_model="colqwen2")))
    with pytest.raises(ModelError, match="not a generator"):  # hub ids count as the registered model
        build_generator_for("local", None, Config(ask=AskConfig(generator="local", generator_model="facebook/dinov2-small")))


def test_config_options_say_which_setting_is_missing():
    from rag._models import build_reranker_for, build_router_for
    from rag.config import AskConfig, Config

    with pytest.raises(ConfigError, match="reranker 'cross-encoder' needs a model: set ask.reranker_model"):
        build_reranker_for("cross-encoder", None, Config(ask=AskConfig(reranker="cross-encoder")))
    with pytest.raises(ConfigError, match="unknown router 'smart'; known: rules, embedding, hybrid, llm, all"):
        build_router_for("smart", None, Config())


# ------------------------------------------------------------------ lazy imports
def test_require_names_the_distribution_and_the_extra():
    from rag.lazy import require

    assert require("json").dumps([1]) == "[1]"
    with pytest.raises(MissingDependencyError, match=r"no-such-dist is not installed \(needed for testing\): "
                                                     r"run `pip install 'mmrag\[vision\]'`"):
        require("no_such_dist.sub", "vision", "testing")
    with pytest.raises(MissingDependencyError, match="pip install 'pillow-simd'"):
        require("no_such_pil_module", None, package="pillow-simd")


def test_no_hand_written_install_hints_beside_require():
    """Every ``except ImportError`` left either falls back on purpose (and says why) or converts an
    ImportError raised inside a third-party call; install hints for imports go through require()."""
    allowed = {  # file -> why it keeps its own except ImportError
        "rag/lazy.py": "require itself",
        "rag/_models.py": "fallback: no transformers, no progress bar to silence",
        "retrievers/embedders/_batching.py": "fallback: a progress bar is cosmetic",
        "retrievers/store/_lock.py": "fallback: no fcntl on Windows",
        "generators/local_vlm.py": "an ImportError raised inside from_pretrained",
    }
    found = set()
    for package in ("rag", "ingest", "retrievers", "generators"):
        for path in (ROOT / package).rglob("*.py"):
            if "except ImportError" in path.read_text(encoding="utf-8"):
                found.add(path.relative_to(ROOT).as_posix())
    assert found == set(allowed), (sorted(found - set(allowed)), sorted(set(allowed) - found))


def test_rag_helpers_do_not_import_torch():
    code = "import sys, rag.registry, rag.lazy, rag.vectors, rag._models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert importlib.import_module("rag.registry").__all__
