"""User metadata of documents, and filters on it: parsing and checking, nothing else.

A document's metadata is a flat mapping of keys to scalars, given at ingest
(``mmrag ingest FILES --meta team=finance --meta year=2025``, ``KnowledgeBase.ingest(...,
metadata={"team": "finance"})``, the HTTP upload's ``metadata`` form field). It is kept in the
document's registry record and in every point's payload (:mod:`retrievers.payloads`).

Rules, stated once:

- a key is 1-64 letters, digits, ``_`` or ``-``, starting with a letter (no dots: a dot would
  reach into a nested field);
- a value is a string, an integer, a finite number or a boolean; on the command line (and in
  any ``key=value`` text) it is **typed by its spelling**: ``true``/``false`` (any case) are
  booleans, ``2025`` or ``-3`` an integer, ``9.5`` or ``1e3`` a number, anything else a string
  (quote nothing: ``--meta title="Q3 report"`` is the string ``Q3 report``);
- a key holds one type in a knowledge base: the first document that uses it fixes it (an
  integer is accepted where numbers are held), and a document whose value has another type is
  refused before anything is ingested (:func:`check_types`).

A filter (``--where team=finance``, ``where={"team": "finance"}``) maps keys to a value or a
list of values: keys are ANDed, the values of one key are ORed (``--where team=finance,legal``).
A ``where`` value typed as text whose key holds numbers or booleans is read by the same spelling
rule, so the HTTP API's ``{"year": "2025"}`` finds ``year=2025``. A key no document has is an
error (:class:`rag.errors.QueryError`) that names the keys there are: a typo must not read as
"nothing matches".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.errors import ConfigError, QueryError

__all__ = [
    "Scalar",
    "parse_value",
    "parse_pairs",
    "parse_where",
    "check_metadata",
    "check_where",
    "key_types",
    "check_types",
    "coerce_where",
    "type_name",
    "matches",
]

Scalar = str | int | float | bool

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
_INT = re.compile(r"^[+-]?\d+\Z")
_MAX_VALUE_CHARS = 1000
_MAX_KEYS = 64


def parse_value(text: str) -> Scalar:
    """``text`` typed by its spelling: bool, int, float, else the string itself."""
    s = text.strip()
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    if _INT.match(s):
        return int(s)
    try:
        number = float(s)
    except ValueError:
        return text
    return number if math.isfinite(number) and any(c.isdigit() for c in s) else text


def type_name(value: Any) -> str:
    """``string``, ``integer``, ``number`` or ``boolean`` (bool before int: True is an int too)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise (ConfigError if what == "metadata" else QueryError)(
            f"{what} key {key!r} is not valid: use 1-64 letters, digits, '_' or '-', starting with a letter "
            "(e.g. team, fiscal_year)"
        )
    return key


def _check_scalar(key: str, value: Any, what: str) -> Scalar:
    error = ConfigError if what == "metadata" else QueryError
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{what} {key!r}: {value!r} is not a finite number")
    if not isinstance(value, (str, int, float, bool)):
        raise error(
            f"{what} {key!r}: expected a string, an integer, a number or a boolean, got {type(value).__name__} "
            f"{value!r}; metadata is flat (store a list as several keys or one joined string)"
        )
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        raise error(f"{what} {key!r}: the value is {len(value)} characters long; the limit is {_MAX_VALUE_CHARS}")
    return value


def parse_pairs(items: Iterable[str], what: str = "metadata") -> dict[str, Scalar]:
    """``["team=finance", "year=2025"]`` -> ``{"team": "finance", "year": 2025}`` (typed by spelling).
    A key given twice is an error: say it once."""
    out: dict[str, Scalar] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--meta {item!r}: expected KEY=VALUE, e.g. --meta team=finance")
        key = _check_key(key.strip(), what)
        if key in out:
            raise ConfigError(f"--meta {key} is given twice ({out[key]!r} and {value!r}); give each key once")
        out[key] = _check_scalar(key, parse_value(value), what)
    return check_metadata(out)


