"""Splitting a document into segments: pieces of text one engine call can speak, each with the
pause that follows it, so many workers can speak one document and a join can put it together.

A text is a document when it is SSML or longer than one segment. Sentences are packed into
segments up to the limit and a sentence that fits is never cut; a segment never spans a
paragraph, so a paragraph break can be a longer pause. In plain text (and Markdown) a blank line
or a heading is a paragraph break. SSML is a small subset: `<speak>`, `<p>`, `<s>` and
`<break time="…"/>`; any other element is refused, by name.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from voicefarm.engines.text import split_text
from voicefarm.errors import InvalidRequest
from voicefarm.jobs.keys import normalise_text

SENTENCE_PAUSE = 0.2  # seconds between the segments of one paragraph
PARAGRAPH_PAUSE = 0.75
MAX_BREAK_SECONDS = 10.0
SSML_ELEMENTS = ("speak", "p", "s", "break")

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_SSML_START = re.compile(r"\s*<(speak\b|\?xml\b|!DOCTYPE\b)")
_BREAK_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")

# What a document is made of, in order: text to speak, or a pause (seconds) that ends a run of it.
Token = str | float


@dataclass(frozen=True)
class Piece:
    """One segment: what to say and the seconds of silence after it."""

    text: str
    pause: float


def is_ssml(text: str) -> bool:
    return _SSML_START.match(text) is not None


def is_document(text: str, segment_chars: int) -> bool:
    return is_ssml(text) or len(text) > segment_chars


def split(text: str, segment_chars: int) -> list[Piece]:
    """The document's segments; InvalidRequest for SSML outside the subset, or nothing to say."""
    runs: list[list[str | float]] = [[]]
    for token in _ssml(text) if is_ssml(text) else _markdown(text):
        if isinstance(token, str):
            runs[-1].append(token)
        else:
            runs.append([token])
    pieces: list[list[str | float]] = []
    for run in runs:
        pause = run[0] if run and isinstance(run[0], float) else None
        if pause is not None and pieces:  # a pause lengthens the one after the last segment
            pieces[-1][1] = max(float(pieces[-1][1]), pause)
        words = normalise_text(" ".join(t for t in run if isinstance(t, str)))
        pieces += [[piece, SENTENCE_PAUSE] for piece in split_text(words, segment_chars) if piece]
    if not pieces:
        raise InvalidRequest("text is empty: the document has nothing to say")
    pieces[-1][1] = 0.0
    return [Piece(str(text), float(pause)) for text, pause in pieces]


def canonical(pieces: list[Piece]) -> str:
    """What keys the whole document: its segments and pauses, so equal documents are one speech."""
    return json.dumps([[p.text, p.pause] for p in pieces], separators=(",", ":"))


def _markdown(text: str) -> Iterator[Token]:
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            yield PARAGRAPH_PAUSE
            yield heading.group(1)
            yield PARAGRAPH_PAUSE
        elif not line.strip():
            yield PARAGRAPH_PAUSE
        else:
            yield line


def _ssml(text: str) -> Iterator[Token]:
    if "<!" in text:  # no DOCTYPE, entity or CDATA: the subset needs none, and entities can explode
        raise InvalidRequest("SSML may not contain declarations (<!DOCTYPE>, <!ENTITY>) or CDATA")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as e:
        raise InvalidRequest(f"SSML is not well-formed XML: {e}") from None
    if _name(root) != "speak":
        raise InvalidRequest(f"SSML must be one <speak> element, not <{_name(root)}>")
    yield from _walk(root)


def _walk(element: ET.Element) -> Iterator[Token]:
    name = _name(element)
    if name not in SSML_ELEMENTS:
        raise InvalidRequest(f'SSML element <{name}> is not supported; use <speak>, <p>, <s> and <break time="…"/>')
    if name == "break":
        yield _break_seconds(element.get("time"))
    elif name == "p":
        yield PARAGRAPH_PAUSE
    if element.text:
        yield element.text
    for child in element:
        yield from _walk(child)
        if child.tail:
            yield child.tail
    if name == "p":
        yield PARAGRAPH_PAUSE
    elif name == "s":
        yield " "  # a sentence ends here even without its stop


def _break_seconds(time: str | None) -> float:
    if time is None:
        return PARAGRAPH_PAUSE
    found = _BREAK_TIME.match(time)
    if found is None:
        raise InvalidRequest(f'SSML <break time="{time}"> must be a duration such as 500ms or 1.5s')
    seconds = float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)
    if seconds > MAX_BREAK_SECONDS:
        raise InvalidRequest(f'SSML <break time="{time}"> is longer than {MAX_BREAK_SECONDS:g} s')
    return seconds


def _name(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]  # without its namespace (the SSML one, or none)
