"""A folder with a video (burned-in words, a sidecar .srt), an audio file without subtitles and a
damaged video, ingested end to end: search finds the frame and the time, ``mmrag ask --json`` and
the HTTP API carry ``start``/``end``, the terminal shows ``0:02–0:04``, refusals are reported."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests._live_server import live_server, wait_ready
from tests._videogen import make_video, make_wav, write_srt, write_vtt

CUES = [(0.4, 1.6, "the ferry leaves at noon"), (2.3, 3.8, "a keeper named Ottoline"), (4.5, 5.5, "ice moves slowly")]


@pytest.fixture(scope="module")
def video_kb(tmp_path_factory) -> tuple[Path, list]:
    from rag import KnowledgeBase

    root = tmp_path_factory.mktemp("video")
    folder = root / "docs"
    folder.mkdir()
    make_video(folder / "clip.mp4")
    write_srt(folder / "clip.srt", CUES)
    make_wav(folder / "interview.wav")
    make_wav(folder / "podcast.wav", seconds=2.0)
    write_vtt(folder / "podcast.en.vtt", [(0.0, 40.0, "welcome to the show"), (41.0, 80.0, "our guest keeps bees on a roof")])
    data = (folder / "clip.mp4").read_bytes()
    (folder / "broken.mp4").write_bytes(data[:40] + bytes(range(256)) * 8)
    path = root / "kb"
    with KnowledgeBase.open(path, create=True) as kb:
        reports = kb.ingest([folder], progress=False)
    return path, reports


def test_the_folder_is_reported_file_by_file(video_kb):
    _, reports = video_kb
    by_name = {r.path.name: r for r in reports}
    assert set(by_name) == {"clip.mp4", "interview.wav", "podcast.wav", "broken.mp4", "clip.srt", "podcast.en.vtt"}
    # a sidecar is listed, as part of its media, never as an unsupported file or a document of its own
    assert (by_name["clip.srt"].status, by_name["clip.srt"].reason) == ("skipped", "subtitles of clip.mp4, read with it")
    assert by_name["podcast.en.vtt"].reason == "subtitles of podcast.wav, read with it"
    assert by_name["podcast.wav"].status == "indexed" and by_name["podcast.wav"].pages == 2
    assert by_name["clip.mp4"].status == "indexed" and by_name["clip.mp4"].pages == 3
    audio = by_name["interview.wav"]
    assert audio.status == "failed" and "interview.wav" in audio.error
    assert "no transcript: audio has no subtitle track or sidecar .srt/.vtt" in audio.error
    broken = by_name["broken.mp4"]
    assert broken.status == "failed" and broken.error_type == "CorruptDocumentError" and "broken.mp4" in broken.error


def test_a_burned_in_word_is_found_on_its_frame_with_a_box_on_it(video_kb):
    from rag import KnowledgeBase

    with KnowledgeBase.open(video_kb[0]) as kb:
        hit = kb.search("LIGHTHOUSE", top_k=3).hits[0]
    assert (hit.source, hit.page) == ("clip.mp4", 2)
    assert (hit.start, hit.end) == (2.0, 4.0)  # the frame shows from 0:02 to the next scene at 0:04
    assert hit.bbox is not None and hit.image_path is not None and hit.image_path.is_file()
    # the word is drawn centred, 64 px high, on a 480 x 270 frame: the box is on it, not the whole frame
    box = hit.bbox
    assert box.x0 < 240 < box.x1 and box.y0 < 135 < box.y1 and box.height < 100 and box.width < 470


def test_a_subtitle_word_is_found_with_the_time_it_is_said(video_kb):
    from rag import KnowledgeBase

    with KnowledgeBase.open(video_kb[0]) as kb:
        hit = kb.search("the keeper named Ottoline", top_k=3).hits[0]
    assert (hit.source, hit.page) == ("clip.mp4", 2)
    assert hit.start is not None and hit.end is not None
    assert hit.start <= 2.3 and hit.end >= 3.8 and hit.end - hit.start < 2.0  # the cue's time, not the whole video


def test_audio_with_subtitles_is_searched_by_its_transcript(video_kb):
    from rag import KnowledgeBase

    with KnowledgeBase.open(video_kb[0]) as kb:
        hit = kb.search("guest who keeps bees on a roof", top_k=3).hits[0]
    assert (hit.source, hit.page, hit.start, hit.end, hit.image_path) == ("podcast.wav", 2, 41.0, 80.0, None)


def _run(capsys, *argv: str) -> tuple[int, str]:
    from rag.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().out


def test_ask_json_and_the_terminal_carry_the_time(video_kb, capsys):
    kb = str(video_kb[0])
    code, out = _run(capsys, "ask", "Who is the keeper named Ottoline?", "--kb", kb, "--json")
    data = json.loads(out)
    assert code == 0 and data["citations"], data
    cited = data["citations"][0]
    assert cited["source"] == "clip.mp4" and cited["page"] == 2
    assert cited["start"] <= 2.3 and cited["end"] >= 3.8
    assert {"start", "end"} <= set(data["hits"][0])
    code, out = _run(capsys, "search", "LIGHTHOUSE", "--kb", kb)
    first = out.splitlines()[1]
    assert code == 0 and "clip.mp4 p.2 0:02–0:04" in first, out
    code, out = _run(capsys, "ask", "Who is the keeper named Ottoline?", "--kb", kb)
    assert code == 0 and "clip.mp4, page 2, 0:02–0:04, box [0, 0, 480, 270]" in out, out  # said 2.3-3.8 s


def test_the_web_pages_api_payload_has_the_frame_and_the_time(video_kb):
    from rag import KnowledgeBase
    from rag.server import create_app

    with KnowledgeBase.open(video_kb[0]) as kb:
        with live_server(create_app(kb)) as url, httpx.Client(base_url=url, timeout=120) as http:
            wait_ready(http)
            hit = http.post("/api/search", json={"question": "LIGHTHOUSE", "top_k": 3}).json()["hits"][0]
            assert (hit["source"], hit["page"], hit["start"], hit["end"]) == ("clip.mp4", 2, 2.0, 4.0)
            assert http.get(hit["image_url"]).headers["content-type"].startswith("image/")
            answer = http.post("/api/ask", json={"question": "Who is the keeper named Ottoline?"}).json()
            cited = answer["citations"][0]
            assert cited["start"] <= 2.3 and cited["end"] >= 3.8 and cited["image_url"]
            assert http.get(cited["highlight_url"]).headers["content-type"] == "image/png"
