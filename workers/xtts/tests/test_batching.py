"""Continuous batching of XTTS's GPT (voicefarm_xtts.batching and .batcher) on the tiny checkpoint:
a sequence in a batch makes the codes it makes alone, and alone it makes coqui's own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from voicefarm_xtts.batcher import Batcher
from voicefarm_xtts.batching import Decoder, Sampling, Sequence
from voicefarm_xtts.engine import XttsEngine

from voicefarm.engines.base import SynthesisRequest

if TYPE_CHECKING:
    from TTS.tts.layers.xtts.gpt import GPT

# Eight texts of mixed lengths, from three words to thirty.
TEXTS = [
    "hello there.",
    "the quick brown fox jumps over the lazy dog.",
    "one two three",
    "she sells sea shells by the sea shore; it is a truth universally acknowledged, said she, today.",
    "how are you today?",
    "first second third.",
    "hello, world! how are you?",
    "it is a truth universally acknowledged.",
]


@pytest.fixture
def engine(checkpoint: Path) -> XttsEngine:
    engine = XttsEngine(checkpoint, device="cpu")
    engine.load()
    return engine


@pytest.fixture
def latents(engine: XttsEngine, reference: tuple[np.ndarray, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return engine._latents(request(reference, "a voice"))


def request(reference: tuple[np.ndarray, int], text: str) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice="cloned", language="en", reference=reference, reference_key="voice-a:1")


def tokens(engine: XttsEngine, text: str) -> torch.Tensor:
    return torch.IntTensor(engine._loaded().tokenizer.encode(text, lang="en")).unsqueeze(0)


def alone(decoder: Decoder, seq: Sequence) -> Sequence:
    decoder.join(seq)
    while decoder.active:
        decoder.step()
    return seq


def solo(engine: XttsEngine, cond: torch.Tensor, text: str, sampling: Sampling) -> Sequence:
    """The text decoded alone, in a decoder of its own."""
    decoder = Decoder(engine._loaded().gpt)
    return alone(decoder, decoder.sequence(cond, tokens(engine, text), sampling))


def paced(engine: XttsEngine, kind: type[Paced]) -> tuple[Paced, Batcher]:
    """A batcher of two, over a decoder whose steps wait for the test's permits."""
    decoder = kind(engine._loaded().gpt)
    return decoder, Batcher(decoder, size=2)


def greedy(i: int) -> Sampling:
    return Sampling(do_sample=False, max_codes=6 + i)  # each text stops at its own length


def seeded(i: int) -> Sampling:
    return Sampling(seed=100 + i, max_codes=6 + i)


