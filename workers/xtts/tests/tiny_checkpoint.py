"""Build a randomly initialised XTTS v2 checkpoint directory that coqui-tts loads as is.

Why: the real weights live on a model hub this project cannot reach. A checkpoint built
from coqui's own classes exercises the real loading and inference code: "tiny" keeps CPU
tests to seconds, "real" has XTTS v2's true dimensions for benchmarks (noise comes out,
but it costs what speech would).

Writes what `Xtts.load_checkpoint` needs and nothing more: config.json, model.pth
({"model": state_dict}) and vocab.json. speakers_xtts.pth is optional to coqui (only
built-in speakers use it) and the DVAE and mel-norm files are training-only.

Usage: python tiny_checkpoint.py OUT_DIR [--dims tiny|mid|real] [--max-gen-tokens N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
from TTS.tts.models.xtts import Xtts

Dims = Literal["tiny", "mid", "real"]

# The tokens VoiceBpeTokenizer and Xtts look up by name; [STOP] must be id 0, as in the
# real vocabulary (XTTS's GPT pads text with the stop token).
SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]", "[START]"]
LANGUAGE_TOKENS = [f"[{lang}]" for lang in XttsConfig().languages]  # zh is "[zh-cn]"

# Lowercase, as the tokenizer sees text after coqui's cleaners; zh/ja/ko arrive romanised.
CORPUS = """
the quick brown fox jumps over the lazy dog. hello, world! how are you today?
she sells sea shells by the sea shore; it is a truth universally acknowledged.
one two three four five six seven eight nine ten, first second third.
el rápido zorro marrón salta sobre el perro perezoso. ¿cómo estás? ¡hola!
le renard brun rapide saute par-dessus le chien paresseux. où est la gare ?
der schnelle braune fuchs springt über den faulen hund. grüße aus köln.
la volpe marrone veloce salta sopra il cane pigro. buongiorno a tutti.
a rápida raposa marrom pula sobre o cão preguiçoso. não, obrigação, irmã.
szybki brązowy lis przeskakuje nad leniwym psem. zażółć gęślą jaźń.
hızlı kahverengi tilki tembel köpeğin üzerinden atlar. çok güzel, iğne, şeker.
быстрая коричневая лиса прыгает через ленивую собаку. привет, мир! ёж, щука, съел.
de snelle bruine vos springt over de luie hond. goedemorgen.
rychlá hnědá liška skáče přes líného psa. příliš žluťoučký kůň úpěl ďábelské ódy.
الثعلب البني السريع يقفز فوق الكلب الكسول. مرحبا بالعالم.
ni3 hao3 shi4 jie4. wo3 ai4 ni3. zhong1 guo2 ren2.
a gyors barna róka átugrik a lusta kutyán. árvíztűrő tükörfúrógép.
annyeonghaseyo. gamsahamnida. hangugeo.
konnichiwa sekai. arigatou gozaimasu. nihongo desu.
तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है। नमस्ते दुनिया।
"""

# GPT sizes; everything else (HiFi-GAN decoder, speaker encoder, perceiver) is fixed by
# coqui's classes. "real" is XTTS v2's released config.
GPT_DIMS: dict[Dims, dict[str, int]] = {
    "tiny": {"gpt_layers": 1, "gpt_n_model_channels": 64, "gpt_n_heads": 2, "decoder_input_dim": 64},
    # Batching benchmarks on the CPU: steps cost enough to batch, and a run takes minutes.
    "mid": {"gpt_layers": 8, "gpt_n_model_channels": 512, "gpt_n_heads": 8, "decoder_input_dim": 512},
    "real": {"gpt_layers": 30, "gpt_n_model_channels": 1024, "gpt_n_heads": 16, "decoder_input_dim": 1024},
}
# GPT audio vocabulary of XTTS v2: 1024 DVAE codes, then the start and stop codes.
NUM_AUDIO_TOKENS = 1026
# Text vocabulary: the small BPE trained here, or padded to the released vocabulary's size so
# that the text embedding and head have their real shapes.
TEXT_TOKENS: dict[Dims, int | None] = {"tiny": None, "mid": None, "real": 6681}


def train_vocab(path: Path, vocab_size: int = 400, pad_to: int | None = None) -> None:
    """Train a small BPE with the special and language tokens XTTS's tokenizer expects, padded
    with unused tokens to `pad_to` ids when given."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + LANGUAGE_TOKENS,
        initial_alphabet=sorted(set(CORPUS.replace("\n", "").replace(" ", ""))),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.strip().splitlines(), trainer=trainer)
    if pad_to is not None:
        tokenizer.add_tokens([f"[unused{n}]" for n in range(pad_to - tokenizer.get_vocab_size())])
    tokenizer.save(str(path))


def make_config(dims: Dims, max_gen_tokens: int) -> XttsConfig:
    """XTTS v2's config with the chosen GPT size and a bounded generation length."""
    args = XttsArgs(
        **GPT_DIMS[dims],
        # GPT.generate stops after gpt_max_audio_tokens - 3 codes; random weights never
        # choose the stop token, so this bound is what ends each piece.
        gpt_max_audio_tokens=max_gen_tokens + 3,
        gpt_max_text_tokens=402,
        gpt_max_prompt_tokens=70,
        gpt_num_audio_tokens=NUM_AUDIO_TOKENS,
        gpt_start_audio_token=NUM_AUDIO_TOKENS - 2,
        gpt_stop_audio_token=NUM_AUDIO_TOKENS - 1,
        gpt_use_perceiver_resampler=True,
    )
    # Cloning settings of the released XTTS v2 config.
    return XttsConfig(model_args=args, gpt_cond_len=30, gpt_cond_chunk_len=4, max_ref_len=30)


def init_model(out_dir: Path, *, dims: Dims, max_gen_tokens: int) -> Xtts:
    """A random XTTS v2 with its vocabulary written to out_dir/vocab.json; on whatever device
    is the default ("meta" builds one without allocating its weights)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train_vocab(out_dir / "vocab.json", pad_to=TEXT_TOKENS[dims])
    model = Xtts(make_config(dims, max_gen_tokens))
    # init_models reads the text-token count and ids from the tokenizer into config.model_args.
    model.tokenizer = VoiceBpeTokenizer(vocab_file=out_dir / "vocab.json")
    model.init_models()
    return model


def build_checkpoint(out_dir: Path, *, dims: Dims = "tiny", max_gen_tokens: int = 24) -> Path:
    """Write a loadable random XTTS v2 checkpoint into out_dir and return out_dir.

    max_gen_tokens bounds the audio codes generated per text piece (one code is 1024
    samples at 22.05 kHz, about 46 ms).
    """
    out_dir = Path(out_dir)
    model = init_model(out_dir, dims=dims, max_gen_tokens=max_gen_tokens)
    config = model.config
    with torch.no_grad():
        # Random weights would otherwise pick the stop code at random (about 1 in 1026 per
        # step), making output length, and timings, a matter of chance.
        model.gpt.mel_head.bias[config.model_args.gpt_stop_audio_token] = -1e4

    config.save_json(str(out_dir / "config.json"))
    # Saved before model.eval(), which adds inference-only aliases of the same weights.
    torch.save({"model": model.state_dict()}, out_dir / "model.pth")
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dims", choices=["tiny", "mid", "real"], default="tiny")
    parser.add_argument("--max-gen-tokens", type=int, default=24)
    ns = parser.parse_args()
    print(build_checkpoint(ns.out_dir, dims=ns.dims, max_gen_tokens=ns.max_gen_tokens))


if __name__ == "__main__":
    main()
