"""Continuous batching for XTTS's GPT: the texts of many jobs decoded together, a step at a time.

coqui's `inference_stream` runs transformers' `generate` on one text, so a worker decodes one
sequence per step and reads all of the GPT's weights to make one code. Here every active
sequence makes its next code in the same forward pass. A sequence joins between two steps (its
prompt runs alone, then its KV cache is left-padded into the batch's) and leaves at the step it
stops, so nobody waits for the batch's longest text.

What a sequence gets alone it gets in a batch: its own conditioning prefix and text, its own
sampling settings, stop and seed (a `torch.Generator` of its own), and the logits processors that
`generate` would apply (transformers' own classes, in generate's order). Nothing is kept on the
shared model: coqui's `compute_embeddings` stores the prompt on it, which is why one coqui model
shared by threads mixes their voices up. Positions need no mask arithmetic: XTTS's GPT-2 has no
position embedding of its own (its `wpe` is null), and each code's position in its own sequence
is added to its embedding here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

if TYPE_CHECKING:
    from TTS.tts.layers.xtts.gpt import GPT


@dataclass(frozen=True)
class Sampling:
    """How one sequence chooses its codes; the defaults are XTTS v2's config."""

    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 10.0
    do_sample: bool = True  # False: the likeliest code at every step
    seed: int | None = None  # None: drawn from torch's global generator
    min_codes: int = 0  # the stop code cannot come before this many codes
    max_codes: int | None = None  # None: the model's max_gen_mel_tokens


@dataclass(eq=False)
class Sequence:
    """One text's decoding: its prompt, its settings, and the codes and GPT latents made so far
    (a latent per code, the stop code's included, as `inference_stream` feeds the vocoder)."""

    prefix: torch.Tensor  # (1, prompt, dim): conditioning latents, then the text's embeddings
    sampling: Sampling
    max_codes: int
    ids: torch.Tensor  # (1, prompt + 1 + codes): what generate's logits processors look at
    processors: LogitsProcessorList
    generator: torch.Generator | None
    codes: list[int] = field(default_factory=list)
    latents: list[torch.Tensor] = field(default_factory=list)
    done: bool = False


