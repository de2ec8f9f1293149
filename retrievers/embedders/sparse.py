"""BM25 term weights for Qdrant sparse vectors.

The split of work follows Qdrant's BM25 recipe: a document vector holds the BM25
term-frequency part of each term, ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``;
a query vector holds ``1`` per distinct term; the store multiplies by the inverse
document frequency (``Modifier.IDF``: ``ln(1 + (N - n + 0.5) / (n + 0.5))``), so the dot
product is the BM25 score and no corpus statistics live in the encoder.

Adjacent pairs of terms are terms too (``phrase_weight`` times the BM25 part of their own
frequency; ``1`` in a query), so the store's IDF makes a rare phrase count for much: the
table captioned "Initial scale items for perceived ease of use" beats the one captioned
"Revised 10 item scale for perceived ease of use" for a question about "initial scale items".

Text becomes terms in one deterministic way (:func:`tokenize`): Unicode NFKC, case-folded,
split into words (numbers kept, decimals like ``3.5`` whole), stopwords dropped, Snowball
stemming. Term ids are the first 31 bits of a blake2b digest of the term (:func:`term_id`):
identical in every process and on every machine, unlike Python's salted ``hash()``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.errors import ConfigError
from rag.lazy import require
from retrievers.base import SparseVector
from retrievers.embedders._provenance import library_versions

__all__ = [
    "ENGLISH_STOPWORDS",
    "Language",
    "LANGUAGES",
    "TOKENIZER_VERSION",
    "term_id",
    "split_words",
    "tokenize",
    "bm25_tf",
    "PHRASE_WEIGHT",
    "BM25Encoder",
]

#: Weight of a pair of adjacent terms ("initial scale", "comput playful") against a single
#: term: a passage holding the question's words as a phrase beats one holding them apart.
#: Swept 0.5-6 on the evaluation sets (BENCHMARKS.md): 3-6 is a plateau.
PHRASE_WEIGHT = 3.0

#: Length normalisation. Chunks are cut to about the same length, so normalisation mostly lifts
#: the short ones (a title page, a lone heading), whose few words are all topic words. Swept on
#: the three question sets (BENCHMARKS.md): 0-0.5 is a plateau (one held-out question more in the
#: top 5, the other sets unchanged); 0.75, the textbook value, and 0.9 are below it.
B = 0.5

#: Bump when tokenisation changes: knowledge bases built with another version are refused.
TOKENIZER_VERSION = 1

ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren aren't as at be because been before being
    below between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down
    during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he her here hers
    herself him himself his how i if in into is isn isn't it it's its itself just ll m ma me mightn mightn't more
    most mustn mustn't my myself needn needn't no nor not now o of off on once only or other our ours ourselves
    out over own re s same shan shan't she she's should should've shouldn shouldn't so some such t than that
    that'll the their theirs them themselves then there these they this those through to too under until up ve
    very was wasn wasn't we were weren weren't what when where which while who whom why will with won won't
    wouldn wouldn't y you you'd you'll you're you've your yours yourself yourselves
    """.split()
)


@dataclass(frozen=True)
class Language:
    """A Snowball stemmer name and the stopwords removed before stemming."""

    stemmer: str
    stopwords: frozenset[str] = frozenset()


LANGUAGES: dict[str, Language] = {
    "english": Language("english", ENGLISH_STOPWORDS),
    **{
        name: Language(name)
        for name in ("danish", "dutch", "finnish", "french", "german", "italian", "norwegian", "portuguese", "russian", "spanish", "swedish")
    },
}

# A decimal number stays whole ("3.5", "1,000"); otherwise runs of letters/digits (no "_").
_WORDS = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*")


def term_id(term: str) -> int:
    """A stable 31-bit id for a term (blake2b), the same in every process."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def split_words(text: str) -> list[str]:
    """NFKC, case-folded words of ``text``; apostrophes normalised to ``'``."""
    norm = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    return _WORDS.findall(norm)


# Han, kana and Hangul: scripts written without spaces between words
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002a6df]+")


def _cjk_terms(word: str) -> list[str] | None:
    """Overlapping character bigrams of the CJK runs in ``word`` (a lone character stays
    itself), other runs as they are; ``None`` when ``word`` has no CJK character. Without
    this a whole Chinese sentence is one "word" that no question ever matches."""
    if not _CJK.search(word):
        return None
    out: list[str] = []
    at = 0
    for run in _CJK.finditer(word):
        if run.start() > at:
            out.append(word[at : run.start()])
        chars = run.group()
        out.extend([chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)])
        at = run.end()
    if at < len(word):
        out.append(word[at:])
    return out


def tokenize(text: str, stem: Any, stopwords: Iterable[str] = ENGLISH_STOPWORDS) -> list[str]:
    """Terms of ``text``: words without stopwords, stemmed (``stem`` maps a word to its stem).

    Possessives drop their ``'s``; words holding a digit are kept verbatim (codes like
    ``e21``, years, part numbers).
    """
    stops = stopwords if isinstance(stopwords, (set, frozenset)) else frozenset(stopwords)
    terms = []
    for word in split_words(text):
        if word in stops:
            continue
        cjk = _cjk_terms(word)
        if cjk is not None:
            terms.extend(cjk)
            continue
        if word.endswith("'s"):
            word = word[:-2]
        word = word.replace("'", "")
        if not word or word in stops:
            continue
        terms.append(word if any(ch.isdigit() for ch in word) else stem(word))
    return terms


