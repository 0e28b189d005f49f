"""Text splitting and audio joining for engines with a limit on one request's text: numpy
only, so light engines (Google) and torch engines share them."""

from __future__ import annotations

import re
import textwrap

import numpy as np

CROSSFADE_SECONDS = 0.01

# A sentence runs to its closing punctuation plus the whitespace after it: Latin-script
# stops need that whitespace ("3.5" is no boundary), CJK and Devanagari stops do not.
_SENTENCE = re.compile(r".+?(?:[.!?…]+(?:\s+|$)|[。！？।]+\s*|$)", re.DOTALL)


def split_text(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most `limit` characters, at sentence boundaries.

    Sentences are packed greedily; a sentence longer than the limit is wrapped at spaces
    (or anywhere, for scripts without spaces).
    """
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text.strip()):
        if len((current + sentence).strip()) <= limit:
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


def join_pieces(pieces: list[np.ndarray], sample_rate: int) -> np.ndarray:
    """Concatenate audio pieces with a short linear crossfade, so no join clicks."""
    out = pieces[0]
    for piece in pieces[1:]:
        n = min(int(CROSSFADE_SECONDS * sample_rate), len(out), len(piece))
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        mixed = out[len(out) - n :] * (1.0 - ramp) + piece[:n] * ramp
        out = np.concatenate([out[: len(out) - n], mixed, piece[n:]])
    return out
