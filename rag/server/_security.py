"""Bind policy, bearer-token checks and safe upload names: pure functions, no web framework."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError

__all__ = ["TOKEN_ENV", "BindPlan", "plan_bind", "read_token", "token_matches", "safe_upload_name", "inside"]

log = logging.getLogger("mmrag.server")

#: The environment variable that holds the API's bearer token.
TOKEN_ENV = "MMRAG_API_TOKEN"

_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ()+,@=]+")


@dataclass(frozen=True)
class BindPlan:
    """Where the server listens, and the sentence that says why."""

    host: str
    port: int
    auth: bool
    message: str


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plan_bind(host: str, port: int, token: str | None) -> BindPlan:
    """Without a token the server only listens on loopback, whatever ``host`` asked for."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be within 0..65535, got {port}")
    if token:
        return BindPlan(host, port, True, f"listening on {host}:{port}; API requests need 'Authorization: Bearer <token>'")
    if is_loopback(host):
        return BindPlan(host, port, False, f"no {TOKEN_ENV} set: no authentication, listening on loopback {host}:{port} only")
    return BindPlan(
        "127.0.0.1",
        port,
        False,
        f"no {TOKEN_ENV} set: refusing to listen on {host}; listening on loopback 127.0.0.1:{port} only "
        f"(set {TOKEN_ENV} or pass --token-file to serve other machines)",
    )


def read_token(token_file: str | Path | None = None, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token: from ``token_file`` when given, else from ``$MMRAG_API_TOKEN``; ``None`` if unset."""
    if token_file is not None:
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the token file ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: the token file is not UTF-8 text; write the token as plain text (e.g. `openssl rand -hex 24`)") from exc
        if not token:
            raise ConfigError(f"{path}: the token file is empty")
    else:
        token = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    if token and len(token) < 16:
        raise ConfigError(f"the API token is {len(token)} characters long; use at least 16 (e.g. `openssl rand -hex 24`)")
    return token or None


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer ...`` header."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8"))


def safe_upload_name(filename: str | None, suffixes: frozenset[str]) -> str:
    """A plain file name for an upload: no folders, no leading dots, a supported suffix.

    Raises :class:`ConfigError` for a name that cannot be made safe or has an unsupported suffix.
    """
    raw = unicodedata.normalize("NFKC", filename or "")
    base = re.split(r"[\\/]", raw)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    base = base.lstrip("-_")
    if len(base) > 160:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 150] + dot + ext) if dot else base[:160]
    if not base or base.startswith("."):
        raise ConfigError(f"upload file name {filename!r} is empty once folders and unsafe characters are removed")
    suffix = Path(base).suffix.lower()
    if suffix not in suffixes:
        raise ConfigError(f"upload {filename!r}: unsupported file type {suffix or '(none)'}; expected one of {sorted(suffixes)}")
    return base


def inside(root: Path, candidate: Path) -> Path | None:
    """``candidate`` resolved, when it lies inside ``root`` (symlinks followed); else ``None``."""
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the name
        return None
    return resolved if resolved.is_relative_to(root.resolve()) and resolved.is_file() else None
