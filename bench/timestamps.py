"""Word-timestamp accuracy on audio whose sentence boundaries are known (issue 13).

Each sentence is synthesized on its own with Piper, so where its speech starts and ends inside
its clip is measured on the clip alone; the clips are joined with silences of known lengths,
and the paragraph is aligned as the aligner aligns a job's audio. The error at a boundary is
how far the aligned start of a sentence's first word (or end of its last) is from where its
speech really starts (ends): the first (last) 5 ms of the clip within 40 dB of its loudest.
Sentence edges are pauses, where the aligner snaps word edges to the speech it finds, so also
shown: the recognizer's own word times before that step, and the `estimated` timings (VAD and
characters) that a language the recognizer cannot hear gets, on the same audio. Word edges
inside a sentence, with no pause between them, are as good as the recognizer's.

Target: median boundary error of the aligned timings at most 80 ms.
"""

from __future__ import annotations

import statistics

import numpy as np
from rich.console import Console

console = Console()
TARGET_MS = 80.0
VOICE = "en_US-joe-medium"
PARAGRAPHS = [
    [
        "Your order has shipped and will arrive on Tuesday.",
        "Please keep your receipt.",
        "If anything is missing, call us within thirty days.",
        "We are happy to help.",
    ],
    [
        "The meeting has been moved to three o'clock.",
        "Bring the quarterly figures with you.",
        "Maria will present the new design first.",
        "After that, we will vote on the budget.",
    ],
    [
        "Turn left at the next intersection.",
        "Continue straight for two kilometres.",
        "Your destination is on the right, next to the bakery.",
        "Parking is available behind the building.",
    ],
    [
        "Thank you for calling.",
        "All of our agents are busy at the moment.",
        "Your call is important to us, so please stay on the line.",
        "Someone will be with you shortly.",
    ],
    [
        "The museum opens at nine in the morning.",
        "Tickets can be bought online or at the door.",
        "Children under twelve enter for free.",
        "Guided tours start every hour, on the hour.",
    ],
    [
        "Remember to water the plants on Friday.",
        "The cat eats twice a day, once in the morning and once at night.",
        "Lock the back door before you leave.",
        "Thanks again for looking after the house!",
    ],
]
GAPS = [0.25, 0.4, 0.6, 0.9]  # seconds of silence after each sentence, cycled
SILENCE_DB = -40.0  # below the clip's peak: no speech
FRAME = 0.005  # seconds a frame, for finding where speech starts and ends in a clip


def speech_span(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Where a clip's speech starts and ends, seconds from its start: the first and last 5 ms
    frame within 40 dB of its loudest."""
    n = int(FRAME * rate)
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() + SILENCE_DB)
    return float(loud[0] * FRAME), float((loud[-1] + 1) * FRAME)


def boundary_errors() -> tuple[dict[str, list[float]], float]:
    """Boundary errors (ms) of each kind of timings, and the audio's total seconds."""
    from voicefarm import engines
    from voicefarm.audio import alignment, asr
    from voicefarm.engines.base import Audio, SynthesisRequest
    from voicefarm.settings import Settings

    engine = engines.create("piper", Settings())
    engine.load()
    errors: dict[str, list[float]] = {"aligned": [], "recognizer": [], "estimated": []}
    total = 0.0
    for paragraph in PARAGRAPHS:
        pieces, spans, cursor, rate = [], [], 0.0, 0
        for i, sentence in enumerate(paragraph):
            clip = engine.synthesize(SynthesisRequest(sentence, VOICE, "en-US"))
            rate = clip.sample_rate
            start, end = speech_span(clip.samples, rate)
            spans.append((cursor + start, cursor + end))
            gap = np.zeros(int(GAPS[i % len(GAPS)] * rate), dtype=np.float32)
            pieces += [clip.samples, gap]
            cursor += (len(clip.samples) + len(gap)) / rate
        audio = Audio(np.concatenate(pieces), rate)
        total += audio.duration
        text = " ".join(paragraph)
        words, source = alignment.align(text, "en-US", audio)
        assert source == alignment.ALIGNED, source
        timings = {
            "aligned": words,
            # The recognizer's words matched to the text, before pauses are snapped to the VAD's.
            "recognizer": alignment.match(text, asr.words(audio), audio.duration),
            "estimated": alignment.estimate(text, audio),
        }
        first = 0
        for sentence, (start, end) in zip(paragraph, spans, strict=True):
            last = first + len(sentence.split()) - 1
            for kind, timed in timings.items():
                errors[kind] += [abs(timed[first].start - start) * 1000, abs(timed[last].end - end) * 1000]
            first = last + 1
    return errors, total


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    errors, total = boundary_errors()
    aligned, recognizer, estimated = errors["aligned"], errors["recognizer"], errors["estimated"]
    median = statistics.median(aligned)
    console.print(
        f"word timestamps: {len(PARAGRAPHS)} paragraphs of 4 sentences ({total:.1f} s of Piper audio), "
        f"{len(aligned)} sentence boundaries (each sentence's start and end)"
    )
    console.print(
        f"aligned (tiny.en)  : median {median:5.1f} ms, p90 {p90(aligned):5.1f} ms, max {max(aligned):5.1f} ms   "
        f"target median <= {TARGET_MS:g} ms  {'ok' if median <= TARGET_MS else 'MISSED'}"
    )
    console.print(
        f"recognizer alone   : median {statistics.median(recognizer):5.1f} ms, p90 {p90(recognizer):5.1f} ms, "
        f"max {max(recognizer):5.1f} ms   (tiny.en's word times, no snapping to pauses)"
    )
    console.print(
        f"estimated (VAD)    : median {statistics.median(estimated):5.1f} ms, p90 {p90(estimated):5.1f} ms, "
        f"max {max(estimated):5.1f} ms   (what a language tiny.en cannot hear gets)"
    )


if __name__ == "__main__":
    main()