class Decoder:
    """The GPT of one loaded XTTS model, decoding any number of sequences together.

    Not thread-safe: one thread owns it (voicefarm_xtts.batcher), and calls `join` and `step`.
    """

    def __init__(self, gpt: GPT) -> None:
        self.gpt = gpt
        self.active: list[Sequence] = []
        self._cache: DynamicCache | None = None  # (batch, heads, time, head_dim) per layer
        self._mask: torch.Tensor | None = None  # (batch, time): 0 where a row is left-padded

    @property
    def device(self) -> torch.device:
        return self.gpt.mel_head.weight.device

    def sequence(self, cond_latent: torch.Tensor, text_tokens: torch.Tensor, sampling: Sampling) -> Sequence:
        """A sequence for these conditioning latents (1, 32, dim) and text tokens (1, n)."""
        gpt = self.gpt
        if text_tokens.shape[-1] >= gpt.max_text_tokens:
            raise ValueError(
                f"XTTS reads at most {gpt.max_text_tokens} text tokens at once, not {text_tokens.shape[-1]}"
            )
        text = F.pad(F.pad(text_tokens, (0, 1), value=gpt.stop_text_token), (1, 0), value=gpt.start_text_token)
        emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
        prefix = torch.cat([cond_latent.to(self.device), emb], dim=1)
        # generate's input ids: a placeholder per prompt position, then the start code.
        ids = torch.ones((1, prefix.shape[1] + 1), dtype=torch.long, device=self.device)
        ids[:, -1] = gpt.start_audio_token
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(sampling.seed)
        return Sequence(
            prefix=prefix,
            sampling=sampling,
            max_codes=sampling.max_codes or gpt.max_gen_mel_tokens,
            ids=ids,
            processors=self._processors(sampling, ids.shape[1]),
            generator=generator,
        )

    def _processors(self, s: Sampling, prompt: int) -> LogitsProcessorList:
        """generate's logits processors for these settings, in generate's order."""
        out = LogitsProcessorList()
        if s.repetition_penalty != 1.0:
            out.append(RepetitionPenaltyLogitsProcessor(penalty=s.repetition_penalty))
        if s.min_codes > 0:
            out.append(MinNewTokensLengthLogitsProcessor(prompt, s.min_codes, self.gpt.stop_audio_token))
        if s.do_sample:
            if s.temperature != 1.0:
                out.append(TemperatureLogitsWarper(s.temperature))
            if s.top_k:
                out.append(TopKLogitsWarper(top_k=s.top_k))
            if s.top_p < 1.0:
                out.append(TopPLogitsWarper(top_p=s.top_p))
        return out

    @torch.inference_mode()
    def join(self, seq: Sequence) -> None:
        """Run the sequence's prompt, choose its first code, and add it to the batch."""
        gpt = self.gpt
        start = gpt.mel_embedding(seq.ids[:, -1:]) + gpt.mel_pos_embedding.emb(torch.zeros_like(seq.ids[:, -1:]))
        emb = torch.cat([seq.prefix.to(start.dtype), start], dim=1)
        mask = torch.ones(emb.shape[:2], dtype=torch.long, device=self.device)
        out = gpt.gpt(inputs_embeds=emb, past_key_values=DynamicCache(), attention_mask=mask, use_cache=True)
        self._choose([seq], out.last_hidden_state)
        self._merge(out.past_key_values, mask)
        self.active.append(seq)
        self._drop_finished()

    @torch.inference_mode()
    def step(self) -> None:
        """One code for every active sequence; a sequence that stops leaves the batch."""
        if not self.active:
            return
        gpt = self.gpt
        last = torch.tensor([[s.codes[-1]] for s in self.active], device=self.device)
        positions = torch.tensor([[len(s.codes)] for s in self.active], device=self.device)
        emb = gpt.mel_embedding(last) + gpt.mel_pos_embedding.emb(positions)
        assert self._mask is not None
        mask = F.pad(self._mask, (0, 1), value=1)
        out = gpt.gpt(inputs_embeds=emb, past_key_values=self._cache, attention_mask=mask, use_cache=True)
        self._cache, self._mask = out.past_key_values, mask
        self._choose(self.active, out.last_hidden_state)
        self._drop_finished()

    def _choose(self, seqs: list[Sequence], hidden: torch.Tensor) -> None:
        """Each sequence's next code from the last position of its row of `hidden`."""
        # As coqui's GPT2InferenceModel: the logits from every position's state, the latent from
        # the last one's (the same arithmetic, so a sequence alone matches coqui's to the bit).
        logits = self.gpt.mel_head(self.gpt.final_norm(hidden))[:, -1, :].float()
        latents = self.gpt.final_norm(hidden[:, -1])
        for i, seq in enumerate(seqs):
            scores = seq.processors(seq.ids, logits[i : i + 1])
            if seq.sampling.do_sample:
                code = torch.multinomial(F.softmax(scores, dim=-1), 1, generator=seq.generator)
            else:
                code = scores.argmax(dim=-1, keepdim=True)
            seq.ids = torch.cat([seq.ids, code], dim=1)
            seq.codes.append(int(code))
            seq.latents.append(latents[i])
            seq.done = seq.codes[-1] == self.gpt.stop_audio_token or len(seq.codes) >= seq.max_codes

    def _merge(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Add one sequence's cache to the batch's, left-padding whichever is shorter."""
        if self._cache is None or self._mask is None:
            self._cache, self._mask = cache, mask
            return
        length = max(mask.shape[1], self._mask.shape[1])

        def pad(t: torch.Tensor, axis_from_end: int) -> torch.Tensor:
            short = length - t.shape[-axis_from_end]
            return F.pad(t, (0, 0) * (axis_from_end - 1) + (short, 0)) if short else t

        layers = [
            (torch.cat([pad(k0, 2), pad(k1, 2)]), torch.cat([pad(v0, 2), pad(v1, 2)]))
            for (k0, v0), (k1, v1) in zip(self._cache.to_legacy_cache(), cache.to_legacy_cache(), strict=True)
        ]
        self._cache = DynamicCache.from_legacy_cache(tuple(layers))
        self._mask = torch.cat([pad(self._mask, 1), pad(mask, 1)])

    def reset(self) -> None:
        """Forget every sequence and the batch's cache (after a failure that left them unknown)."""
        self.active, self._cache, self._mask = [], None, None

    def leave(self, seqs: set[Sequence] | list[Sequence]) -> None:
        """Take these sequences out of the batch before they stop (their callers left)."""
        self._retain([s for s in self.active if s not in seqs])

    def _drop_finished(self) -> None:
        self._retain([s for s in self.active if not s.done])

    def _retain(self, seqs: list[Sequence]) -> None:
        """Keep only these rows of the batch, and drop the padding that no row needs any more."""
        if len(seqs) == len(self.active):
            return
        keep = [i for i, s in enumerate(self.active) if s in seqs]
        self.active = seqs
        if not keep:
            self._cache = self._mask = None
            return
        assert self._cache is not None and self._mask is not None
        rows = torch.tensor(keep, device=self.device)
        mask = self._mask[rows]
        unused = int(mask.sum(dim=0).nonzero()[0])  # leading columns that are padding in every row
        layers = tuple((k[rows, :, unused:], v[rows, :, unused:]) for k, v in self._cache.to_legacy_cache())
        self._cache, self._mask = DynamicCache.from_legacy_cache(layers), mask[:, unused:]
