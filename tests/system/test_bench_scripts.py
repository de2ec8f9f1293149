"""The benchmark scripts in bench/ run end to end and print what BENCHMARKS.md quotes.

Small inputs (the demo's sample manual, a 300-page synthetic store): these tests guard the
scripts from rot, not the numbers; the numbers come from the full runs in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ingest.samples import make_samples

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def sample_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("peers_docs")
    make_samples(folder)
    (folder / "inverter_dashboard.png").unlink()  # the peers read PDFs only
    return folder


def test_peers_scores_mmrag_and_bm25_side_by_side(sample_docs: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        ("Q1", "Which isolator must be switched off first?", [1], "text"),
        ("Q2", "In which month does the monthly energy output peak?", [2], "figure"),
        ("Q3", "What should the panels be cleaned with?", [3], "text"),
    ]
    questions.write_text("".join(
        json.dumps({"id": i, "doc_id": "solar_maintenance_manual.pdf", "question": q, "gold_pages": g, "type": t}) + "\n"
        for i, q, g, t in rows
    ))
    table = tmp_path / "peers.json"
    out = run("peers.py", "--docs", str(sample_docs), "--questions", str(questions), "--systems", "mmrag,bm25",
              "--repeat", "2", "--json", str(table))
    result = json.loads(table.read_text())
    assert set(result) == {"mmrag", "bm25"}
    # two rounds, each with its own pages/s ratio; the table's ratio is their median
    per_round = result["mmrag"]["ratio_per_round"]["bm25"]
    assert len(per_round) == 2 and all(r > 0 for r in per_round)
    assert "ingest_pages_s ratio per round: " in out
    mmrag, bm25 = result["mmrag"], result["bm25"]
    assert mmrag["recall@5"] == 1.0  # four pages, three plain questions: every gold page in the top 5
    for row in (mmrag, bm25):
        assert 0.0 <= row["recall@1"] <= row["recall@5"] <= 1.0
        # CPU time ticks in 10 ms steps: BM25 over four pages can measure 0.0
        assert row["ingest_pages_s"] > 0 and row["ingest_cpu_ms_page"] >= 0
        assert row["query_p50_ms"] > 0 and row["peak_rss_mb"] > 50 and row["peak_pss_mb"] > 50
    # mmrag renders pages, finds figures and embeds chunks: more CPU per page than tokenising text
    assert mmrag["ingest_cpu_ms_page"] > max(bm25["ingest_cpu_ms_page"], 1.0)
    assert "mmrag/bm25" in out and "ingest_cpu_ms_page" in out


def test_store_benchmark_reports_latency_recall_and_targets() -> None:
    out = run("bench_store.py", "--pages", "300", "--queries", "5", "--local-cap", "300", "--local-queries", "2",
              "--prefetch", "50,300")
    lines = out.splitlines()
    full = next(line for line in lines if line.startswith("prefetch 300"))
    edge_recall, local_recall = float(full.split()[4]), float(full.split()[6])
    # rescoring every page: only the 8-bit codes separate edge from the exact float32 MaxSim
    assert edge_recall >= 0.9 and local_recall >= 0.9
    assert any(line.startswith("numpy exact MaxSim") for line in lines)
    assert any(line.startswith("targets:") and "p50 <= 10 ms" in line for line in lines)


def test_query_benchmark_times_both_systems_on_the_same_questions(sample_docs: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "Q1", "doc_id": "solar_maintenance_manual.pdf", "question":
                                     "Which isolator must be switched off first?", "gold_pages": [1], "type": "text"}) + "\n")
    out = run("bench_query.py", "--docs", str(sample_docs), "--questions", str(questions), "--repeat", "1", "--no-cold")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("mmrag ", "llama-index "))}
    assert set(rows) == {"mmrag", "llama-index"} and all(float(v[0]) > 0 for v in rows.values())
    assert "mmrag/llama-index p50 ratio" in out


def test_ingest_benchmark_reports_peak_rss_against_document_length() -> None:
    out = run("bench_ingest.py", "--skip-real", "--pages", "20", "40", "--render-pages", "10")
    table = out[out.index("2. peak RSS against document length"):].splitlines()
    sizes = [line.split() for line in table if line.split() and line.split()[0] in ("20", "40")]
    assert [row[0] for row in sizes] == ["20", "40"]
    assert sizes[0][-1] == "1.00x" and float(sizes[1][-1].rstrip("x")) < 1.5  # streaming: twice the pages, not twice the memory


def test_store_benchmark_refuses_an_empty_run_with_a_message() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_store.py"), "--local-cap", "0"],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "--local-cap must be >= 1" in out.stderr


def test_heldout_docs_refuses_other_versions_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The held-out gold pages belong to exact files: a different file under the right name is
    refused with the file and the reason, and a missing Debian document names its package."""
    import io
    import tarfile

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import heldout_docs as hd
    sdists = []
    for requirement, (folder, files) in hd.FROM_SDISTS.items():
        path = tmp_path / hd._sdist_name(requirement)
        with tarfile.open(path, "w:gz") as tar:
            for name in files:
                data = b"%PDF-1.4 not the real one"
                info = tarfile.TarInfo(folder + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        sdists.append(path)
    with pytest.raises(hd.GatherError, match=r"linn\.pdf from ocrmypdf-17\.13\.0\.tar\.gz is not the version"):
        hd.gather(tmp_path / "out", sdists)
    # right sdists (the real bytes are not needed to reach the Debian step: patch the hashes)
    wanted = {name: hd._sha256(b"%PDF-1.4 not the real one") for _, files in hd.FROM_SDISTS.values() for name in files}
    patched = {req: (folder, {n: wanted[n] for n in files}) for req, (folder, files) in hd.FROM_SDISTS.items()}
    monkeypatch.setattr(hd, "FROM_SDISTS", patched)
    with pytest.raises(hd.GatherError, match=r"libtasn1\.pdf is missing: install it with `apt-get install libtasn1-doc="):
        hd.gather(tmp_path / "out2", sdists, debian_root=tmp_path / "empty-root")
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["c03-29.pdf", "congress.pdf", "epson.pdf", "linn.pdf"]


def _fake_deb(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal .deb holding ``files`` (path inside the package -> bytes), built with dpkg-deb."""
    root = Path(tempfile.mkdtemp(dir=folder.parent))  # a fresh tree for each package built
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: fake\n")
    for path, data in files.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(data)
    deb = folder / f"{package}_{version.replace(':', '%3a')}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb")
def test_blind_docs_refuses_other_versions_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blind gold pages belong to exact files: a package of another version, or a file whose
    SHA-256 differs, is refused with the file's (or package's) name; a right file is written."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import blind_docs as bd
    package, version, path, _ = bd.FILES["R-data.pdf"]
    debs = tmp_path / "debs"
    debs.mkdir()
    _fake_deb(debs, package, "9.9-1", {path: b"%PDF-1.4 other"})
    with pytest.raises(bd.GatherError, match=rf"r-doc-pdf_9\.9-1_all\.deb is r-doc-pdf 9\.9-1, not {re.escape(version)}"):
        bd.gather(tmp_path / "out", debs, debian_root=tmp_path / "empty-root")
    for old in debs.glob("*.deb"):
        old.unlink()
    _fake_deb(debs, package, version, {path: b"%PDF-1.4 not the real one"})
    with pytest.raises(bd.GatherError, match=r"R-data\.pdf from r-doc-pdf_.*\.deb is not the version the gold pages belong to"):
        bd.gather(tmp_path / "out", debs, debian_root=tmp_path / "empty-root")
    # the same bytes with the hash they have: written under the file's name, from the .deb alone
    monkeypatch.setattr(bd, "FILES", {"R-data.pdf": (package, version, path, bd._sha256(b"%PDF-1.4 not the real one"))})
    assert [p.name for p in bd.gather(tmp_path / "out", debs, debian_root=tmp_path / "empty-root")] == ["R-data.pdf"]


def test_blind_questions_match_their_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blind set keeps the shape BLIND.md promises: every question well-formed and on a page
    its document has, at least 8 per document, enough table and figure questions, and as many in
    a reader's own words as in the document's; rag.eval reads the file as it is."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import blind_docs as bd
    from rag.eval import load_questions

    counts = bd.check_questions()
    total = sum(counts["doc"].values())
    assert total >= 60 and set(counts["doc"]) == set(bd.FILES) and min(counts["doc"].values()) >= 8
    assert counts["type"]["table"] >= 10 and counts["type"]["figure"] >= 8
    assert counts["style"]["own_words"] == counts["style"]["document_words"]
    assert len(load_questions(bd.QUESTIONS)) == total


def _bench_module(name: str):
    import importlib.util

    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tree_pss_counts_a_child_process_memory_with_its_parent() -> None:
    tree = _bench_module("_tree_memory")
    # the parent holds little; its child fills 150 MB of its own pages, then both wait
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(150 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(2)'])")
    proc = subprocess.Popen([sys.executable, "-c", code])
    with tree.TreePss(proc.pid, interval=0.1) as pss:
        proc.wait()
    assert proc.returncode == 0
    assert pss.samples >= 3 and pss.peak_mb > 150  # the child's pages, which the parent's ru_maxrss never sees


def test_tree_pss_detail_says_which_process_held_the_peak_and_in_what() -> None:
    tree = _bench_module("_tree_memory")
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(150 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(2)'])")
    proc = subprocess.Popen([sys.executable, "-c", code])
    with tree.TreePss(proc.pid, interval=0.1, detail=True) as pss:
        proc.wait()
    parent, child = pss.at_peak
    assert (parent.pid, child.ppid) == (proc.pid, proc.pid)
    assert child.anon_mb > 150 > parent.pss_mb  # the child's own anonymous pages
    assert sum(mb for _, mb in child.maps) <= child.pss_mb + 1 and child.maps[0][1] > 100
    table = tree.describe(pss.at_peak)
    assert str(child.pid) in table and child.maps[0][0] in table


def test_memory_benchmark_document_is_deterministic_with_figures_and_tables(tmp_path: Path) -> None:
    import pymupdf

    bench = _bench_module("bench_memory")
    a, b = bench.make_pdf(tmp_path / "a.pdf", 30), bench.make_pdf(tmp_path / "b.pdf", 30)
    assert a.read_bytes() == b.read_bytes()
    with pymupdf.open(a) as doc:
        assert doc.page_count == 30
        with_images = [i + 1 for i in range(30) if doc[i].get_images()]
        assert with_images == [10, 20, 30]
        assert "Table 7: Service intervals." in doc[6].get_text()
        assert doc[0].get_text() != doc[1].get_text()  # no two pages alike (nothing deduplicated)
