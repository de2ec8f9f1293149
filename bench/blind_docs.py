"""Gather the blind documents of ``bench/data/blind_questions.jsonl`` into a folder.

    .venv/bin/python bench/blind_docs.py OUT [--debs DIR]
    .venv/bin/python bench/blind_docs.py --check-questions [--docs OUT]

Six public PDFs, none used before by this project (``bench/data/BLIND.md``): a technical manual
(R Data Import/Export), a language specification (GNU MathProg), two statistics papers with
figures and tables (vcd's strucplot, sandwich), a typesetting guide about tables (booktabs) and a
conference slide deck (beamer's example talk). All six ship in Debian 12 packages; the questions
and gold pages were written before any retrieval ran on them.

Each file comes from its package at a pinned version: from the installed file when it is there
with the right SHA-256, else from the ``.deb`` itself (``--debs DIR`` holding it, or ``apt-get
download PKG=VERSION``, which needs no root and installs nothing; ``dpkg-deb`` unpacks it). Gold
pages belong to these exact files: another package version or a file whose SHA-256 differs is
refused with an error that names the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

QUESTIONS = Path(__file__).parent / "data" / "blind_questions.jsonl"

# file -> (Debian package, version, path inside the package, sha256)
FILES = {
    "R-data.pdf": (
        "r-doc-pdf", "4.2.2.20221110-2", "/usr/share/R/doc/manual/R-data.pdf",
        "9381a39ffeb8545a745c2618ba955b4ae4e10b9c8373cd5bc1984fff8318f8ca",
    ),
    "gmpl.pdf": (
        "glpk-doc", "5.0-1", "/usr/share/doc/glpk-doc/gmpl.pdf",
        "df54ba811d1fe3c041447b575997298d63b0a6366e39454ef2efc382f08203c2",
    ),
    "strucplot.pdf": (
        "r-cran-vcd", "1:1.4-11-1", "/usr/lib/R/site-library/vcd/doc/strucplot.pdf",
        "45dd7f7b8d6f3f5ca1816a585bb0e8410c4fe02c50876cd5174069b70a724b8c",
    ),
    "sandwich.pdf": (
        "r-cran-sandwich", "3.0-2-1", "/usr/lib/R/site-library/sandwich/doc/sandwich.pdf",
        "ab762c22ff2d6b0c26e6e642171f116a11ec4dcfe58821148bdf41856f293a1b",
    ),
    "booktabs.pdf": (
        "texlive-latex-recommended-doc", "2022.20230122-3", "/usr/share/doc/texlive-doc/latex/booktabs/booktabs.pdf",
        "7052d0760750c97a9fa3ae6e00942768a809f84a05466d36dc9e38f906d98dfe",
    ),
    "beamerexample-conference-talk.pdf": (
        "texlive-latex-recommended-doc", "2022.20230122-3",
        "/usr/share/doc/texlive-doc/latex/beamer/beamerexample-conference-talk.pdf",
        "4b11425166212ed695a5c99506303bddd7cc1beb02b17da48565c48f51eb38d6",
    ),
}
PAGES = {"R-data.pdf": 41, "gmpl.pdf": 74, "strucplot.pdf": 48, "sandwich.pdf": 21, "booktabs.pdf": 18,
         "beamerexample-conference-talk.pdf": 31}
TYPES = {"text", "table", "figure"}
STYLES = {"own_words", "document_words"}


class GatherError(Exception):
    """A document is missing or is not the version the gold pages belong to."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(name: str, data: bytes, want: str, where: str) -> bytes:
    if _sha256(data) != want:
        raise GatherError(f"{name} from {where} is not the version the gold pages belong to "
                          f"(sha256 {_sha256(data)[:12]}…, want {want[:12]}…)")
    return data


def _deb_field(deb: Path, field: str) -> str:
    done = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True)
    if done.returncode != 0:
        raise GatherError(f"{deb.name}: not a readable .deb ({done.stderr.strip()[-200:]})")
    return done.stdout.strip()


