"""The shape of an evidence span, and how an extractive answer writes it.

Pure functions over text, no model:

- :func:`is_flattened`: a table or a diagram whose cells came out as one run of short words and
  numbers ("model/constant rgb cmy cmyk hsb ...", "1 2 3 4 5 6 7 8"): hardly any function words
  of running English, or mostly numbers. Such a run is never written as a sentence.
- :func:`reflow_rows`: re-rows a flattened numeric table ("3d-cube 25 27 29 3d-morph 5 8 8")
  into its rows (a label followed by as many numbers as the other rows) and, when the run
  starts with one word per column, its header.
- :func:`markdown_table`: a header and rows as a small markdown table.
- :func:`best_window`: the stretch of at most ``max_words`` words of a long span that holds the
  most of the question's words, so a long paragraph is quoted by the part that answers.
- :func:`figure_parts`: a figure item's caption and the labels read from it (short lines).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from generators.term_stats import strip_suffix

__all__ = [
    "tokenize",
    "FUNCTION_WORDS",
    "is_title_run",
    "Rows",
    "is_flattened",
    "is_numberish",
    "reflow_rows",
    "markdown_table",
    "best_window",
    "figure_parts",
    "is_caption",
    "opens_section",
    "HEADING",
    "ELLIPSIS",
    "named_number",
    "numbered_as",
    "SENTENCE_END",
    "defined_term",
]

ELLIPSIS = "…"
#: words a window keeps before its first word that matches the question
LEAD_IN = 3
#: a figure label is a line of at most this many words (longer lines are the text around it)
LABEL_MAX_WORDS = 5

#: English function words: running prose holds many of them (about a third of its words); a
#: flattened table or a diagram's labels hardly any.
FUNCTION_WORDS = frozenset(
    "a an the of to in on at for and or but is are was were be been by with from as it its this that these those "
    "which who when where than then so not no into can could will would should may has have had there their our we "
    "they he she his her you your if each all any such only also more most".split()
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an the of to in on at for and or but is are was were be been being by with from as it its this that these "
    "those what which who whom whose how many much where when why does do did done has have had can could should "
    "would will shall may might must i you he she we they me my your our their there here than then so such not no "
    "yes if into onto about over under between per all any each some most more less very also only just show shows "
    "tell give list describe explain please according document page".split()
)


def _stem(word: str) -> str:
    """A crude suffix stripper so ``connects``/``connected``, ``section``/``sections`` and
    ``country``/``countries`` meet: the corpus statistics' stemmer
    (:func:`generators.term_stats.strip_suffix`) plus ``-ies``/``-ied`` -> ``-y``."""
    if word.endswith(("ies", "ied")) and len(word) >= 6:
        return word[:-3] + "y"
    return strip_suffix(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, crudely stemmed content words (letters or digits) without stopwords."""
    return [_stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS]


_TOKEN_EDGE = re.compile(r"^[^\w]+|[^\w]+$", re.UNICODE)
_CAPTION = re.compile(r"^(?:fig(?:ure)?|table|chart|diagram|plate|exhibit|illustration)\.?\s*[\dA-Z]", re.IGNORECASE)
# "Table 1: Inverter fault codes", "Figure 7-26. Self-locking nuts", "Table 2 Initial scale items";
# not "Table 7 highlights some of ..." (a sentence about the table)
_CAPTION_LINE = re.compile(
    r"^(?i:fig(?:ure)?|table|chart|diagram|plate|exhibit|illustration)\.?\s*(?:\d+|[A-Z])(?:[.-]\d+)*[.:]?\s+[\"'(]?[A-Z]"
)


#: a numbered heading ("2.1 ASN.1 syntax", "A.3 Examples")
HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-Z]\.\d{1,2}(?:\.\d{1,2})*\.?)\s+\S")


# not after an abbreviation that a number or a name follows: "(Davis, 1989, p. 324)", "Fig. 3", "No. 7"
SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bp\.)(?<!\bpp\.)(?<!\bFig\.)(?<!\bNo\.)(?<!\be\.g\.)(?<!\bi\.e\.)\s+(?=[\"'(\[]?[A-Z0-9])")

_ORDINALS = {
    w: str(i)
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(),
        start=1,
    )
}
# "the seventh candidate statement", "the 3rd step": an entry named by its place in a list
_ORDINAL_ENTRY = re.compile(
    r"\b(" + "|".join(_ORDINALS) + r"|\d{1,2}(?:st|nd|rd|th))\s+(?:[a-z-]+\s+){0,2}?"
    r"(?:items?|statements?|steps?|rows?|entry|entries|rules?|questions?|lines?|points?|principles?|conditions?|factors?)\b",
    re.IGNORECASE,
)
# "item 7", "row 12", "step 3", "No. 4", "question #2": the question names an entry by its number
_NAMED_NUMBER = re.compile(
    r"\b(?:items?|rows?|steps?|entry|entries|statements?|questions?|rules?|lines?|no\.?|number|#)\s*#?\s*(\d{1,3})\b(?![.,]\d)",
    re.IGNORECASE,
)


