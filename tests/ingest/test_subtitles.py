"""Subtitles as a transcript: SRT/WebVTT parsing, chunks by time, sidecar names, media sniffing (pure, fast)."""

from __future__ import annotations

import pytest

from ingest._files import sniff_format
from ingest._subtitles import Cue, chunk_cues, media_of, parse_subtitles, sidecar_files

SRT = (
    "\ufeff1\r\n00:00:01,500 --> 00:00:04,000\r\n<i>Welcome</i> to the\r\nharbour tour\r\n\r\n"
    "2\r\n00:00:05,000 --> 00:00:07,250 X1:40\r\n{\\an8}The <b>keeper</b> &amp; the light\r\n\r\n"
    "3\r\nthis block has no timing line\r\n\r\n"
    "4\r\n01:02:03,004 --> 01:02:05,000\r\n\r\n"  # an empty cue
    "5\r\n01:02:06,000 --> 01:02:08,500\r\nlate line\r\n"
)

VTT = """WEBVTT - a talk

NOTE a comment, even one that holds a timing line
00:00:01.000 --> 00:00:02.000
not a cue

intro
00:01.000 --> 00:03.500 align:start position:10%
<v Ana>Glaciers <c.yellow>move</c> slowly

00:00:04.000 --> 00:00:06.000
second cue
"""


def test_srt_cues_have_times_in_seconds_and_text_without_markup():
    cues = parse_subtitles(SRT)
    assert cues == [
        Cue(1.5, 4.0, "Welcome to the harbour tour"),
        Cue(5.0, 7.25, "The keeper & the light"),
        Cue(3726.0, 3728.5, "late line"),
    ]


def test_webvtt_without_hours_with_settings_ids_and_voice_tags():
    assert parse_subtitles(VTT) == [Cue(1.0, 3.5, "Glaciers move slowly"), Cue(4.0, 6.0, "second cue")]


def test_garbage_is_no_cues_not_an_error():
    assert parse_subtitles("this is not a subtitle file\n\nat all") == []
    assert parse_subtitles("") == []


def test_chunks_join_cues_by_time_and_never_cross_a_scene_change():
    cues = [Cue(float(t), t + 1.5, f"w{t}") for t in range(0, 100, 2)]  # 50 cues, one every 2 s
    chunks = chunk_cues(cues, breaks=[10.0], max_seconds=30.0)
    assert chunks[0] == Cue(0.0, 9.5, "w0 w2 w4 w6 w8")  # ends before the cut at 10 s
    assert chunks[1].start == 10.0 and chunks[1].end - chunks[1].start <= 30.0
    assert all(c.end - c.start <= 30.0 for c in chunks)
    assert " ".join(c.text for c in chunks) == " ".join(c.text for c in cues)  # nothing lost, nothing doubled
    small = chunk_cues(cues, max_seconds=1000.0, max_chars=20)
    assert all(len(c.text) <= 20 for c in small) and len(small) > 1


def test_sidecars_are_found_by_name_and_point_back_to_their_video(tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"x")
    for name in ("talk.vtt", "talk.srt", "talk.en.srt", "talk.pt-BR.vtt", "talks.srt", "talk.final.cut.srt", "other.srt"):
        (tmp_path / name).write_text("")
    assert [p.name for p in sidecar_files(video)] == ["talk.srt", "talk.vtt", "talk.en.srt", "talk.pt-BR.vtt"]
    assert media_of(tmp_path / "talk.en.srt") == video
    assert media_of(tmp_path / "talk.srt") == video
    assert media_of(tmp_path / "other.srt") is None
    assert media_of(video) is None


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video"),  # MP4
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video"),  # MOV
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio"),  # M4A
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None),  # a HEIC photo is not a video
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video"),  # Matroska / WebM
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio"),
        (b"\xff\xfb\x90\x64\x00\x00\x00\x00", "audio"),  # an MP3 frame without ID3
        (b"OggS\x00\x02\x00\x00", "audio"),
        (b"fLaC\x00\x00\x00\x22", "audio"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),  # still a JPEG, not an MP3 frame
        (b"\xff\xfeH\x00e\x00l\x00", None),  # UTF-16 text, not an MP3 frame
    ],
)
def test_media_formats_are_told_by_their_bytes(head, fmt):
    assert sniff_format(head) == fmt
