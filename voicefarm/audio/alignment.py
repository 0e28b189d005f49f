"""Word timestamps: when each word of a job's text is heard in its audio.

Three sources, best first:

- `engine`: the engine said when it spoke each word (`Audio.words`);
- `aligned`: faster-whisper tiny.en heard the finished audio (voicefarm.audio.asr), and its words are
  matched to the text's by sequence alignment (difflib);
- `estimated`: a language tiny.en cannot hear. WebRTC's VAD finds the speech, and the words
  share it in proportion to their characters.

Whatever the source, every word of the text (split at whitespace, punctuation kept) gets
exactly one entry, in order, with non-decreasing times inside the audio: a word the recognizer
missed or heard otherwise takes its share of the time between its neighbours. Aligned and
estimated word edges next to a pause are then moved onto the speech the VAD finds. Alignment runs
on its own queue (`voicefarm aligner`), so no engine's environment needs the ASR.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Literal

import numpy as np

from voicefarm.audio import vad
from voicefarm.engines.base import Audio, Word

ENGINE, ALIGNED, ESTIMATED = "engine", "aligned", "estimated"
HEARD_LANGUAGES = {"en"}  # what tiny.en transcribes
VAD_MODE = 2  # not the strictest: soft consonants at a word's edge are still speech
# The VAD holds on after speech stops: a region's edges are trimmed to the 10 ms frames within
# 35 dB of its loudest, where speech is still audible over its own tail.
TRIM_FRAME, TRIM_DB = 0.01, 35.0
MIN_PAUSE = 0.15  # seconds without speech that part two words (closures inside a word are shorter)
SNAP_WITHIN = 0.5  # how far from the recognizer's word boundary a pause may be to move it


def split(text: str) -> list[str]:
    """The words a text's timestamps have one entry each for."""
    return text.split()


def _key(word: str) -> str:
    """What two spellings of one word share: letters and digits, lower case."""
    return re.sub(r"[\W_]", "", word.casefold())


def _spread(words: Sequence[str], start: float, end: float) -> list[tuple[float, float]]:
    """Share [start, end] among these words in proportion to their lengths."""
    weights = np.array([max(len(w), 1) for w in words], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def settle(words: Sequence[str], times: Sequence[tuple[float, float]], duration: float) -> list[Word]:
    """The invariant every result keeps: inside [0, duration], each word starting where the one
    before it ended or later, and ending no earlier than it starts."""
    out, last = [], 0.0
    for text, (start, end) in zip(words, times, strict=True):
        start = min(max(start, last), duration)
        end = min(max(end, start), duration)
        out.append(Word(text, round(start, 3), round(end, 3)))
        last = end
    # Rounding to the millisecond may carry a time just past the audio's end (never backwards).
    return [Word(w.text, min(w.start, duration), min(w.end, duration)) for w in out]


def match(text: str, heard: Sequence[Word], duration: float) -> list[Word]:
    """The text's words timed by the words heard (or said by an engine): equal words take the
    heard times; a run heard otherwise shares the heard run's span; words not heard at all are
    interpolated between their neighbours."""
    words = split(text)
    times: list[tuple[float, float] | None] = [None] * len(words)
    ours, theirs = [_key(w) for w in words], [_key(h.text) for h in heard]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ours, theirs, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            times[i1:i2] = [(h.start, h.end) for h in heard[j1:j2]]
        elif tag == "replace":
            times[i1:i2] = _spread(words[i1:i2], heard[j1].start, heard[j2 - 1].end)
    first = heard[0].start if heard else 0.0
    last = heard[-1].end if heard else duration
    i = 0
    while i < len(words):
        if times[i] is not None:
            i += 1
            continue
        j = i
        while j < len(words) and times[j] is None:
            j += 1
        before, after = times[i - 1] if i else None, times[j] if j < len(words) else None
        start = before[1] if before else min(first, after[0] if after else first)
        end = after[0] if after else max(last, start)
        times[i:j] = _spread(words[i:j], start, end)
        i = j
    return settle(words, [t for t in times if t is not None], duration)


def speech_regions(audio: Audio) -> list[tuple[float, float]]:
    """(start, end) of each run of speech; the whole audio when there is none. WebRTC's VAD
    finds the runs, 30 ms at a time and holding on after speech stops (its hangover); each run's
    edges are then trimmed, 10 ms at a time, to the frames within 35 dB of its loudest."""
    frames = vad.voiced(audio.samples, audio.sample_rate, VAD_MODE)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], frames, [False]]).astype(int)))
    regions = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        start, end = a * vad.FRAME_SECONDS, min(b * vad.FRAME_SECONDS, audio.duration)
        regions.append(_trim(audio, start, end))
    return regions or [(0.0, audio.duration)]


