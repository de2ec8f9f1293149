"""One shape for every "name -> thing" table: a :class:`Spec` per row, a :class:`Registry` per role.

Each stage keeps its own tables (embedder families in ``retrievers.registry``, rerankers in
``retrievers.rerank``, routers in ``retrievers.router``, generators and generator model
families in ``generators.registry``); this module only gives them one shape and one set of
errors, so adding a model, a reranker or a router is one row:

- an unknown name raises :class:`rag.errors.ConfigError` listing the known names;
- an option the row does not accept raises :class:`ConfigError` naming the ones it takes;
- a required option that is missing (or ``None``) raises :class:`ConfigError` naming it;
- a row listed as unsupported raises :class:`rag.errors.ModelError` with its reason.

The constructor's own ``TypeError`` is never caught: ``accepts`` is the contract, and a
test checks it against each loader's signature.

Loaders are ``"module:callable"`` strings imported only when a row is built, so the tables
import nothing heavy. :class:`ModelSpec` is the row of a model catalogue (a short name, its
family, hub id and vector size); :func:`model_rows` turns a catalogue into ``mmrag models`` rows.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rag.errors import ConfigError, ModelError

__all__ = ["Spec", "Registry", "ModelSpec", "find_model", "model_rows"]


@dataclass(frozen=True, slots=True)
class Spec:
    """One row of a registry.

    ``loader`` is ``"module:callable"``; the callable is called with the options as keywords.
    ``accepts`` and ``required`` together are every option it takes. ``role`` says what the
    row builds (for listings: ``"text"``, ``"reranker"``, ``"generator"``...). A row with
    ``supported=False`` is listed so users see ``reason``, and refuses to build.
    """

    name: str
    loader: str
    accepts: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()
    description: str = ""
    role: str = ""
    supported: bool = True
    reason: str = ""

    @property
    def options(self) -> frozenset[str]:
        """Every option the loader takes (accepted and required)."""
        return self.accepts | frozenset(self.required)


class Registry(Mapping[str, Spec]):
    """An explicit, ordered table of :class:`Spec` rows for one role (``kind`` names it in errors)."""

    def __init__(self, kind: str, specs: Iterable[Spec]) -> None:
        self.kind = kind
        self._specs: dict[str, Spec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ConfigError(f"{kind} {spec.name!r} is registered twice; give each row its own name")
            if spec.supported and ":" not in spec.loader:
                raise ConfigError(f"{kind} {spec.name!r}: loader must be 'module:callable', got {spec.loader!r}")
            self._specs[spec.name] = spec

    # -- Mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Spec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._specs)})"

    # -- lookup ----------------------------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """The registered names, in table order."""
        return tuple(self._specs)

    def spec(self, name: str) -> Spec:
        """The row called ``name``; :class:`ConfigError` listing the known names otherwise."""
        spec = self._specs.get(name)
        if spec is None:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self._specs)}")
        return spec

    def loader(self, name: str) -> Callable[..., Any]:
        """The callable behind ``name`` (its module is imported now)."""
        spec = self.spec(name)
        if not spec.supported:
            raise ModelError(f"{self.kind} {name} is not supported: {spec.reason}")
        module_name, _, attribute = spec.loader.partition(":")
        return getattr(importlib.import_module(module_name), attribute)

    def check(self, name: str, options: Mapping[str, Any]) -> Spec:
        """Validate ``options`` for ``name`` without building anything."""
        spec = self.spec(name)
        unknown = sorted(set(options) - spec.options)
        if unknown:
            raise ConfigError(f"{self.kind} {name!r} does not take {unknown}; it takes {sorted(spec.options)}")
        missing = [key for key in spec.required if options.get(key) is None]
        if missing:
            needs = ", ".join(f"{key}=" for key in missing)
            raise ConfigError(f"{self.kind} {name!r} needs {needs} (required: {', '.join(spec.required)})")
        return spec

    def build(self, name: str, /, **options: Any) -> Any:
        """Call the loader of ``name`` with ``options`` (checked first); nothing heavy loads here
        unless the loader itself loads."""
        self.check(name, options)
        return self.loader(name)(**options)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A registered model: short name, family (a row of its stage's family registry), real hub
    id, vector size, and what it costs."""

    name: str
    family: str
    hub_id: str | None
    dimension: int | None
    bundled: bool = False
    notes: str = ""


def find_model(models: Mapping[str, ModelSpec], name: str) -> ModelSpec | None:
    """The row registered under ``name`` as its short name or its hub id, else ``None``."""
    spec = models.get(name)
    if spec is not None:
        return spec
    return next((m for m in models.values() if m.hub_id == name), None)


def model_rows(
    models: Mapping[str, ModelSpec],
    families: Registry,
    architectures: Iterable[Mapping[str, str]] = (),
) -> list[dict[str, Any]]:
    """``mmrag models`` rows of one catalogue: each registered model, then each family that has
    no registered name (reached through a local folder whose ``config.json`` names one of the
    ``architectures`` tables' keys)."""
    rows = []
    for m in models.values():
        fam = families[m.family]
        rows.append(
            {
                "name": m.name,
                "family": m.family,
                "role": fam.role,
                "dimension": m.dimension,
                "hub_id": m.hub_id,
                "bundled": m.bundled,
                "supported": fam.supported,
                "notes": m.notes if fam.supported else fam.reason,
                "reason": fam.reason,
            }
        )
    named = {m.family for m in models.values()}
    archs: dict[str, set[str]] = {}
    for table in architectures:
        for arch, family in table.items():
            archs.setdefault(family, set()).add(arch)
    for fam in families.values():
        if fam.name in named:
            continue
        where = " or ".join(sorted(archs.get(fam.name, ())))
        rows.append(
            {
                "name": f"<folder:{fam.name}>",
                "family": fam.name,
                "role": fam.role,
                "dimension": None,
                "hub_id": None,
                "bundled": False,
                "supported": fam.supported,
                "notes": f"a local folder whose config.json names {where}" if fam.supported else fam.reason,
                "reason": fam.reason,
            }
        )
    return rows
