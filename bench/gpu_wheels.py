"""`make gpu-wheels`: every wheel a lent GPU host lacks to run the farm and both torch engines.

The host (x86-64, its own CPython 3.12 with torch 2.11, numpy 2, scipy, transformers 5 and much
of the scientific stack) reaches no package index, so what it lacks travels from here as wheels,
in three groups under gpu-wheels/ that it installs one by one with
`python3 -m pip install --no-index --no-deps --target /tmp/site/GROUP gpu-wheels/GROUP/*.whl`:

- core: the farm on the embedded default (`voicefarm api`, `worker`, `webhooks`, `reconcile`,
  `migrate`: SQLite, the filesystem broker, the local store), on PYTHONPATH=/tmp/site/core:.
- xtts, styletts2: an engine's worker, each on PYTHONPATH=/tmp/site/ENGINE:/tmp/site/core:.

So a group holds one version of each package, and an engine's group repeats one of core's only
to shadow it with another version. Versions are the locks' (locks/) unless a comment says why
not. torch, torchaudio, triton and nvidia-* never travel: the host's CUDA build is the point.

A device call carries 64 MiB with the checkout, and all three groups travel in one (CARRIES),
under LIMIT_MIB. To fit, what the report never imports stays behind (PyAV; cached-path, for
which bench/offline stands in), and compiled wheels and big data ones are rewritten with LZMA,
which pip reads as it reads any zip.

Idempotent: a wheel already there is kept and one no longer listed is deleted; the repo's own
packages (pure Python) are rebuilt every run, from a copy, so no build/ lands in the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "gpu-wheels"
LIMIT_MIB = 60.0  # one device call carries 64 MiB in all, the checkout (about 3 MiB) included


@dataclass(frozen=True)
class Group:
    lock: str  # where a bare name's version comes from
    own: dict[str, tuple[str, ...]]  # the repo's packages: folder -> what its build reads
    packages: tuple[str, ...]  # "name" (the lock's version) or "name==version"


CORE = Group(
    lock="locks/core.txt",
    own={
        ".": ("pyproject.toml", "README.md", "voicefarm"),
        "workers/torchkit": ("pyproject.toml", "voicefarm_torchkit"),  # both engines': once, below both
    },
    packages=(
        # The host has httpx, anyio, h11, click, typer, rich, pyyaml, numpy, scipy,
        # prometheus-client, python-dateutil, markupsafe, annotated-doc and typing-extensions.
        "pydantic",
        "pydantic-core",
        "annotated-types",
        "typing-inspection",
        "pydantic-settings",
        "python-dotenv",
        "sqlalchemy",  # SQLite through the standard library's sqlite3
        "alembic",
        "mako",
        "celery",  # with the filesystem broker: kombu alone, no Redis, no AMQP server
        "kombu",
        "amqp",  # kombu imports it whatever the transport
        "billiard",
        "vine",
        "click-didyoumean",
        "click-plugins",
        "click-repl",
        "prompt-toolkit",
        "wcwidth",
        "tzlocal",
        "fastapi",
        "starlette",
        "opentelemetry-api",  # fastapi.telemetry imports it
        "python-multipart",
        "uvicorn",  # uvicorn[standard] less watchfiles (--reload) and websockets (no WebSocket route)
        "httptools",
        "redis",  # voicefarm.api.app and voicefarm.store.outages import its exceptions; no server
        "soundfile",
        "cffi",
        "pycparser",
        "soxr",
        "pyloudnorm",
        "webrtcvad-wheels",
        "webvtt-py",
        "tenacity",
        # Not: av (34 MiB: imported only for MP3, Opus and AAC, which the report does not ask
        # for), boto3 (S3, imported when used), psycopg (PostgreSQL), piper-tts, google-cloud-*,
        # faster-whisper (the aligner), flower.
    ),
)

# librosa and what it needs beyond the host (which has numba, scikit-learn, joblib, msgpack,
# lazy-loader): both engines', each at its own lock's version.
LIBROSA = ("librosa", "audioread", "pooch", "platformdirs", "decorator")

XTTS = Group(
    lock="locks/xtts.txt",
    own={"workers/xtts": ("pyproject.toml", "voicefarm_xtts")},
    packages=(
        "coqui-tts",
        "coqpit-config",
        "coqui-tts-trainer",  # its `trainer` package; tensorboard and psutil are the host's
        # coqui 0.28's GPT breaks on the host's transformers 5; 4.57 wants tokenizers <= 0.23.0 and
        # huggingface-hub < 1.0 (the host has 0.23.2 and 1.33), so all three shadow the host's.
        "transformers",
        "tokenizers",
        "huggingface-hub",
        "anyascii",
        "ko-speech-tools",  # the XTTS tokenizer imports it at import time
        "num2words",
        "docopt",
        "inflect",
        "jaraco-functools",
        "more-itertools",
        "typeguard",
        "pysbd",
        "monotonic-alignment-search",
        "pypinyin",  # the zh extra's front end
        # Not the ja extra: unidic-lite's dictionary is 47 MiB on its own, so Japanese fails there.
        # Nor spacy-pkuseg (no XTTS path imports it), nor torchcodec (the engine resamples in memory).
        *LIBROSA,
    ),
)

STYLETTS2 = Group(
    lock="locks/styletts2.txt",
    own={"workers/styletts2": ("pyproject.toml", "voicefarm_styletts2")},
    packages=(
        "styletts2",
        # Not the lock's transformers 4.40.2, tokenizers 0.19.1, huggingface-hub 0.19.4 (held
        # there by styletts2's hub<0.20; 4.40 predates numpy 2 and torch 2.11): the host's 5.17,
        # 0.23.2 and 1.33 serve, though outside styletts2's declared transformers<5. The engine
        # only builds PL-BERT's AlbertModel; on a tiny model its audio is the same under both.
        # Not cached-path, with boto3 and Google's storage clients: bench/offline stands in.
        "langchain",  # styletts2.tts: langchain.text_splitter
        "langchain-core",
        "langchain-text-splitters",
        "langsmith",
        "orjson",
        "requests-toolbelt",
        "jsonpatch",
        "jsonpointer",
        "tenacity",  # 8.5: langchain-core wants < 9, core's is 9.2
        "gruut",  # the phonemizer, with its English lexicon and tagger
        "gruut-ipa",
        "gruut-lang-en",
        "python-crfsuite",
        "babel",
        "dateparser",
        "pytz",
        "jsonlines",
        "num2words",
        "docopt",
        "nltk",
        "defusedxml",
        "munch",
        "einops-exts",
        *LIBROSA,
        # Not the lock's numpy 1.26 (langchain's numpy<2 bound only; the host's torch and scipy
        # are built for numpy 2), networkx 2.8, einops 0.7, accelerate 0.25, filelock 3.12,
        # packaging 23, rich 13 or soundfile 0.12: the host's, or core's, newer ones serve.
    ),
)

GROUPS = {"core": CORE, "xtts": XTTS, "styletts2": STYLETTS2}
# What travels in one device call: everything, so the whole report is one run.
CARRIES = (tuple(GROUPS),)

# Published as sdists only, all pure Python: built here into py3-none-any wheels.
SDIST_ONLY = {"docopt", "gruut", "gruut-ipa", "gruut-lang-en"}
# Pure-Python wheels that are mostly data LZMA shrinks by a fifth or more (compiled ones all are).
DATA = {"babel", "gruut-lang-en", "ko-speech-tools", "pypinyin"}
NEVER = ("torch", "torchaudio", "torchvision", "triton", "nvidia-")  # the host's CUDA build
# The host's glibc is 2.39 (Ubuntu 24.04's Python 3.12.3); pip matches each manylinux tag exactly.
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
TARGET = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"]

console = Console()
app = typer.Typer(add_completion=False)


def locked(lock: Path) -> dict[str, str]:
    """The lock's `name==version` lines, by canonical name."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if line[:1].isalnum() and "==" in line:
            name, _, rest = line.partition("==")
            pins[canonicalize_name(name.split("[")[0])] = rest.split()[0].rstrip("\\")
    return pins