def _find_deb(package: str, version: str, debs: Path | None, into: Path) -> Path:
    """The .deb of ``package`` at ``version``: from ``debs`` if it holds one, else apt-get download."""
    for folder in [d for d in (debs,) if d is not None]:
        for deb in sorted(folder.glob(f"{package}_*.deb")):
            if _deb_field(deb, "Package") == package:
                return deb
    done = subprocess.run(["apt-get", "download", f"{package}={version}"], capture_output=True, text=True, cwd=into)
    found = sorted(into.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not found:
        why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no .deb written"
        raise GatherError(f"apt-get download {package}={version} failed: {why} "
                          f"(run `apt-get update`; if that version left the archive, the gold pages need re-checking)")
    return found[0]


def _from_deb(deb: Path, package: str, version: str, members: dict[str, str]) -> dict[str, bytes]:
    """Read ``members`` (file name -> path inside the package) out of ``deb``, refusing another version."""
    got = _deb_field(deb, "Version")
    if got != version:
        raise GatherError(f"{deb.name} is {package} {got}, not {version}: the gold pages belong to {version}")
    wanted = {"." + path: name for name, path in members.items()}
    out: dict[str, bytes] = {}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
                for member in tar:
                    name = wanted.get(member.name)
                    if name and member.isfile():
                        fh = tar.extractfile(member)
                        if fh is not None:
                            out[name] = fh.read()
        except tarfile.TarError as exc:
            raise GatherError(f"{deb.name}: cannot unpack: {exc}") from exc
    for name, path in members.items():
        if name not in out:
            raise GatherError(f"{deb.name} has no file {path} (for {name})")
    return out


def gather(out: Path, debs: Path | None = None, debian_root: Path = Path("/")) -> list[Path]:
    """Write the six PDFs into ``out``; raises :class:`GatherError` naming what is wrong."""
    out.mkdir(parents=True, exist_ok=True)
    todo: dict[tuple[str, str], dict[str, str]] = {}  # (package, version) -> {file: path}
    written = []
    for name, (package, version, path, want) in FILES.items():
        installed = debian_root / path.lstrip("/")
        if installed.is_file() and _sha256(installed.read_bytes()) == want:
            shutil.copyfile(installed, out / name)
            written.append(out / name)
        else:
            todo.setdefault((package, version), {})[name] = path
    with tempfile.TemporaryDirectory() as tmp:
        for (package, version), members in todo.items():
            deb = _find_deb(package, version, debs, Path(tmp))
            for name, data in _from_deb(deb, package, version, members).items():
                (out / name).write_bytes(_checked(name, data, FILES[name][3], deb.name))
                written.append(out / name)
    return sorted(written)


def check_questions(path: Path = QUESTIONS, docs: Path | None = None) -> dict[str, dict[str, int]]:
    """Check the question file's schema (and, with ``docs``, that gold pages exist); return counts."""
    counts: dict[str, dict[str, int]] = {"doc": {}, "type": {}, "style": {}}
    seen = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        q = json.loads(line)
        where = f"{path.name}:{n} ({q.get('id')})"
        missing = {"id", "doc_id", "question", "gold_pages", "type", "answer", "evidence", "style"} - q.keys()
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        if q["id"] in seen:
            raise ValueError(f"{where}: duplicate id")
        seen.add(q["id"])
        if q["doc_id"] not in FILES or q["type"] not in TYPES or q["style"] not in STYLES:
            raise ValueError(f"{where}: unknown doc_id, type or style")
        pages = q["gold_pages"]
        if not pages or any(not isinstance(p, int) or not 1 <= p <= PAGES[q["doc_id"]] for p in pages):
            raise ValueError(f"{where}: gold_pages {pages} outside 1..{PAGES[q['doc_id']]}")
        for key in ("doc", "type", "style"):
            value = q["doc_id" if key == "doc" else key]
            counts[key][value] = counts[key].get(value, 0) + 1
    if docs is not None:
        import pymupdf  # only to count pages of the gathered files

        for name, want in PAGES.items():
            with pymupdf.open(docs / name) as doc:
                if len(doc) != want:
                    raise ValueError(f"{docs / name}: {len(doc)} pages, the gold pages assume {want}")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, nargs="?", help="folder to write the six PDFs into")
    ap.add_argument("--debs", type=Path, help="a folder holding the .deb files already downloaded")
    ap.add_argument("--check-questions", action="store_true", help="check bench/data/blind_questions.jsonl and print its counts")
    ap.add_argument("--docs", type=Path, help="with --check-questions: also check the page counts of the gathered PDFs")
    args = ap.parse_args()
    if args.check_questions:
        try:
            counts = check_questions(QUESTIONS, args.docs)
        except (ValueError, OSError) as exc:
            ap.exit(2, f"blind_docs: {exc}\n")
        sys.stdout.write(json.dumps(counts, indent=1) + "\n")
        return
    if args.out is None:
        ap.error("give OUT (or --check-questions)")
    try:
        paths = gather(args.out, args.debs)
    except GatherError as exc:
        ap.exit(2, f"blind_docs: {exc}\n")
    sys.stdout.write(f"{len(paths)} documents in {args.out}\n")


if __name__ == "__main__":
    main()
