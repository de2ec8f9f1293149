"""A time bound per page: what a page's content costs, measured before the expensive calls, and
a way to run a call that can blow up where it can be stopped.

Two halves:

- :func:`measure_page` walks the page's object graph once (its content streams, the Form
  XObjects, patterns, Type3 glyphs and annotation appearances it reaches) and counts what the
  expensive steps grow with: content bytes, text-show and drawing operators, images. The walk
  itself is bounded (objects visited, bytes inflated). A page above any of the caps in
  :class:`Caps` is *heavy*: table finding, figure clustering and font repair are skipped on it
  and the rest runs under a deadline.
- :func:`run_killable` runs a function in a forked child process and kills it at a deadline:
  MuPDF's table finder and text extraction are single C calls that no Python check can
  interrupt (5,000 tiny spans kept the table finder busy for minutes). Forking costs a few
  milliseconds (the child shares the parent's memory copy-on-write), so only the calls that
  can blow up go there.

A page's budget (``ingest.page_timeout_s``) is counted by a :class:`PageClock` in **CPU
seconds** — the reading process's and its killable children's — not on the wall clock: on a
machine busy with other work a page gets the same work done as on an idle one, so a knowledge
base's content does not depend on the load it was built under (on the wall clock, a table the
finder needed 20 s of CPU for was skipped when other processes held the cores). The wall clock
still bounds every page, at :data:`WALL_FACTOR` times the budget, so a page starved of CPU (or a
child asleep) ends too. The CPU of a process counts all its threads: in a worker process that is
the page's own work; where pages are read in the main process beside the embedding thread, that
thread's CPU counts against the page as well (the budget runs out sooner, never later).

The image checks of the same walk live in :mod:`ingest._guards`.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import select
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ingest import _heap

__all__ = ["Caps", "PageLoad", "PageClock", "Timeout", "measure_page", "run_killable", "CAPS", "WALL_FACTOR"]

logger = logging.getLogger("ingest")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caps:
    """Above any of these a page is heavy. Measured here: a page of 1,500 one-letter spans
    already keeps the table finder busy for minutes, while real text pages (papers, manuals,
    dense tables) stay below 2,000 text-show operators and 300 KB of content."""

    content_bytes: int = 2_000_000
    text_ops: int = 8_000
    draw_ops: int = 60_000
    images: int = 50_000  # fewer go to figure detection up to max_images_per_page, as before
    forms: int = 500
    annotations: int = 2_000
    objects: int = 20_000  # objects the measuring walk visits before it gives up (and calls the page heavy)


CAPS = Caps()
_INFLATE_CAP = 64 * 2**20  # bytes of one content stream the walk inflates; beyond, the page is heavy

_TEXT_OPS = re.compile(rb"(?<![A-Za-z0-9_*'\"])(?:Tj|TJ|'|\")(?![A-Za-z0-9_*])")
_DRAW_OPS = re.compile(rb"(?<![A-Za-z0-9_*])(?:re|m|l|c|v|y|f\*?|F|B\*?|b\*?|S|s|sh)(?![A-Za-z0-9_*'\"])")
_DO_OPS = re.compile(rb"(?<![A-Za-z0-9_*])Do(?![A-Za-z0-9_*])")
_INLINE = re.compile(rb"(?<![A-Za-z0-9_*])BI(?![A-Za-z0-9_*])")
_DO_NAMES = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do(?![A-Za-z0-9_*])")
_NAMED_REF = re.compile(r"/([^\s/\[\]()<>{}%]+)\s*(\d+) 0 R")
_EXPANSION_CAP = 10**9


def _xobject_names(doc: Any, xref: int) -> dict[bytes, int]:
    try:
        kind, value = doc.xref_get_key(xref, "Resources/XObject")
    except Exception:  # noqa: BLE001 - a broken dictionary draws nothing we can count
        return {}
    if kind == "xref":
        value = doc.xref_object(int(value.split()[0]), compressed=True)
    return {name.encode("latin-1"): int(ref) for name, ref in _NAMED_REF.findall(value)} if kind in ("dict", "xref") else {}


def _expanded(doc: Any, index: int, walk: Any, own: dict[int, tuple[int, int, list[bytes]]]) -> tuple[int, int]:
    """Text-show and drawing operators the page *executes*: a form drawn 100 times counts 100
    times, nested forms multiply (a page of three forms each drawing the next 100 times runs a
    million operators). Streams no page content draws (patterns, glyphs, appearances) count once."""
    memo: dict[int, tuple[int, int]] = {}
    active: set[int] = set()
    forms = set(walk.forms)

    def cost(xref: int, names: dict[bytes, int]) -> tuple[int, int]:
        if xref in memo:
            return memo[xref]
        if xref in active or xref not in own:
            return (0, 0)  # a cycle (MuPDF stops it) or an image
        active.add(xref)
        t, d, drawn = own[xref]
        inner = (_xobject_names(doc, xref) or names) if xref in forms else names
        for name in drawn:
            target = inner.get(name)
            if target is not None and target in forms:
                ct, cd = cost(target, inner)
                t, d = min(t + ct, _EXPANSION_CAP), min(d + cd, _EXPANSION_CAP)
        active.discard(xref)
        memo[xref] = (t, d)
        return t, d

    page_names = _xobject_names(doc, doc.page_xref(index))
    text = draw = 0
    for xref in walk.contents:
        if xref in forms or xref not in own:
            continue
        t, d = cost(xref, page_names)
        text, draw = min(text + t, _EXPANSION_CAP), min(draw + d, _EXPANSION_CAP)
    return text, draw


@dataclass(frozen=True, slots=True)
class PageLoad:
    """What one page's content amounts to, and which caps it exceeds (``over``: readable reasons)."""

    content_bytes: int = 0
    text_ops: int = 0
    draw_ops: int = 0
    images: int = 0
    forms: int = 0
    annotations: int = 0
    objects: int = 0
    over: tuple[str, ...] = ()

    @property
    def heavy(self) -> bool:
        return bool(self.over)