def wanted(group: Group) -> dict[str, Version]:
    """Each package of `group` with its version: its own, else its lock's."""
    pins = locked(ROOT / group.lock)
    versions: dict[str, Version] = {}
    for entry in group.packages:
        name, _, version = entry.partition("==")
        key = canonicalize_name(name)
        if key.startswith(NEVER):
            raise SystemExit(f"{key} is the host's own and never travels")
        if not version and key not in pins:
            raise SystemExit(f"{key}: no version in {group.lock}; name one")
        if key in versions:
            raise SystemExit(f"{key} is listed twice")
        versions[key] = Version(version or pins[key])
    return versions


def project(source: str) -> str:
    with (ROOT / source / "pyproject.toml").open("rb") as file:
        return canonicalize_name(tomllib.load(file)["project"]["name"])


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    if subprocess.run(command).returncode:
        raise SystemExit(f"failed: {' '.join(command)}")


def wheels(folder: Path) -> dict[str, tuple[Version, Path]]:
    found: dict[str, tuple[Version, Path]] = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        if name in found:
            raise SystemExit(f"two versions of {name} in {folder}")
        found[name] = (version, path)
    return found


def build_own(group: Group, folder: Path) -> None:
    """Wheels of the repo's own packages, built from a copy of what each build reads."""
    with tempfile.TemporaryDirectory() as scratch:
        for source, entries in group.own.items():
            copy = Path(scratch) / project(source)
            copy.mkdir()
            for entry in entries:
                path = ROOT / source / entry
                if path.is_dir():
                    shutil.copytree(path, copy / entry, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    shutil.copy2(path, copy / entry)
            pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(copy))


