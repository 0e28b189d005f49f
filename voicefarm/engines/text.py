"""Text splitting and audio joining for engines with a limit on one request's text: numpy
only, so light engines (Google) and torch engines share them."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator

import numpy as np

CROSSFADE_SECONDS = 0.01

# A sentence runs to its closing punctuation plus the whitespace after it: Latin-script
# stops need that whitespace ("3.5" is no boundary), CJK and Devanagari stops do not.
_SENTENCE = re.compile(r".+?(?:[.!?…]+(?:\s+|$)|[。！？।]+\s*|$)", re.DOTALL)


def split_text(text: str, limit: int, *, pack: bool = True) -> list[str]:
    """Split text into pieces of at most `limit` characters, at sentence boundaries.

    Sentences are packed greedily (`pack`), or each is a piece of its own, so a streaming
    engine hands over the first sentence without waiting for the ones packed after it; a
    sentence longer than the limit is wrapped at spaces (or anywhere, for scripts without spaces).
    """
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text.strip()):
        if len((current + sentence).strip()) <= limit and (pack or not current.strip()):
            current += sentence
            continue
        if current.strip():
            pieces.append(current.strip())
        current = ""
        if len(sentence.strip()) <= limit:
            current = sentence
        else:
            pieces.extend(textwrap.wrap(sentence, width=limit))
    if current.strip():
        pieces.append(current.strip())
    return pieces


def crossfaded(pieces: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
    """Audio pieces joined with a short linear crossfade, so no join clicks, handed on as they
    come: only each piece's last few milliseconds wait for the next one to fade into."""
    fade = int(CROSSFADE_SECONDS * sample_rate)
    held: np.ndarray | None = None  # the end of what came so far, for the next piece to fade into
    for piece in pieces:
        if held is None:
            held = piece
        else:
            n = min(fade, len(held), len(piece))
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
            mixed = held[len(held) - n :] * (1.0 - ramp) + piece[:n] * ramp
            held = np.concatenate([held[: len(held) - n], mixed, piece[n:]])
        if len(held) > fade:
            yield held[: len(held) - fade]
            held = held[len(held) - fade :]
    if held is not None and len(held):
        yield held