def named_number(question: str) -> str | None:
    """The number of the entry the question names ("What is item 7 ...?", "What does the
    seventh candidate statement say?" -> ``"7"``), or
    ``None`` when it names none or several different ones."""
    found = {m.group(1).lstrip("0") or "0" for m in _NAMED_NUMBER.finditer(question)}
    for m in _ORDINAL_ENTRY.finditer(question):
        word = m.group(1).lower()
        found.add(_ORDINALS.get(word) or word[:-2])
    return found.pop() if len(found) == 1 else None


def numbered_as(text: str, number: str) -> bool:
    """Whether ``text`` is the entry numbered ``number``: it starts with that number ("7 The
    system is rigid", "7. Check", "(7) Check", "7) Check") followed by a word, not a value
    ("7 GB", "7.5")."""
    m = re.match(r"^\s*\(?0*(\d{1,3})[.):]?\s+([^\W\d_]\w*)", text)
    if m is None or m.group(1) != number:
        return False
    word = m.group(2)
    # "7 Computer ...", "7 I find ..." is the entry; "7 mm", "7 GB" is a measurement
    if len(word) == 1:
        return word.isupper()
    return not word.isupper() and (word[0].isupper() or len(word) > 3)


#: words a definition taken from a flattened run keeps at least, and at most
_DEFINITION_MIN, _DEFINITION_MAX = 3, 30


def defined_term(text: str, term: str) -> str | None:
    """In a flattened run of a terms-and-definitions table ("... Computer anxiety An
    individual's apprehension ... Computer playfulness The degree of cognitive spontaneity in
    microcomputer interactions Perceived enjoyment The extent ..."): ``term`` and the definition
    after it, up to the next capitalised word (where the next term starts) once the definition
    has :data:`_DEFINITION_MIN` words, or a full stop; ``None`` when ``text`` does not hold
    ``term`` word for word (case aside) followed, with no punctuation between, by a capitalised
    word (the table's layout: in running prose a term is not glued to a new sentence)."""
    words = text.split()
    wanted = [w.casefold() for w in re.findall(r"[^\W_]+", term)]
    if not wanted:
        return None
    bare = [re.sub(r"[\W_]+", "", w).casefold() for w in words]
    n = len(wanted)
    for start in range(len(words) - n + 1):
        if bare[start : start + n] != wanted:
            continue
        end = start + n
        if end >= len(words) or not words[end][:1].isupper() or not words[end - 1][-1:].isalnum():
            return None  # running prose ("playfulness, which ..."), not a term heading its definition
        definition: list[str] = []
        for word in words[end : end + _DEFINITION_MAX]:
            if len(definition) >= _DEFINITION_MIN and word[:1].isupper():
                break
            definition.append(word)
            if word.endswith((".", ";")):
                break
        if len(definition) < _DEFINITION_MIN:
            return None
        return " ".join(words[start:end] + definition).rstrip(".;,")
    return None


def opens_section(text: str) -> bool:
    """A unit that starts something new rather than going on: a numbered heading without a full
    stop ("2.1 Tools"), a lead-in to a list or example ("ASN.1 syntax example:"), a caption."""
    text = text.strip()
    if text.endswith(":") or is_caption(text):
        return True
    return bool(HEADING.match(text)) and len(text.split()) <= 8 and not text.endswith((".", "!", "?"))


def is_caption(text: str) -> bool:
    """A figure or table caption: a label and its number, then a capitalised title."""
    return bool(_CAPTION_LINE.match(text.strip()))


def _bare(token: str) -> str:
    return _TOKEN_EDGE.sub("", token).lower()


def is_numberish(token: str) -> bool:
    """A cell value: a number, with units or signs around it (``2.20x``, ``(0,0,0)``, ``-``, ``25%``)."""
    core = _bare(token)
    if token.strip() in {"-", "–", "—", "–", "n/a", "N/A"}:
        return True
    if not core:
        return False
    digits = sum(c.isdigit() for c in core)
    return digits > 0 and digits >= len(core) - 2


def is_flattened(text: str, min_words: int = 8) -> bool:
    """True for a run of table cells or diagram labels read as one line: at least ``min_words``
    words and either fewer than 1 in 12 of them function words, or half of them numbers."""
    words = text.split()
    if len(words) < min_words:
        return False
    function = sum(_bare(w) in FUNCTION_WORDS for w in words)
    numbers = sum(is_numberish(w) for w in words)
    return function * 12 < len(words) or numbers * 2 >= len(words)


def is_title_run(text: str, min_words: int = 6) -> bool:
    """True for a run of title-case words with no closing full stop: a document's title, a
    running header, an author line or a section name read as a line of text ("Overview of the
    Technology Acceptance Model: Origins, Developments and Future Directions M Y Chuttur"). At
    least ``min_words`` words, and at least four in five of those that are not function words
    start with a capital letter; prose capitalises far fewer."""
    text = text.strip()
    if text.endswith((".", "!", "?")):
        return False
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    content = [w for w in words if _bare(w) not in FUNCTION_WORDS]
    if len(words) < min_words or not content:
        return False
    capital = sum(next(c for c in w if c.isalpha()).isupper() for w in content)
    return capital * 5 >= 4 * len(content)


