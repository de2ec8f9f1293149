"""Video and audio files read as documents: pages at scene changes, the transcript by time,
clear refusals (audio without a transcript, a damaged file). Media made here with PyAV."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import identify_file, inspect_batch, inspect_json, open_document
from rag.config import IngestConfig
from rag.errors import CorruptDocumentError, EmptyDocumentError, ResourceLimitError
from tests._videogen import SCENES, make_video, make_wav, mux_subtitles, write_srt, write_vtt

NO_OCR = IngestConfig(ocr="never")
CUES = [(0.4, 1.6, "the ferry leaves at noon"), (2.3, 3.8, "a keeper named Ottoline"), (4.5, 5.5, "ice moves slowly")]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    make_video(folder / "scenes.mp4")
    make_video(folder / "slides.webm", [(w, (245, 245, 245)) for w, _ in SCENES], codec="libvpx")  # same background
    make_video(folder / "narrated.mkv")
    write_srt(folder / "narrated.srt", CUES)
    make_wav(folder / "interview.wav")
    make_wav(folder / "podcast.wav", seconds=2.0)
    write_vtt(folder / "podcast.en.vtt", [(0.0, 40.0, "welcome to the show"), (41.0, 80.0, "our guest is a beekeeper")])
    data = (folder / "scenes.mp4").read_bytes()
    (folder / "broken.mp4").write_bytes(data[:40] + bytes(range(256)) * 8)  # header kept, body garbage
    return folder


def _pages(path: Path, config: IngestConfig = NO_OCR):
    with open_document(path, config) as reader:
        return reader.info, list(reader.pages(progress=False))


@pytest.mark.parametrize("name", ["scenes.mp4", "slides.webm"])
def test_a_page_per_scene_not_per_frame(media, name):
    info, pages = _pages(media / name)
    assert info.kind == "video" and identify_file(media / name, NO_OCR).format == "video"
    assert info.page_count == len(pages) == 3  # 60 frames, 3 scenes (a colour cut; words changing on one background)
    assert [(p.page.start, p.page.end) for p in pages] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert all(p.page.width == 480 and p.page.height == 270 for p in pages)
    shown = inspect_json(info, pages)["pages"][1]  # `mmrag inspect --json`
    assert (shown["start"], shown["end"]) == (2.0, 4.0)


def test_frames_per_video_are_capped_by_config(media):
    _, pages = _pages(media / "scenes.mp4", IngestConfig(ocr="never", video_max_frames=2))
    assert [(p.page.start, p.page.end) for p in pages] == [(0.0, 2.0), (2.0, 6.0)]


def test_each_frame_is_the_page_image(media, tmp_path):
    with open_document(media / "scenes.mp4", NO_OCR, image_dir=tmp_path) as reader:
        pages = list(reader.pages(progress=False))
    from PIL import Image

    for p, (_, colour) in zip(pages, SCENES):
        assert p.page.image_path is not None and p.page.image_path.is_file()
        with Image.open(p.page.image_path) as im:
            corner = im.convert("RGB").getpixel((470, 260))
        assert all(abs(a - b) < 16 for a, b in zip(corner, colour)), (corner, colour)


def test_a_sidecar_srt_is_the_transcript_chunked_onto_the_frame_shown(media):
    _, pages = _pages(media / "narrated.mkv")
    said = [[(c.text, c.start, c.end) for c in p.chunks] for p in pages]
    assert said == [[(CUES[0][2], 0.4, 1.6)], [(CUES[1][2], 2.3, 3.8)], [(CUES[2][2], 4.5, 5.5)]]
    assert "Ottoline" in pages[1].page.text
    assert pages[1].chunks[0].bbox.as_list() == [0.0, 0.0, 480.0, 270.0]  # the frame shown while it is said


def test_a_subtitle_track_inside_the_file_is_the_transcript(media, tmp_path):
    srt = write_srt(tmp_path / "track.srt", CUES)
    video = mux_subtitles(media / "scenes.mp4", srt, tmp_path / "tracked.mp4")
    _, pages = _pages(video)
    chunks = [(c.text, c.start, c.end) for p in pages for c in p.chunks]
    assert chunks == [(text, pytest.approx(a), pytest.approx(b)) for a, b, text in CUES]


def test_audio_with_a_sidecar_is_transcript_pages_without_images(media, tmp_path):
    with open_document(media / "podcast.wav", NO_OCR, image_dir=tmp_path) as reader:
        info, pages = reader.info, list(reader.pages(progress=False))
    assert info.kind == "audio" and len(pages) == 2  # 80 s of transcript, chunks of at most 45 s
    assert [(p.page.start, p.page.end, p.page.image_path) for p in pages] == [(0.0, 40.0, None), (41.0, 80.0, None)]
    assert pages[1].chunks[0].text == "our guest is a beekeeper" and pages[1].chunks[0].start == 41.0
    assert not any(tmp_path.rglob("*.*"))  # nothing to show, nothing written


def test_audio_without_subtitles_is_refused_with_the_reason_and_the_batch_goes_on(media):
    results = inspect_batch([media / "interview.wav", media / "scenes.mp4"], NO_OCR)
    (bad, _, _), (good, _, contents) = results
    assert bad.status == "failed" and bad.error_type == "EmptyDocumentError"
    assert "interview.wav" in bad.error
    assert "no transcript: audio has no subtitle track or sidecar .srt/.vtt, and no speech model is available offline" in bad.error
    assert good.status == "ok" and len(contents) == 3
    with pytest.raises(EmptyDocumentError):
        open_document(media / "interview.wav", NO_OCR)


@pytest.mark.parametrize("name", ["voice.mp3", "voice.flac", "voice.m4a"])
def test_any_audio_without_subtitles_is_refused_with_the_reason(tmp_path, name):
    audio = make_wav(tmp_path / name)
    with pytest.raises(EmptyDocumentError, match="no transcript: audio has no subtitle track"):
        open_document(audio, NO_OCR)
    write_srt(tmp_path / (audio.stem + ".srt"), CUES[:1])
    with open_document(audio, NO_OCR) as reader:
        assert reader.info.kind == "audio" and reader.page(1).chunks[0].text == CUES[0][2]


def test_a_corrupt_video_is_a_clear_failure_naming_the_file(media):
    with pytest.raises(CorruptDocumentError) as err:
        open_document(media / "broken.mp4", NO_OCR)
    assert "broken.mp4" in str(err.value) and "cannot be opened" in str(err.value)


def test_a_subtitle_file_given_alone_says_it_belongs_to_its_video(media, tmp_path):
    from rag.errors import UnsupportedFormatError

    with pytest.raises(UnsupportedFormatError, match=r"read as part of its video or audio.*ingest narrated\.mkv"):
        identify_file(media / "narrated.srt", NO_OCR)
    lone = write_srt(tmp_path / "lonely.srt", CUES)
    with pytest.raises(UnsupportedFormatError, match=r"lonely\.mp4.*there is none"):
        identify_file(lone, NO_OCR)


def test_frames_larger_than_the_image_limit_are_refused_from_the_stream_header(media):
    # a decompression bomb in video form: refused before any frame is decoded, with the sizes
    with pytest.raises(ResourceLimitError, match=r"480x270 = 129,600 pixels \(by the stream's header\), above ingest.max_image_pixels=100,000"):
        _pages(media / "scenes.mp4", IngestConfig(ocr="never", max_image_pixels=100_000))


def test_a_video_that_decodes_past_its_time_bound_keeps_what_was_read_and_says_so(media, monkeypatch):
    import ingest._video as video

    monkeypatch.setattr(video, "REALTIME_FACTOR", 0.0)  # no time per second of video: the bound is page_timeout_s
    info, pages = _pages(media / "scenes.mp4", IngestConfig(ocr="never", page_timeout_s=0.001))
    assert 1 <= info.page_count < 3  # the first scene kept, decoding cut short
    assert any("decoding stopped after" in n and "the rest of the video is not indexed" in n for n in pages[0].page.notes)