class Timeout(Exception):
    """A :func:`run_killable` call passed its deadline and its process was killed."""


#: how many times its CPU budget a page may last on the wall clock (a busy or starved machine)
WALL_FACTOR = 3.0


class PageClock:
    """One page's time budget, ``budget_s`` CPU seconds of this process and of the children it
    runs (:meth:`run`), with a wall-clock bound of :data:`WALL_FACTOR` times the budget."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self.children_s = 0.0

    def spent(self) -> float:
        """CPU seconds the page has used: this process's since the clock started, plus its children's."""
        return time.process_time() - self._cpu0 + self.children_s

    def remaining(self) -> float:
        """CPU seconds left of the budget (0 when spent)."""
        return max(self.budget_s - self.spent(), 0.0)

    def wall_remaining(self) -> float:
        """Wall-clock seconds left before the page's hard bound."""
        return max(WALL_FACTOR * self.budget_s - (time.perf_counter() - self._wall0), 0.0)

    def over(self) -> bool:
        """Whether the budget is spent, in CPU or on the wall clock."""
        return self.remaining() <= 0 or self.wall_remaining() <= 0

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a killable child (:func:`run_killable`) given what is left of the budget:
        killed when its CPU passes :meth:`remaining` or the wall clock :meth:`wall_remaining`;
        its CPU is added to :meth:`spent` either way."""
        if self.over():
            raise Timeout(f"{self.budget_s:g} s spent before it")
        return run_killable(fn, self.remaining(), wall=self.wall_remaining(), clock=self)


def inflate_bounded(raw: bytes, filters: list[str], cap: int = _INFLATE_CAP) -> bytes | None:
    """A stream's bytes with at most ``cap`` bytes inflated; ``None`` when it inflates beyond
    ``cap`` or uses a filter other than Flate (the caller then treats it as heavy/unknown)."""
    data = raw
    for name in filters:
        if name in ("FlateDecode", "Fl"):
            inflater = zlib.decompressobj()
            try:
                out = inflater.decompress(data, cap + 1)
            except zlib.error:
                return b""  # broken data: MuPDF reads what it can, which is cheap
            if len(out) > cap:
                return None
            data = out
        else:
            return None
    return data


def stream_filters(doc: Any, xref: int) -> list[str]:
    kind, value = doc.xref_get_key(xref, "Filter")
    if kind == "name":
        return [value.lstrip("/")]
    if kind == "array":
        return [v.lstrip("/") for v in value.strip("[]").split() if v.startswith("/")]
    return []


def count_ops(data: bytes) -> tuple[int, int, int, int]:
    """Text-show, drawing, ``Do`` and inline-image operators in a content stream (a cheap
    regular-expression pass; string contents can add a few false counts, never hide any)."""
    return (len(_TEXT_OPS.findall(data)), len(_DRAW_OPS.findall(data)), len(_DO_OPS.findall(data)),
            len(_INLINE.findall(data)))


def measure_page(doc: Any, index: int, caps: Caps = CAPS, walk: Any = None) -> PageLoad:
    """The page's :class:`PageLoad`, from its raw content streams (nothing is rendered).
    ``walk``: the page's :func:`ingest._guards.page_objects` when the caller has it."""
    from ingest._guards import doc_cache, page_objects

    walk = page_objects(doc, index, max_objects=caps.objects) if walk is None else walk
    content = images = 0
    over: list[str] = []
    own: dict[int, tuple[int, int, list[bytes]]] = {}  # content stream -> text ops, drawing ops, names it draws
    known: dict[int, tuple[int, int, int, int, list[bytes]] | None] = doc_cache(doc).setdefault("ops", {})
    for xref in walk.contents:
        if xref in known:  # a form or glyph shared with an earlier page
            counted = known[xref]
            if counted is None:
                over.append(f"a content stream (object {xref}) inflates beyond {_INFLATE_CAP // 2**20} MB")
                content += _INFLATE_CAP
            else:
                size, t, d, images_here, names = counted
                own[xref] = (t, d, names)
                content += size
                images += images_here
            continue
        raw = doc.xref_stream_raw(xref) or b""
        filters = stream_filters(doc, xref)
        data = inflate_bounded(raw, filters)
        if data is None:
            if any(f not in ("FlateDecode", "Fl") for f in filters):
                data = doc.xref_stream(xref) or b""  # an unusual filter: MuPDF decodes it (rare)
            else:
                over.append(f"a content stream (object {xref}) inflates beyond {_INFLATE_CAP // 2**20} MB")
                content += _INFLATE_CAP
                known[xref] = None
                continue
        t, d, do, inline = count_ops(data)
        own[xref] = (t, d, _DO_NAMES.findall(data) if do else [])
        known[xref] = (len(data), t, d, do + inline, own[xref][2])
        content += len(data)
        images += do + inline
    text, draw = _expanded(doc, index, walk, own)
    images = max(images, len(walk.images))
    load = dict(content_bytes=content, text_ops=text, draw_ops=draw, images=images, forms=len(walk.forms),
                annotations=walk.annotations, objects=walk.visited)
    for name, value in load.items():
        limit = getattr(caps, name)
        if value > limit:
            over.append(f"{value:,} {name.replace('_', ' ')} (cap {limit:,})")
    if walk.truncated:
        over.append(f"more than {caps.objects:,} objects reachable from the page")
    return PageLoad(**load, over=tuple(dict.fromkeys(over)))


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a live child has used, from ``/proc``; ``None`` where unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_killable(fn: Callable[[], T], timeout: float, *, wall: float | None = None, clock: PageClock | None = None) -> T:
    """``fn()`` in a forked child process; its result (pickled) or :class:`Timeout` after
    ``timeout`` seconds, when the child is killed. With ``wall``, ``timeout`` counts the child's
    CPU seconds (read from ``/proc``; on the wall clock where that is missing) and ``wall`` bounds
    the wall clock; the child's CPU is added to ``clock``. An exception in the child is raised
    here as a ``RuntimeError`` with its text. Where ``fork`` is missing, ``fn`` runs in-process."""
    if not hasattr(os, "fork"):
        return fn()
    read_end, write_end = os.pipe()
    # what this process has freed (a page's OCR, the last table call) is given back first: the
    # child adds its own working set (~100-170 MB for the table finder) beside what this holds
    _heap.trim()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running the parent's cleanup
        code = 0
        try:
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which decides
                payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view):]
        except BaseException:  # noqa: BLE001 - the parent sees a short read
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    _register(pid)
    chunks: list[bytes] = []
    cpu_bound = wall is not None and _cpu_seconds(pid) is not None
    deadline = time.monotonic() + max(wall if cpu_bound and wall is not None else timeout, 0.0)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"not done within {wall:g} s on the wall clock" if cpu_bound else f"not done within {timeout:g} s")
            ready, _, _ = select.select([read_end], [], [], min(left, 0.25 if cpu_bound else 0.5))
            if not ready:
                with _PIDS:
                    if pid in _CANCELLED:
                        raise Timeout("cancelled")
                if cpu_bound and (_cpu_seconds(pid) or 0.0) > timeout:
                    raise Timeout(f"not done within {timeout:g} CPU s")
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        with _PIDS:
            cancelled = pid in _CANCELLED
        used = _reap(pid)
        if clock is not None:
            clock.children_s += used
    if cancelled:
        raise Timeout("cancelled")
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception as exc:  # the child died (killed from outside, out of memory, a native crash)
        raise RuntimeError("the page's worker process died before it answered") from exc
    if not ok:
        raise RuntimeError(value or "the page's worker process failed")
    return value


_LIVE: set[int] = set()
_CANCELLED: set[int] = set()
_PIDS = threading.Lock()  # the server cancels from another thread than the one reading pages


def _register(pid: int) -> None:
    with _PIDS:
        _LIVE.add(pid)


def _reap(pid: int) -> float:
    """Kill and wait for a child; the CPU seconds it used (0 when unknown)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    used = 0.0
    try:
        _, _, usage = os.wait4(pid, 0)
        used = usage.ru_utime + usage.ru_stime
    except ChildProcessError:
        pass
    with _PIDS:
        _LIVE.discard(pid)
        _CANCELLED.discard(pid)
    return used


def cancel_running() -> int:
    """Stop every :func:`run_killable` call in progress (server shutdown, a cancelled job): each
    raises :class:`Timeout` within half a second. Returns how many were running."""
    with _PIDS:
        live = list(_LIVE)
        _CANCELLED.update(live)
    for pid in live:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(live)