def bm25_tf(tf: float, length: float, k1: float, b: float, avg_len: float) -> float:
    """The BM25 term-frequency saturation of one term in a document of ``length`` terms."""
    return tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * length / avg_len))


class BM25Encoder:
    """Sparse BM25 vectors (implements ``retrievers.base.SparseEncoder``); IDF is the store's job.

    Pure and cheap: no weights, no corpus state, nothing to load. ``avg_len`` is the
    expected document length in terms (after stopword removal); set it near the corpus
    average (:meth:`average_length`) for textbook BM25 length normalisation.
    """

    def __init__(
        self,
        model: str = "bm25",
        *,
        family: str = "bm25",
        k1: float = 1.2,
        b: float = B,
        avg_len: float = 256,
        language: str = "english",
        phrase_weight: float = PHRASE_WEIGHT,
        **_: Any,
    ) -> None:
        if k1 < 0:
            raise ConfigError(f"BM25: k1 must be >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ConfigError(f"BM25: b must be within 0..1, got {b}")
        if avg_len <= 0:
            raise ConfigError(f"BM25: avg_len must be positive, got {avg_len}")
        if phrase_weight < 0:
            raise ConfigError(f"BM25: phrase_weight must be >= 0, got {phrase_weight}")
        if language not in LANGUAGES:
            raise ConfigError(f"BM25: unsupported language {language!r}; supported: {sorted(LANGUAGES)}")
        snowball = require("snowballstemmer", "text", "BM25 stemming")
        self.name = model
        self.family = family
        self.k1 = float(k1)
        self.b = float(b)
        self.avg_len = float(avg_len)
        self.language = language
        self._lang = LANGUAGES[language]
        self._stemmer = snowball.stemmer(self._lang.stemmer)
        self._stems: dict[str, str] = {}
        self.phrase_weight = float(phrase_weight)

    # ------------------------------------------------------------------ terms
    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stemmer.stemWord(word)
            if len(self._stems) < 200_000:
                self._stems[word] = stem
        return stem

    def terms(self, text: str) -> list[str]:
        """The terms ``text`` is indexed under, in order (useful to explain a match)."""
        return tokenize(text, self._stem, self._lang.stopwords)

    def average_length(self, texts: Iterable[str]) -> float:
        """Mean number of terms per text: a good ``avg_len`` for that corpus."""
        lengths = [len(self.terms(t)) for t in texts]
        return sum(lengths) / len(lengths) if lengths else self.avg_len

    # --------------------------------------------------------------- encoding
    def encode_document(self, text: str) -> SparseVector:
        terms = self.terms(text)
        length = len(terms)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            tid = term_id(term)  # a (rare) id collision adds the two terms' weights
            weights[tid] = weights.get(tid, 0.0) + bm25_tf(tf, length, self.k1, self.b, self.avg_len)
        if self.phrase_weight > 0:
            for pair, tf in Counter(_pairs(terms)).items():
                tid = term_id(pair)
                weights[tid] = weights.get(tid, 0.0) + self.phrase_weight * bm25_tf(tf, length, self.k1, self.b, self.avg_len)
        return _sparse(weights)

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        if isinstance(texts, str):
            raise TypeError("encode_documents takes a sequence of strings, not one string")
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 per distinct query term (the store applies IDF)."""
        terms = self.terms(text)
        weights = {term_id(t): 1.0 for t in terms}
        if self.phrase_weight > 0:
            weights.update({term_id(p): 1.0 for p in _pairs(terms)})
        return _sparse(weights)

    def matching(self, built: dict[str, Any]) -> BM25Encoder:
        """This encoder with the document-side scoring (k1, b, avg_len) a knowledge base was
        built with (its manifest's ``sparse`` provenance), so one built before a default changed
        keeps opening and keeps its points consistent. Query vectors do not depend on them."""
        wanted = {k: float(built[k]) for k in ("k1", "b", "avg_len") if k in built}
        if all(getattr(self, k) == v for k, v in wanted.items()):
            return self
        return BM25Encoder(self.name, family=self.family, language=self.language, phrase_weight=self.phrase_weight,
                           **{"k1": self.k1, "b": self.b, "avg_len": self.avg_len, **wanted})

    def provenance(self) -> dict[str, Any]:
        stops = hashlib.sha256(" ".join(sorted(self._lang.stopwords)).encode()).hexdigest()[:12]
        return {
            "name": self.name,
            "family": self.family,
            "kind": "sparse",
            "k1": self.k1,
            "b": self.b,
            "avg_len": self.avg_len,
            "language": self.language,
            "phrase_weight": self.phrase_weight,
            "stemmer": f"snowball-{self._lang.stemmer}",
            "stopwords": stops,
            "term_ids": "blake2b-31",
            "tokenizer_version": TOKENIZER_VERSION,
            "idf": "store",
            "versions": library_versions("snowballstemmer"),
        }

    def __repr__(self) -> str:
        return (f"BM25Encoder(k1={self.k1}, b={self.b}, avg_len={self.avg_len}, language={self.language!r}, "
                f"phrase_weight={self.phrase_weight})")


def _pairs(terms: Sequence[str]) -> list[str]:
    """Adjacent terms as one phrase term (``"initial scale"``); a space never occurs in a term."""
    return [f"{a} {b}" for a, b in zip(terms, terms[1:])]


def _sparse(weights: dict[int, float]) -> SparseVector:
    ids = sorted(weights)
    return SparseVector(indices=tuple(ids), values=tuple(float(weights[i]) for i in ids))
