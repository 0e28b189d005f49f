"""Build a randomly initialised StyleTTS2 model directory that the `styletts2` package loads as is.

Why: the real weights live on a model hub and a code host this project cannot reach. A model
built from the package's own classes exercises the real loading and inference code; its
sizes are the smallest the package allows (the decoder's 1024- and 512-channel blocks and
JDCNet are fixed in code, so the text encoder and prosody predictor keep hidden_dim 512),
and it speaks noise at the cost of about a second per sentence on a CPU.

Writes every file the engine maps the package's URLs to (voicefarm_styletts2.engine.FILES),
laid out as upstream: Models/LibriTTS/{config.yml, epochs_2nd_00020.pth} and
Utils/{ASR, JDC, PLBERT}/. Configs are the package's own with smaller model_params;
checkpoints are saved in the formats the package's loaders read.

With `full`, every size is the released LibriTTS model's (the package's own configs, unshrunk):
what a benchmark needs to cost what the trained model costs.

Usage: python tiny_model.py OUT_DIR [--frames-per-token N] [--full]
"""

from __future__ import annotations

import argparse
import math
from importlib.resources import files
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
import yaml
from styletts2.models import build_model
from styletts2.utils import recursive_munch
from styletts2.Utils.ASR.models import ASRCNN
from styletts2.Utils.JDC.model import JDCNet
from styletts2.Utils.PLBERT.util import CustomAlbert
from transformers import AlbertConfig
from voicefarm_styletts2.engine import CHECKPOINT, CONFIG, FILES, SAMPLE_RATE, VOICES_DIR

# The LibriTTS model's model_params, shrunk where the code lets a config choose. hidden_dim
# stays 512 (the decoder's asr_res takes 512 channels) and style_dim 128 (as in the released
# model, so every shape the inference path slices is the real one).
MODEL_PARAMS: dict[str, Any] = {
    "dim_in": 8,
    "n_layer": 1,
    "decoder": {"resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]},
    "slm": {"hidden": 8, "nlayers": 1, "initial_channel": 4},
    "diffusion": {"transformer": {"num_layers": 1, "num_heads": 1, "head_features": 16, "multiplier": 1}},
}
PLBERT_PARAMS = {
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "embedding_size": 16,
}
ASR_PARAMS = {"hidden_dim": 16, "token_embedding_dim": 16, "n_layers": 1}
# Only these modules run at inference; the discriminators and the two aligner networks are
# left out of the checkpoint (the aligners load from their own files).
INFERENCE_MODULES = (
    "bert", "bert_encoder", "predictor", "decoder", "text_encoder", "predictor_encoder", "style_encoder", "diffusion",
)  # fmt: skip


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s values, nested dicts merged key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) else value
    return out


def package_config(name: str) -> dict[str, Any]:
    return yaml.safe_load(files("styletts2").joinpath(name).read_text())


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)


def warm_spectral_norm(encoder: torch.nn.Module, steps: int = 30) -> None:
    """Run the power iterations training would have run, so the style encoders' spectral-norm
    vectors estimate each weight's largest singular value. Fresh ones are random, and in eval
    mode a weight divided by their estimate can be huge or flip sign."""
    encoder.train()
    with torch.no_grad():
        for _ in range(steps):
            encoder(torch.randn(1, 1, 80, 96))
    encoder.eval()


def build_model_dir(out_dir: Path, *, frames_per_token: int = 2, full: bool = False) -> Path:
    """Write a loadable random StyleTTS2 model into out_dir and return out_dir: the smallest the
    package allows, or with `full` the released LibriTTS model's sizes.

    Every phoneme token lasts frames_per_token frames (MEL_FRAME_SAMPLES samples each): the
    duration predictor is fixed so output length follows from the text, as a trained one's
    roughly does. 2 frames, 50 ms a token, is an ordinary speaking rate.
    """
    out_dir = Path(out_dir)
    paths = {name: out_dir / relative for name, relative in FILES.items()}
    torch.manual_seed(0)  # the same model every build

    asr_config = package_config("Utils/ASR/config.yml")
    asr_config["model_params"] |= {} if full else ASR_PARAMS
    write_yaml(paths["ASR_CONFIG_URL"], asr_config)
    text_aligner = ASRCNN(**asr_config["model_params"])
    save(paths["ASR_CHECKPOINT_URL"], {"model": text_aligner.state_dict()})

    pitch_extractor = JDCNet(num_class=1, seq_len=192)  # the sizes load_F0_models builds
    save(paths["F0_CHECKPOINT_URL"], {"net": pitch_extractor.state_dict()})

    bert_config = package_config("Utils/PLBERT/config.yml")
    bert_config["model_params"] |= {} if full else PLBERT_PARAMS
    write_yaml(paths["BERT_CONFIG_URL"], bert_config)
    bert = CustomAlbert(AlbertConfig(**bert_config["model_params"]))
    # load_plbert strips "module.encoder." (training wrapped PL-BERT) and deletes the
    # position_ids buffer, which this transformers release no longer saves.
    bert_state = {f"module.encoder.{k}": v for k, v in bert.state_dict().items()}
    bert_state["module.encoder.embeddings.position_ids"] = torch.arange(bert.config.max_position_embeddings)[None]
    save(paths["BERT_CHECKPOINT_URL"], {"net": bert_state})

    config = package_config("Configs/config_libritts.yml")
    config["model_params"] = merge(config["model_params"], {} if full else MODEL_PARAMS)
    write_yaml(out_dir / CONFIG, config)
    model = build_model(recursive_munch(config["model_params"]), text_aligner, pitch_extractor, bert)
    warm_spectral_norm(model.style_encoder)
    warm_spectral_norm(model.predictor_encoder)
    with torch.no_grad():
        # sum(sigmoid(logits)) over max_dur bins is a token's duration in frames.
        proj = model.predictor.duration_proj.linear_layer
        proj.weight.zero_()
        proj.bias.fill_(math.log(frames_per_token / (proj.out_features - frames_per_token)))
    # "module." as in the released checkpoint, saved from DataParallel-wrapped modules.
    net = {key: {f"module.{k}": v for k, v in model[key].state_dict().items()} for key in INFERENCE_MODULES}
    save(out_dir / CHECKPOINT, {"net": net})
    write_default_voice(out_dir / VOICES_DIR / "default.wav")
    return out_dir


def write_default_voice(path: Path, seconds: float = 4.0) -> None:
    """A built-in voice's reference sample: harmonics under a syllable-rate envelope (random
    weights make noise whatever the reference; this only has to be a plausible input)."""
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    harmonics = sum(torch.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 10))
    signal = 0.2 * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t) ** 2) * harmonics
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal.numpy(), SAMPLE_RATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--frames-per-token", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the released LibriTTS model's sizes")
    ns = parser.parse_args()
    print(build_model_dir(ns.out_dir, frames_per_token=ns.frames_per_token, full=ns.full))


if __name__ == "__main__":
    main()