def parse_where(items: Iterable[str]) -> dict[str, Scalar | list[Scalar]]:
    """``["team=finance,legal", "year=2025"]`` -> ``{"team": ["finance", "legal"], "year": 2025}``.
    Repeating a key is an error (it would ask for two values at once)."""
    out: dict[str, Scalar | list[Scalar]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise QueryError(f"--where {item!r}: expected KEY=VALUE or KEY=V1,V2 (any of), e.g. --where team=finance")
        key = _check_key(key.strip(), "filter")
        if key in out:
            raise QueryError(f"--where {key} is given twice; for any of several values write --where {key}=V1,V2")
        values = [parse_value(v) for v in value.split(",")]
        out[key] = values[0] if len(values) == 1 else values
    return check_where(out)


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """A plain copy of valid metadata (see the module rules), or a :class:`ConfigError` naming the problem."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata must be a mapping of keys to values, got {type(metadata).__name__}")
    if len(metadata) > _MAX_KEYS:
        raise ConfigError(f"metadata has {len(metadata)} keys; the limit is {_MAX_KEYS}")
    return {_check_key(k, "metadata"): _check_scalar(k, v, "metadata") for k, v in metadata.items()}


def check_where(where: Mapping[str, Any] | None) -> dict[str, Scalar | list[Scalar]]:
    """A plain copy of a valid filter: each key to a scalar or a non-empty list of scalars."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise QueryError(f"where must be a mapping of metadata keys to values, got {type(where).__name__}")
    out: dict[str, Scalar | list[Scalar]] = {}
    for key, value in where.items():
        _check_key(key, "filter")
        if isinstance(value, (list, tuple)):
            if not value:
                raise QueryError(f"filter {key!r}: an empty list matches nothing; give at least one value")
            out[key] = [_check_scalar(key, v, "filter") for v in value]
        else:
            out[key] = _check_scalar(key, value, "filter")
    return out


def key_types(metadatas: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The type each key holds across ``metadatas`` (:func:`type_name`; integers in a key that
    also holds numbers count as numbers)."""
    out: dict[str, str] = {}
    for metadata in metadatas:
        for key, value in metadata.items():
            kind = type_name(value)
            held = out.get(key)
            if held is None or (held == "integer" and kind == "number"):
                out[key] = kind
    return out


def check_types(metadata: Mapping[str, Scalar], held: Mapping[str, str]) -> dict[str, Scalar]:
    """``metadata`` as stored (an integer under a key that holds numbers becomes a float), or a
    :class:`ConfigError` when a value's type differs from what the knowledge base's key holds
    (:func:`key_types`): one key, one type, or filters on it would miss documents."""
    out: dict[str, Scalar] = {}
    for key, value in metadata.items():
        kind, have = type_name(value), held.get(key)
        if have is None or kind == have:
            out[key] = value
            continue
        if have == "number" and kind == "integer":
            out[key] = float(value)
            continue
        raise ConfigError(
            f"metadata {key!r}: this knowledge base holds {have} values under {key!r}, got the {kind} {value!r}; "
            f"give a {have} (on the command line a value is typed by its spelling) or use another key"
        )
    return out


def coerce_where(where: Mapping[str, Scalar | Sequence[Scalar]], held: Mapping[str, str]) -> dict[str, Scalar | list[Scalar]]:
    """``where`` with each value in the type its key holds (:func:`key_types`): a string spelled as
    a number or boolean is read as one, an integer where numbers are held becomes a float. A key no
    document has, or a value that cannot be of its key's type, is a :class:`QueryError`."""
    out: dict[str, Scalar | list[Scalar]] = {}
    for key, value in where.items():
        have = held.get(key)
        if have is None:
            known = ", ".join(sorted(held)) or "none (ingest with --meta KEY=VALUE)"
            raise QueryError(f"no document has the metadata key {key!r}; the keys in this knowledge base: {known}")
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        typed = [_as_type(key, v, have) for v in values]
        out[key] = typed if isinstance(value, (list, tuple)) else typed[0]
    return out


def _as_type(key: str, value: Scalar, have: str) -> Scalar:
    candidate = parse_value(value) if isinstance(value, str) and have != "string" else value
    kind = type_name(candidate)
    if kind == have:
        return candidate
    if have == "number" and kind == "integer":
        return float(candidate)
    if have == "string" and kind != "string":
        return str(candidate).lower() if isinstance(candidate, bool) else str(candidate)
    raise QueryError(f"filter {key!r}: the documents hold {have} values under {key!r}, got {value!r}")


def matches(metadata: Mapping[str, Any], where: Mapping[str, Scalar | Sequence[Scalar]]) -> bool:
    """Whether a document's ``metadata`` meets ``where`` (typed as its keys hold, :func:`coerce_where`):
    every key present with its value, or one of its values for a list."""
    for key, value in where.items():
        if key not in metadata:
            return False
        wanted = list(value) if isinstance(value, (list, tuple)) else [value]
        have = metadata[key]
        if not any(type_name(have) == type_name(w) and have == w or (isinstance(w, float) and have == w) for w in wanted):
            return False
    return True