def _trim(audio: Audio, start: float, end: float) -> tuple[float, float]:
    step = int(TRIM_FRAME * audio.sample_rate)
    piece = audio.samples[int(start * audio.sample_rate) : int(end * audio.sample_rate)]
    if len(piece) < step:
        return start, end
    frames = piece[: len(piece) // step * step].reshape(-1, step).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - TRIM_DB)
    return start + loud[0] * TRIM_FRAME, min(start + (loud[-1] + 1) * TRIM_FRAME, end)


def estimate(text: str, audio: Audio) -> list[Word]:
    """Words laid over the speech the VAD finds, in proportion to their characters: the speech
    regions are joined into one timeline, the words share it, and each word's times are mapped
    back to the audio's clock (a word that straddles a pause spans it)."""
    words = split(text)
    regions = speech_regions(audio)
    spoken = np.cumsum([0.0] + [b - a for a, b in regions])

    def clock(t: float, side: Literal["left", "right"]) -> float:
        # At a pause, a start goes to the next region's beginning and an end to its own region's.
        # Rounded: a share that ends on a pause must not miss it by a float's last bit.
        k = min(max(int(np.searchsorted(np.round(spoken, 6), round(t, 6), side=side)) - 1, 0), len(regions) - 1)
        return float(regions[k][0] + t - spoken[k])

    shares = _spread(words, 0.0, float(spoken[-1]))
    spread = settle(words, [(clock(a, "right"), clock(b, "left")) for a, b in shares], audio.duration)
    return snap(spread, regions, audio.duration)


def snap(words: list[Word], regions: list[tuple[float, float]], duration: float) -> list[Word]:
    """Word edges at a pause moved onto it: the recognizer's times are good to a word, not to
    the millisecond, and run into silence at a sentence's edges; the VAD knows where speech
    stops. Each pause goes to the word boundary nearest it, the first and last speech to the
    text's edges, and no word loses its own speech."""
    if not words:
        return words
    times = [[w.start, w.end] for w in words]
    edges = [(b + a) / 2 for (_, a), (b, _) in itertools.pairwise(times)]  # between word i and i + 1
    if edges:
        for (_, stop), (resume, _) in itertools.pairwise(regions):
            if resume - stop < MIN_PAUSE:
                continue
            i = int(np.argmin([abs(edge - (stop + resume) / 2) for edge in edges]))
            if abs(edges[i] - (stop + resume) / 2) <= SNAP_WITHIN and times[i][0] < stop and resume < times[i + 1][1]:
                times[i][1], times[i + 1][0] = stop, resume
    first, last = regions[0][0], regions[-1][1]
    if abs(times[0][0] - first) <= SNAP_WITHIN and first < times[0][1]:
        times[0][0] = first
    if abs(times[-1][1] - last) <= SNAP_WITHIN and last > times[-1][0]:
        times[-1][1] = last
    return settle([w.text for w in words], [(a, b) for a, b in times], duration)


def hears(language: str) -> bool:
    return language.split("-")[0].lower() in HEARD_LANGUAGES


def align(text: str, language: str, audio: Audio) -> tuple[list[Word], str]:
    """The text's word timestamps in this audio, and their source (aligned or estimated)."""
    if hears(language):
        from voicefarm.audio import asr

        heard = asr.words(audio)
        if heard:
            return snap(match(text, heard, audio.duration), speech_regions(audio), audio.duration), ALIGNED
    return estimate(text, audio), ESTIMATED