def test_a_sequence_alone_is_coquis_own_generate(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """Same seed, same prompt: coqui's streaming generate and the decoder make the same codes
    and the same latents, to the bit."""
    gpt, cond = engine._loaded().gpt, latents[0]
    text = tokens(engine, TEXTS[1])
    torch.manual_seed(7)
    generator = gpt.get_generator(
        fake_inputs=gpt.compute_embeddings(cond, text),
        **{"top_k": 50, "top_p": 0.85, "temperature": 0.75, "repetition_penalty": 10.0},
        do_sample=True,
        num_beams=1,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    coqui = [(int(code), latent) for code, latent in generator]
    decoder = Decoder(gpt)
    ours = alone(decoder, decoder.sequence(cond, text, Sampling(seed=7)))
    assert len(coqui) == gpt.max_gen_mel_tokens
    assert ours.codes == [code for code, _ in coqui]
    assert all(torch.equal(latent[0], mine) for (_, latent), mine in zip(coqui, ours.latents, strict=True))


@pytest.mark.parametrize("sampling", [greedy, seeded], ids=["greedy", "seeded sampling"])
def test_codes_in_a_batch_of_eight_equal_each_alone(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor], sampling: object
) -> None:
    """Eight texts of mixed lengths, joining one step apart and stopping at their own lengths,
    make the codes each makes alone. Their latents match to float rounding: a padded batch's
    matrix products round differently in the last bit."""
    assert callable(sampling)
    gpt, cond = engine._loaded().gpt, latents[0]
    each = [solo(engine, cond, t, sampling(i)) for i, t in enumerate(TEXTS)]
    decoder = Decoder(gpt)
    batch = [decoder.sequence(cond, tokens(engine, t), sampling(i)) for i, t in enumerate(TEXTS)]
    widest = 0
    for seq in batch:
        decoder.join(seq)
        decoder.step()
        widest = max(widest, len(decoder.active))
    while decoder.active:
        decoder.step()
    assert widest >= 4  # the batch really held several texts at once
    assert [s.codes for s in batch] == [s.codes for s in each]
    assert [len(s.codes) for s in batch] == [6 + i for i in range(8)]
    for ours, theirs in zip(batch, each, strict=True):
        torch.testing.assert_close(torch.stack(ours.latents), torch.stack(theirs.latents), rtol=0, atol=1e-5)


def test_a_sequence_stops_at_its_stop_code_and_the_others_go_on(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """The tiny checkpoint never chooses its stop code; here it always does, once allowed to."""
    gpt, cond = engine._loaded().gpt, latents[0]
    with torch.no_grad():
        gpt.mel_head.bias[gpt.stop_audio_token] = 1e4
    decoder = Decoder(gpt)
    stops = decoder.sequence(cond, tokens(engine, TEXTS[0]), Sampling(do_sample=False, min_codes=3))
    runs = decoder.sequence(cond, tokens(engine, TEXTS[1]), Sampling(do_sample=False, min_codes=9))
    decoder.join(stops)
    decoder.join(runs)
    while decoder.active:
        decoder.step()
    assert stops.codes[-1] == runs.codes[-1] == gpt.stop_audio_token
    assert (len(stops.codes), len(runs.codes)) == (4, 10)
    assert gpt.stop_audio_token not in stops.codes[:-1] + runs.codes[:-1]


def drain(codes: Iterator[tuple[int, torch.Tensor]], into: dict[int, object], key: int) -> None:
    try:
        into[key] = [code for code, _ in codes]
    except Exception as e:
        into[key] = e


def test_the_batcher_fails_only_the_sequence_whose_prompt_fails(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor]
) -> None:
    gpt, cond = engine._loaded().gpt, latents[0]
    batcher = Batcher(Decoder(gpt), size=4)
    seqs = [batcher.decoder.sequence(cond, tokens(engine, t), greedy(i)) for i, t in enumerate(TEXTS[:4])]
    seqs[2].prefix = seqs[2].prefix[..., :-1]  # a prompt of the wrong width: the GPT refuses it
    results: dict[int, object] = {}
    threads = [threading.Thread(target=drain, args=(batcher.codes(s), results, i)) for i, s in enumerate(seqs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert isinstance(results[2], RuntimeError)
    each = [solo(engine, cond, t, greedy(i)) for i, t in enumerate(TEXTS[:4])]
    assert [results[i] for i in (0, 1, 3)] == [each[i].codes for i in (0, 1, 3)]


class Paced(Decoder):
    """A decoder whose steps wait for the test's permits, so the test knows where the batch is."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__(gpt)
        self.permits = threading.Semaphore(0)

    def step(self) -> None:
        self.permits.acquire()
        super().step()


def test_a_reader_that_stops_reading_takes_its_sequence_out(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor]
) -> None:
    cond = latents[0]
    decoder, batcher = paced(engine, Paced)
    quits = decoder.sequence(cond, tokens(engine, TEXTS[0]), Sampling(do_sample=False))
    stays = decoder.sequence(cond, tokens(engine, TEXTS[1]), greedy(7))
    early = batcher.codes(quits)
    first, _ = next(early)  # from its prompt; its first step now waits for a permit
    early.close()
    results: dict[int, object] = {}
    thread = threading.Thread(target=drain, args=(batcher.codes(stays), results, 0))
    thread.start()
    decoder.permits.release(100)
    thread.join(timeout=120)
    assert results[0] == solo(engine, cond, TEXTS[1], greedy(7)).codes
    # The step it was waiting on when it left, and no other.
    assert quits.codes[0] == first and len(quits.codes) == 2 and not quits.done
    assert decoder.active == []


class Breaking(Paced):
    """A decoder that fails outside any step: the device is gone when a sequence leaves."""

    def leave(self, seqs: set[Sequence] | list[Sequence]) -> None:
        raise RuntimeError("the device is gone")


def test_a_batcher_that_breaks_fails_its_callers_instead_of_leaving_them_waiting(
    engine: XttsEngine, latents: tuple[torch.Tensor, torch.Tensor]
) -> None:
    cond = latents[0]
    decoder, batcher = paced(engine, Breaking)
    quits = batcher.codes(decoder.sequence(cond, tokens(engine, TEXTS[0]), greedy(7)))
    next(quits)  # joined; its first step waits for a permit
    decoder.permits.release()
    waits = batcher.codes(decoder.sequence(cond, tokens(engine, TEXTS[1]), greedy(7)))
    next(waits)  # joined after that step; both are in the batch now
    quits.close()  # taking it out breaks the decoder
    decoder.permits.release(100)
    with pytest.raises(RuntimeError, match="the device is gone"):
        list(waits)
    # The next caller gets a fresh thread and a clean batch.
    after = decoder.sequence(cond, tokens(engine, TEXTS[2]), greedy(2))
    assert [code for code, _ in batcher.codes(after)] == solo(engine, cond, TEXTS[2], greedy(2)).codes


def test_the_batched_engine_speaks_as_coquis_stream_alone(
    checkpoint: Path, engine: XttsEngine, reference: tuple[np.ndarray, int]
) -> None:
    """batch_size 4, one request: the same samples, chunk for chunk, as coqui's inference_stream."""
    batched = XttsEngine(checkpoint, device="cpu", batch_size=4)
    batched.load()
    for text in ("Hello there, how are you today?", "One two three."):
        torch.manual_seed(3)
        theirs = [piece.samples for piece in engine.stream(request(reference, text))]
        torch.manual_seed(3)
        ours = [piece.samples for piece in batched.stream(request(reference, text))]
        assert [len(p) for p in ours] == [len(p) for p in theirs]
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_concurrent_requests_each_get_their_own_speech(checkpoint: Path, reference: tuple[np.ndarray, int]) -> None:
    """Six threads on one batched engine, each hearing what it would alone. top_k 1 makes the
    codes the likeliest ones, so the samples can be compared; they match to float rounding."""
    batched = XttsEngine(checkpoint, device="cpu", batch_size=4)
    batched.load()
    one = XttsEngine(checkpoint, device="cpu")
    one.load()
    # What a worker reads to run that many jobs at once in one process (voicefarm.cli.serve).
    assert (batched.capabilities().concurrency, one.capabilities().concurrency) == (4, 1)

    def likeliest(text: str) -> SynthesisRequest:
        return SynthesisRequest(
            text=text,
            voice="cloned",
            language="en",
            reference=reference,
            reference_key="voice-a:1",
            options={"top_k": 1},
        )

    heard: dict[int, np.ndarray] = {}

    def speak(i: int) -> None:
        heard[i] = batched.synthesize(likeliest(TEXTS[i])).samples

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(heard) == list(range(6))
    for i in range(6):
        np.testing.assert_allclose(heard[i], one.synthesize(likeliest(TEXTS[i])).samples, rtol=0, atol=1e-4)