@dataclass(frozen=True, slots=True)
class Rows:
    """A table recovered from a flattened run: ``header`` (empty when unknown) and ``rows``."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def reflow_rows(text: str, min_rows: int = 3) -> Rows | None:
    """Rows of a flattened table whose rows are a label and a fixed number of values.

    The run is cut into groups (words, then numbers); the commonest count of numbers, at least
    2, is the row width, and groups of that width are the rows (label, values...). Words before
    the first row, as many as the values, are the header. ``None`` when fewer than ``min_rows``
    groups share a width: the run is not a table of that shape."""
    groups: list[tuple[list[str], list[str]]] = []
    for token in text.split():
        if is_numberish(token):
            if not groups:
                groups.append(([], []))
            groups[-1][1].append(token)
        elif not groups or groups[-1][1]:
            groups.append(([token], []))
        else:
            groups[-1][0].append(token)
    widths = Counter(len(values) for label, values in groups if label and len(values) >= 2)
    if not widths:
        return None
    width, count = widths.most_common(1)[0]
    if count < min_rows:
        return None
    # the header's words run into the first row's label ("Loops Trees Aborts 3d-cube 25 27 3"):
    # the first row's label is as long as the other rows' labels, the words before it are the header
    label_words = Counter(len(label) for label, values in groups[1:] if label and len(values) == width)
    size = label_words.most_common(1)[0][0] if label_words else 1
    header: tuple[str, ...] = ()
    first_label, first_values = groups[0]
    if len(first_values) == width and len(first_label) > size:
        head = first_label[:-size]
        groups[0] = (first_label[-size:], first_values)
        if len(head) in (width, width + 1):
            header = tuple(([""] if len(head) == width else []) + head)
    rows = tuple((" ".join(label), *values) for label, values in groups if label and len(values) == width)
    return Rows(header, rows)


def _cell(text: str) -> str:
    return text.replace("|", "/").strip()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``header`` and ``rows`` as a markdown table; without a header the first row heads it."""
    if not rows and not header:
        return ""
    head = list(header) if header else list(rows[0])
    # PyMuPDF names a header cell it found empty "Col1", "Col2", ...: on the page it is blank
    head = ["" if re.fullmatch(r"Col\d+", h.strip()) else h for h in head]
    body = rows if header else rows[1:]
    width = max([len(head), *(len(r) for r in body)])
    head += [""] * (width - len(head))
    lines = ["| " + " | ".join(_cell(h) for h in head) + " |", "|" + "---|" * width]
    for row in body:
        cells = list(row) + [""] * (width - len(row))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def best_window(text: str, weight: Callable[[str], float], max_words: int) -> tuple[str, bool, bool]:
    """The stretch of at most ``max_words`` words of ``text`` with the largest total ``weight``
    (a word's weight: how much it tells about the question; each distinct word counts once).
    Returns (window, cut at the start, cut at the end). A window that can start at a sentence
    start within a few words of the best one does so, so a quote reads from its beginning."""
    words = text.split()
    if len(words) <= max_words:
        return text, False, False
    def total(start: int) -> float:
        seen: dict[str, float] = {}
        for w in words[start : start + max_words]:
            key = _bare(w)
            if key and key not in seen:
                seen[key] = weight(w)
        return sum(seen.values())

    scores = [total(start) for start in range(len(words) - max_words + 1)]
    best_start = max(range(len(scores)), key=lambda i: (scores[i], -i))
    # the answer follows the words that match the question ("Computer playfulness The degree
    # of ..."): start the window just before its first matching word, at a sentence start when
    # one is a few words before
    first = next((i for i in range(best_start, best_start + max_words) if weight(words[i]) > 0), best_start)
    best_start = min(max(0, first - LEAD_IN), len(words) - max_words)
    for s in range(first, max(-1, first - 8), -1):
        if s == 0 or words[s - 1].endswith((".", "!", "?", ":", ";")):
            best_start = min(s, best_start)
            break
    end = best_start + max_words
    return " ".join(words[best_start:end]), best_start > 0, end < len(words)


def figure_parts(text: str) -> tuple[str, list[str]]:
    """A figure item's caption (its lines up to the first label line, when they read as a
    sentence or start with "Figure n") and its labels (the other lines: short, in reading
    order, each once)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    caption: list[str] = []
    rest = lines
    if lines and (_CAPTION.match(lines[0]) or len(lines[0].split()) > 8):
        caption = [lines[0]]
        rest = lines[1:]
        while rest and len(rest[0].split()) > 8 and not is_flattened(rest[0]):
            caption.append(rest[0])
            rest = rest[1:]
    labels: list[str] = []
    for line in rest:
        if line not in labels and any(c.isalnum() for c in line) and len(line.split()) <= LABEL_MAX_WORDS:
            labels.append(line)
    return " ".join(caption), labels
