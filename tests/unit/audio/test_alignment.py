"""Word timestamps: every input word gets exactly one entry, in order, with non-decreasing times
inside the audio, whatever the recognizer heard; and real speech is timed where it is spoken."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicefarm.audio import alignment
from voicefarm.engines.base import Audio, SynthesisRequest, Word
from voicefarm.settings import Settings

WORD = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x24F, exclude_categories=["Cc", "Zs"]), min_size=1
)
SECONDS = st.floats(-2.0, 30.0, allow_nan=False)


def assert_invariant(words: list[Word], text: str, duration: float) -> None:
    assert [w.text for w in words] == text.split()
    last = 0.0
    for w in words:
        assert 0.0 <= last <= w.start <= w.end <= duration, (w, last, duration)
        last = w.end


@st.composite
def heard_against(draw: st.DrawFn) -> tuple[str, list[Word], float]:
    """A text, and what a recognizer might make of it: some of its words, others, out of
    order, overlapping, outside the audio."""
    ours = draw(st.lists(WORD, min_size=1, max_size=30))
    pool = st.one_of(st.sampled_from(ours), WORD)
    heard = [Word(draw(pool), draw(SECONDS), draw(SECONDS)) for _ in range(draw(st.integers(0, 40)))]
    return " ".join(ours), heard, draw(st.floats(0.0, 25.0, allow_nan=False))


@given(heard_against())
@settings(max_examples=300, deadline=None)
def test_any_recognition_gives_every_word_one_entry_in_order_inside_the_audio(
    case: tuple[str, list[Word], float],
) -> None:
    text, heard, duration = case
    assert_invariant(alignment.match(text, heard, duration), text, duration)


@given(
    st.lists(WORD, min_size=1, max_size=30),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=12),
)
@settings(max_examples=60, deadline=None)
def test_estimates_keep_the_invariant_for_any_speech_layout(words: list[str], layout: list[tuple[float, bool]]) -> None:
    rate = 16000
    rng = np.random.default_rng(0)
    # Stretches of loud noise (speech to the VAD, often) and of silence, in any order.
    samples = np.concatenate(
        [
            rng.uniform(-0.5, 0.5, int(seconds * rate)) if loud else np.zeros(int(seconds * rate))
            for seconds, loud in layout
        ]
    ).astype(np.float32)
    audio = Audio(samples, rate)
    text = " ".join(words)
    assert_invariant(alignment.estimate(text, audio), text, audio.duration)


@given(heard_against(), st.lists(st.floats(0.0, 25.0, allow_nan=False), min_size=2, max_size=20))
@settings(max_examples=200, deadline=None)
def test_snapping_to_pauses_keeps_the_invariant(case: tuple[str, list[Word], float], cuts: list[float]) -> None:
    text, heard, duration = case
    edges = sorted(min(c, duration) for c in cuts)
    regions = list(itertools.pairwise(edges))[::2]  # every other stretch is speech
    words = alignment.snap(alignment.match(text, heard, duration), regions, duration)
    assert_invariant(words, text, duration)


def test_a_pause_moves_the_word_boundary_nearest_it_onto_its_edges() -> None:
    heard = [Word("Stop.", 0.1, 0.9), Word("Go", 1.0, 1.3), Word("on.", 1.3, 1.8)]
    regions = [(0.05, 0.62), (1.12, 1.75)]
    assert alignment.snap(alignment.match("Stop. Go on.", heard, 2.0), regions, 2.0) == [
        Word("Stop.", 0.05, 0.62),  # speech starts and stops earlier than the recognizer said
        Word("Go", 1.12, 1.3),
        Word("on.", 1.3, 1.75),
    ]


def test_heard_words_take_their_times_and_missed_ones_share_the_gap() -> None:
    heard = [Word("Hello,", 0.1, 0.5), Word("wonderful", 0.6, 1.2), Word("world", 2.0, 2.4)]
    words = alignment.match("Hello, big wonderful new world!", heard, 3.0)
    assert words == [
        Word("Hello,", 0.1, 0.5),
        Word("big", 0.5, 0.6),  # not heard: between its neighbours
        Word("wonderful", 0.6, 1.2),
        Word("new", 1.2, 2.0),
        Word("world!", 2.0, 2.4),  # punctuation and case do not stop a match
    ]


def test_a_run_heard_otherwise_shares_the_heard_span_by_characters() -> None:
    # Two words heard as three others (a number read out, a word misheard): the run's span is
    # shared by their lengths, 2 to 7 characters.
    heard = [Word("It", 0.0, 0.2), Word("forty", 0.2, 0.4), Word("two", 0.4, 0.5), Word("bucks", 0.5, 1.1)]
    words = alignment.match("It 42 dollars", heard, 2.0)
    assert words == [Word("It", 0.0, 0.2), Word("42", 0.2, 0.4), Word("dollars", 0.4, 1.1)]


def test_nothing_heard_spreads_the_words_over_the_audio() -> None:
    words = alignment.match("one two three", [], 3.0)
    assert [w.text for w in words] == ["one", "two", "three"]
    assert words[0].start == 0.0 and words[-1].end == 3.0


def test_estimates_lay_words_on_speech_not_on_silence() -> None:
    rate = 16000
    speech = np.random.default_rng(1).uniform(-0.5, 0.5, rate).astype(np.float32)
    silence = np.zeros(rate, dtype=np.float32)
    audio = Audio(np.concatenate([silence, speech, silence, speech, silence]), rate)
    regions = alignment.speech_regions(audio)
    assert len(regions) == 2
    words = alignment.estimate("aaaa bbbb", audio)
    # Equal lengths, equal speech: each word has one burst.
    for word, (start, end) in zip(words, regions, strict=True):
        assert word.start == pytest.approx(start, abs=0.001) and word.end == pytest.approx(end, abs=0.001)


@cache
def piper_speech(text: str) -> Audio:
    from voicefarm import engines

    engine = engines.create("piper", Settings())
    engine.load()
    return engine.synthesize(SynthesisRequest(text, "en_US-joe-medium", "en-US"))


TEXT = "The farm speaks first. Then, after a pause, it times every word."


def test_english_speech_is_aligned_by_the_recognizer() -> None:
    audio = piper_speech(TEXT)
    words, source = alignment.align(TEXT, "en-US", audio)
    assert source == alignment.ALIGNED
    assert_invariant(words, TEXT, audio.duration)
    # "Then," starts after the sentence break, where the first sentence's speech has stopped.
    regions = alignment.speech_regions(Audio(audio.samples, audio.sample_rate))
    first_end = next(end for start, end in regions if end > words[3].end - 0.2)
    assert words[4].start >= first_end - 0.15
    assert words[-1].end > audio.duration - 0.6


def test_a_language_the_recognizer_cannot_hear_is_estimated_from_the_speech() -> None:
    audio = piper_speech(TEXT)
    words, source = alignment.align(TEXT, "de-DE", audio)
    assert source == alignment.ESTIMATED
    assert_invariant(words, TEXT, audio.duration)
    regions = alignment.speech_regions(audio)
    assert words[0].start == pytest.approx(regions[0][0], abs=0.001)
    assert words[-1].end == pytest.approx(regions[-1][1], abs=0.001)
