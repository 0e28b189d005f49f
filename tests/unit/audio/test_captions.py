"""Captions read back, by the same library, as the words they were made from."""

from __future__ import annotations

import html
import io
from pathlib import Path

import webvtt

from voicefarm.audio.captions import MAX_CHARS, cues, render
from voicefarm.engines.base import Word

WORDS = [
    Word("Hello", 0.0, 0.4),
    Word("<there>", 0.4, 0.9),
    Word("&", 0.9, 1.0),
    Word("welcome.", 1.0, 1.5),  # a sentence ends: so does the cue
    Word("After", 1.6, 1.9),
    Word("a", 1.9, 2.0),
    Word("pause", 2.0, 2.3),
    Word("we", 3.0, 3.2),  # 0.7 s of silence before it: a new cue
    *[Word("talk", 3.2 + 0.3 * i, 3.5 + 0.3 * i) for i in range(12)],  # too long for one line
]


def test_cues_end_at_sentences_pauses_and_full_lines() -> None:
    groups = cues(WORDS)
    texts = [" ".join(w.text for w in g) for g in groups]
    assert texts[:3] == ["Hello <there> & welcome.", "After a pause", "we talk talk talk talk talk talk talk talk"]
    assert all(len(t) <= MAX_CHARS for t in texts)
    assert [w for g in groups for w in g] == WORDS


def test_webvtt_and_subrip_say_the_text_as_written_at_the_words_times(tmp_path: Path) -> None:
    expected = [(" ".join(w.text for w in g), g[0].start, g[-1].end) for g in cues(WORDS)]
    # WebVTT cue text is markup: "<" and "&" arrive escaped, and read back as written.
    read = webvtt.from_buffer(io.StringIO(render(WORDS, "vtt")))
    assert [(html.unescape(c.text), c.start_in_seconds, c.end_in_seconds) for c in read] == [
        (text, int(start), int(end)) for text, start, end in expected
    ]
    assert [(c.start, c.end) for c in read][:2] == [("00:00:00.000", "00:00:01.500"), ("00:00:01.600", "00:00:02.300")]
    # SubRip is plain text.
    (tmp_path / "c.srt").write_text(render(WORDS, "srt"))
    srt = webvtt.from_srt(str(tmp_path / "c.srt"))
    assert next(c.text for c in srt) == "Hello  & welcome."  # the reader drops what looks like a tag
    assert [(c.start, c.end) for c in srt] == [(c.start, c.end) for c in read]
    assert render(WORDS, "srt").startswith("1\n00:00:00,000 --> 00:00:01,500\nHello <there> & welcome.\n")