def shrink(path: Path) -> None:
    """Rewrite the wheel at `path` with LZMA, its files and their RECORD unchanged."""
    with zipfile.ZipFile(path) as wheel:
        entries = wheel.infolist()
        if any(entry.compress_type == zipfile.ZIP_LZMA for entry in entries):
            return  # done on an earlier run
        smaller = path.with_suffix(".lzma")
        with zipfile.ZipFile(smaller, "w", zipfile.ZIP_LZMA) as out:
            for entry in entries:
                copy = zipfile.ZipInfo(entry.filename, entry.date_time)
                copy.external_attr = entry.external_attr  # executable bits
                out.writestr(copy, wheel.read(entry), compress_type=zipfile.ZIP_LZMA)
    smaller.replace(path)


def fill(name: str, group: Group) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    versions = wanted(group)
    own = {project(source) for source in group.own}
    for key, (version, path) in wheels(folder).items():
        if key in own or versions.get(key) != version:
            path.unlink()  # rebuilt below, or no longer wanted at this version
    present = wheels(folder)
    missing = [f"{key}=={version}" for key, version in versions.items() if key not in present]
    binary = [spec for spec in missing if spec.split("==")[0] not in SDIST_ONLY]
    built = [spec for spec in missing if spec.split("==")[0] in SDIST_ONLY]
    if binary:
        platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
        pip("download", "--quiet", "--no-deps", *TARGET, *platforms, "--dest", str(folder), *binary)
    if built:
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), *built)
    build_own(group, folder)
    for key, (_, path) in wheels(folder).items():
        pure = path.name.endswith("-none-any.whl")
        if key in SDIST_ONLY and not pure:
            raise SystemExit(f"{path.name} is not pure Python: it was built for this machine")
        if key not in own and (key in DATA or not pure):
            shrink(path)


def mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.glob("*.whl")) / 2**20


@app.command()
def main(
    groups: Annotated[list[str] | None, typer.Argument(help="core, xtts, styletts2; all by default.")] = None,
) -> None:
    """Fill gpu-wheels/GROUP for each group, print their sizes, and fail if a carry is too big."""
    for name in groups or list(GROUPS):
        if name not in GROUPS:
            raise typer.BadParameter(f"{name}: not one of {', '.join(GROUPS)}")
        console.print(f"[bold]{name}[/bold]")
        fill(name, GROUPS[name])

    sizes = {name: mib(OUT / name) for name in GROUPS if (OUT / name).is_dir()}
    table = Table(title="gpu-wheels/")
    for column in ("group", "wheels", "MiB"):
        table.add_column(column, justify="right")
    for name, size in sizes.items():
        table.add_row(name, str(len(list((OUT / name).glob("*.whl")))), f"{size:.1f}")
    table.add_row("total", "", f"{sum(sizes.values()):.1f}")
    console.print(table)

    over = []
    for carry in CARRIES:
        size = sum(sizes.get(name, 0.0) for name in carry)
        console.print(f"one device call carries {' + '.join(carry)}: {size:.1f} MiB of {LIMIT_MIB:.0f}")
        if size > LIMIT_MIB:
            over.append(f"{' + '.join(carry)} is {size:.1f} MiB")
    if over:
        console.print(f"[bold red]TOO BIG for one device call ({LIMIT_MIB:.0f} MiB): {'; '.join(over)}[/bold red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
