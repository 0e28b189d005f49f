"""Captions from word timestamps: WebVTT and SubRip, written by webvtt-py.

Words are grouped into cues a reader can take in at a glance: a cue ends at the end of a
sentence, before a pause, or before it would grow past one caption line.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Literal

from webvtt import Caption, WebVTT
from webvtt.models import Timestamp

from voicefarm.engines.base import Word

MAX_CHARS = 42  # a caption line, as broadcast and streaming style guides have it
PAUSE_SECONDS = 0.5
SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")
MEDIA_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8"}


def cues(words: Sequence[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if (
            current is None
            or current[-1].text.endswith(SENTENCE_END)
            or word.start - current[-1].end >= PAUSE_SECONDS
            or len(" ".join(w.text for w in current)) + 1 + len(word.text) > MAX_CHARS
        ):
            groups.append([word])
        else:
            current.append(word)
    return groups


def render(words: Sequence[Word], fmt: Literal["vtt", "srt"]) -> str:
    # Cue text is WebVTT markup, for either format: a "<" or "&" in the text must arrive as itself.
    vtt = WebVTT(
        captions=[
            Caption(
                str(Timestamp.from_seconds(group[0].start)),
                str(Timestamp.from_seconds(group[-1].end)),
                html.escape(" ".join(w.text for w in group), quote=False),
            )
            for group in cues(words)
        ]
    )
    out = io.StringIO()
    vtt.write(out, format=fmt)
    # SubRip is plain text: its cues say "<" and "&" themselves.
    return html.unescape(out.getvalue()) if fmt == "srt" else out.getvalue()
