"""Gather the held-out documents of ``bench/data/heldout_questions.jsonl`` into a folder.

    .venv/bin/python bench/heldout_docs.py OUT [--sdist ocrmypdf-17.13.0.tar.gz --sdist pikepdf-10.18.0.tar.gz]
    .venv/bin/python bench/peers.py --docs OUT --questions bench/data/heldout_questions.jsonl

Six public PDFs that retrieval was never tuned on (BENCHMARKS.md, "Held-out documents"):
two technical manuals that Debian installs (the GNU Libtasn1 manual from ``libtasn1-doc``
4.19.0-2+deb12u1, the freedesktop Shared MIME-info spec from ``shared-mime-info`` 2.2-1)
and four scanned pages from the test resources of ocrmypdf 17.13.0 and pikepdf 10.18.0 (their
sdists on PyPI: a product sheet, a printed web page, a book page; an 1871 Senate document). Gold
pages belong to these exact files, so each is checked against its SHA-256; another version is
refused by name. The sdists are fetched with ``pip download`` unless ``--sdist`` gives them.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FROM_SDISTS = {  # requirement -> (folder inside the sdist, {file: sha256})
    "ocrmypdf==17.13.0": ("ocrmypdf-17.13.0/tests/resources/", {
        "linn.pdf": "e923f6e8e036185f8f2aae5f7fdeefd8ac658d627cebd4ebf630de4cbf0a2d64",
        "epson.pdf": "3fce2d6e5baffec839ffc86b7c91903b139399392ea76a09bdfcca40cb8b5a4d",
        "c03-29.pdf": "c2ff83af7d028c95209cc7eebdf80fd5bb4cd292973ed6601e4bab7d1929f201",
    }),
    "pikepdf==10.18.0": ("pikepdf-10.18.0/tests/resources/", {
        "congress.pdf": "aa56b73d2ca24841b9aab2d617f941579238ef5096ea4d65f2cd15e8ffaba502",
    }),
}
FROM_DEBIAN = {  # file -> (installed path, Debian package=version, sha256)
    "libtasn1.pdf": (
        "/usr/share/doc/libtasn1-doc/libtasn1.pdf", "libtasn1-doc=4.19.0-2+deb12u1",
        "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3",
    ),
    "shared-mime-info-spec.pdf": (
        "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf", "shared-mime-info=2.2-1",
        "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002",
    ),
}


class GatherError(Exception):
    """A document is missing or is not the version the gold pages belong to."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(name: str, data: bytes, want: str, where: str) -> bytes:
    if _sha256(data) != want:
        raise GatherError(f"{name} from {where} is not the version the gold pages belong to (sha256 {_sha256(data)[:12]}…, want {want[:12]}…)")
    return data


def _sdist_name(requirement: str) -> str:
    name, version = requirement.split("==")
    return f"{name}-{version}.tar.gz"


def _download_sdist(requirement: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    path = into / _sdist_name(requirement)
    if done.returncode != 0 or not path.is_file():
        raise GatherError(f"pip download {requirement} failed: {done.stderr.strip()[-300:] or 'no sdist written'}")
    return path


def gather(out: Path, sdists: list[Path] | None = None, debian_root: Path = Path("/")) -> list[Path]:
    """Write the six PDFs into ``out``; raises :class:`GatherError` naming what is wrong."""
    given = {p.name: p for p in sdists or ()}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for requirement, (folder, files) in FROM_SDISTS.items():
            archive = given.get(_sdist_name(requirement)) or _download_sdist(requirement, Path(tmp))
            try:
                with tarfile.open(archive) as tar:
                    for name, want in files.items():
                        member = tar.extractfile(folder + name)
                        if member is None:
                            raise GatherError(f"{archive.name}: {folder + name} is not a file")
                        (out / name).write_bytes(_checked(name, member.read(), want, archive.name))
                        written.append(out / name)
            except (tarfile.TarError, KeyError, OSError) as exc:
                raise GatherError(f"{archive}: cannot read {folder}…: {exc}") from exc
    for name, (installed, package, want) in FROM_DEBIAN.items():
        source = debian_root / installed.lstrip("/")
        if not source.is_file():
            raise GatherError(f"{installed} is missing: install it with `apt-get install {package}`")
        _checked(name, source.read_bytes(), want, installed)
        shutil.copyfile(source, out / name)
        written.append(out / name)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder to write the six PDFs into")
    ap.add_argument("--sdist", type=Path, action="append", help="an sdist already downloaded (ocrmypdf-17.13.0.tar.gz, pikepdf-10.18.0.tar.gz)")
    args = ap.parse_args()
    try:
        paths = gather(args.out, args.sdist)
    except GatherError as exc:
        ap.exit(2, f"heldout_docs: {exc}\n")
    sys.stdout.write(f"{len(paths)} documents in {args.out}\n")


if __name__ == "__main__":
    main()
