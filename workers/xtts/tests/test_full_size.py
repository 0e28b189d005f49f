"""The "real" builder against XTTS v2's released config: a benchmark on it costs what the
trained model costs only if every size is the release's. Built on the meta device, so no
weights are allocated (the full model takes gigabytes and a minute to initialise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchaudio
from tiny_checkpoint import init_model
from TTS.tts.layers.xtts.perceiver_encoder import PerceiverResampler
from TTS.tts.models.xtts import Xtts


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Xtts:
    mel_scale = torchaudio.transforms.MelScale.__init__

    def on_cpu(self: torchaudio.transforms.MelScale, *args: Any, **kwargs: Any) -> None:
        # The speaker encoder's filterbank checks its own values, which meta tensors have not.
        with torch.device("cpu"):
            mel_scale(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, torch.device("meta"):
        patch.setattr(torchaudio.transforms.MelScale, "__init__", on_cpu)
        return init_model(Path(tmp_path_factory.mktemp("xtts-real")), dims="real", max_gen_tokens=400)


def test_gpt_is_the_released_size(model: Xtts) -> None:
    blocks = model.gpt.gpt.h
    assert len(blocks) == 30
    assert model.gpt.gpt.config.n_embd == 1024
    assert model.gpt.gpt.config.n_head == 16
    assert blocks[0].mlp.c_fc.weight.shape == (1024, 4096)  # GPT-2's Conv1D: (in, out)
    assert isinstance(model.gpt.conditioning_perceiver, PerceiverResampler)


def test_vocabularies_are_the_released_ones(model: Xtts) -> None:
    assert model.gpt.text_embedding.num_embeddings == 6681
    assert model.gpt.text_head.out_features == 6681
    assert model.gpt.mel_embedding.num_embeddings == 1026
    assert model.gpt.mel_head.out_features == 1026
    assert (model.gpt.start_audio_token, model.gpt.stop_audio_token) == (1024, 1025)


def test_decoder_is_the_released_one(model: Xtts) -> None:
    decoder = model.hifigan_decoder
    vocoder = decoder.waveform_decoder
    assert [up.stride[0] for up in vocoder.ups] == [8, 8, 2, 2]
    assert vocoder.conv_pre.out_channels == 512
    assert vocoder.cond_layer.in_channels == 512  # the speaker embedding conditions it
    assert decoder.speaker_encoder.proj_dim == 512
    assert decoder.output_sample_rate == 24_000
