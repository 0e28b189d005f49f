"""Splitting documents into segments: sentence packing, paragraph pauses, Markdown and SSML."""

from __future__ import annotations

import pytest

from voicefarm.errors import InvalidRequest
from voicefarm.jobs.segments import PARAGRAPH_PAUSE, SENTENCE_PAUSE, Piece, canonical, is_document, split

SENTENCE = "The farm speaks this sentence of forty-nine chars."  # 50 with its stop


def test_sentences_are_packed_up_to_the_limit_and_never_cut() -> None:
    text = " ".join([SENTENCE] * 5)
    pieces = split(text, 120)
    assert [p.text for p in pieces] == [f"{SENTENCE} {SENTENCE}", f"{SENTENCE} {SENTENCE}", SENTENCE]
    assert all(len(p.text) <= 120 for p in pieces)
    assert [p.pause for p in pieces] == [SENTENCE_PAUSE, SENTENCE_PAUSE, 0.0]


def test_a_sentence_longer_than_the_limit_is_wrapped_at_spaces() -> None:
    long = "word " * 60 + "end."
    pieces = split(long, 100)
    assert all(len(p.text) <= 100 for p in pieces)
    assert " ".join(p.text for p in pieces) == long.strip()


def test_blank_lines_and_headings_are_paragraph_breaks() -> None:
    text = f"# Chapter one\n{SENTENCE}\nIt goes on.\n\n{SENTENCE}\n## Two ##\nThe end."
    assert split(text, 1000) == [
        Piece("Chapter one", PARAGRAPH_PAUSE),
        Piece(f"{SENTENCE} It goes on.", PARAGRAPH_PAUSE),
        Piece(SENTENCE, PARAGRAPH_PAUSE),
        Piece("Two", PARAGRAPH_PAUSE),
        Piece("The end.", 0.0),
    ]


def test_a_segment_never_spans_a_paragraph() -> None:
    pieces = split("One.\n\nTwo.", 1000)
    assert [p.text for p in pieces] == ["One.", "Two."]


def test_ssml_subset() -> None:
    text = (
        '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis">'
        "<p><s>First sentence.</s><s>Second one</s></p>"
        '<p>Third.<break time="1500ms"/>Fourth.<break time="2s"/></p>Tail.</speak>'
    )
    assert split(text, 1000) == [
        Piece("First sentence. Second one", PARAGRAPH_PAUSE),
        Piece("Third.", 1.5),
        Piece("Fourth.", 2.0),
        Piece("Tail.", 0.0),
    ]


@pytest.mark.parametrize(
    ("ssml", "message"),
    [
        ("<speak>Hi <emphasis>there</emphasis>.</speak>", "SSML element <emphasis> is not supported"),
        ('<speak><prosody rate="slow">Hi.</prosody></speak>', "SSML element <prosody> is not supported"),
        ("<speak>Hi", "SSML is not well-formed XML"),
        ('<speak>Hi.<break time="soon"/></speak>', 'SSML <break time="soon"> must be a duration'),
        ('<speak>Hi.<break time="60s"/></speak>', "longer than 10 s"),
        ('<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>', "may not contain declarations"),
        ("<speak><p> </p></speak>", "nothing to say"),
    ],
)
def test_ssml_outside_the_subset_is_refused_by_name(ssml: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        split(ssml, 1000)


def test_what_is_a_document() -> None:
    assert not is_document("short text", 1000)
    assert is_document("x" * 1001, 1000)
    assert is_document("<speak>Hi.</speak>", 1000)


def test_the_document_key_changes_with_a_sentence_or_a_pause() -> None:
    base = canonical(split("One.\n\nTwo.", 1000))
    assert canonical(split("One.\n\nTwo.", 1000)) == base
    assert canonical(split("One.\n\nThree.", 1000)) != base
    assert canonical(split("One. Two.", 1000)) != base
