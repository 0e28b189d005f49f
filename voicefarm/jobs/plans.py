"""Planning a submission: a request validated against the catalog the workers advertised, and
keyed (jobs/keys.py) for every engine of its chain, before anything of it is counted or stored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from voicefarm.audio.codec import FORMATS
from voicefarm.engines.base import Voice
from voicefarm.errors import InvalidRequest, Unavailable
from voicefarm.fleet.catalog import Candidate, Catalog
from voicefarm.jobs import segments
from voicefarm.jobs.keys import content_key, normalise_language, normalise_text, source_key
from voicefarm.settings import Settings

MIN_RATE, MAX_RATE = 8000, 48000  # output sample rates a request may ask for


class Options(Protocol):
    """How a job is to sound: a request's own, or a batch's shared ones (BatchRequest)."""

    quality: str | None
    format: str
    speed: float
    sample_rate: int | None


class Request(Options, Protocol):
    """What a job asks for; the API's JobRequest and BatchItemRequest both are one."""

    text: str
    voice: str | None
    language: str | None
    timestamps: bool


@dataclass(frozen=True)
class Plan:
    text: str
    voice: Voice
    language: str
    quality: str
    format: str
    speed: float
    sample_rate: int | None
    candidates: list[Candidate]
    sources: list[str]  # source key for each candidate, same order
    keys: list[str]  # content key for each candidate, same order
    timestamps: bool  # word timestamps asked for
    # A document's segments, and each one's source key for each candidate; none for a plain job.
    pieces: list[segments.Piece] = field(default_factory=list)
    piece_sources: list[dict[str, str]] = field(default_factory=list)


def checked(options: Options, settings: Settings) -> str:
    """The options' quality tier, once every option is one the farm takes (the API's schema says
    the same, api/contract.py); InvalidRequest naming the first that is not."""
    if options.format not in FORMATS:
        raise InvalidRequest(f"format {options.format!r} is not supported; use one of {', '.join(FORMATS)}")
    if options.sample_rate is not None and not MIN_RATE <= options.sample_rate <= MAX_RATE:
        raise InvalidRequest(f"sample_rate {options.sample_rate} is out of range [{MIN_RATE}, {MAX_RATE}]")
    if not settings.min_speed <= options.speed <= settings.max_speed:
        raise InvalidRequest(f"speed {options.speed} is out of range [{settings.min_speed}, {settings.max_speed}]")
    quality = options.quality or settings.default_quality
    if quality not in settings.tiers:
        raise InvalidRequest(f"quality {quality!r} is not a tier; use one of {', '.join(settings.tiers)}")
    return quality


def plan(request: Request, voice: Voice | None, settings: Settings, catalog: Catalog, scope: str | None = None) -> Plan:
    """Validate a request whose voice the caller has looked up (None: no such voice), and key it
    in the cache `scope` (admission.Policy.key_scope: None is the farm's shared cache). The API's
    schema states each of these rules too (api/contract.py)."""
    text = normalise_text(request.text)
    if not text:
        raise InvalidRequest("text is empty")
    # The text as sent, as the schema's maxLength counts it: normalising may shorten it.
    if len(request.text) > settings.max_text_chars:
        raise InvalidRequest(f"text is {len(request.text)} characters; the maximum is {settings.max_text_chars}")
    quality = checked(request, settings)
    if voice is None:
        unknown = f"unknown voice {request.voice or settings.default_voice!r}"
        not_yet(unknown, quality, settings, catalog)
        raise InvalidRequest(f"{unknown}; GET /v1/voices lists the voices")
    language = normalise_language(request.language or voice.language)
    if not voice.cloned and language.split("-")[0] != voice.language.split("-")[0]:
        raise InvalidRequest(f"language {language!r} is not supported by voice {voice.id!r} ({voice.language})")
    candidates = catalog.candidates(quality, voice, language)
    if not candidates:
        problem = f"no engine in quality tier {quality!r} can speak voice {voice.id!r} in {language!r}"
        not_yet(problem, quality, settings, catalog)
        raise InvalidRequest(problem)
    pieces = (
        segments.split(request.text, settings.segment_chars)
        if segments.is_document(request.text, settings.segment_chars)
        else []
    )

    def key(spoken: str, candidate: Candidate) -> str:
        return source_key(text=spoken, language=language, speed=request.speed, candidate=candidate, scope=scope)

    # A document is keyed by its segments and pauses, and its text kept as sent (SSML, Markdown).
    sources = [key(segments.canonical(pieces) if pieces else text, c) for c in candidates]
    keys = [content_key(src, request.format, request.sample_rate) for src in sources]
    return Plan(
        request.text.strip() if pieces else text,
        voice,
        language,
        quality,
        request.format,
        request.speed,
        request.sample_rate,
        candidates,
        sources,
        keys,
        request.timestamps,
        pieces,
        [{c.engine: key(piece.text, c) for c in candidates} for piece in pieces],
    )


def not_yet(problem: str, quality: str, settings: Settings, catalog: Catalog) -> None:
    """Unavailable, to retry, while an engine of the tier has yet to advertise its voices (a
    fresh farm, its workers starting): they may settle `problem`, so it is no client's mistake yet."""
    if waiting := catalog.unadvertised(quality):
        # A worker advertises as it starts, and the API reads the catalog again every few
        # seconds: a beat later is the soonest an answer can change.
        raise Unavailable(
            f"{problem} so far; engines not yet advertised: {', '.join(waiting)}; retry once their workers start",
            retry_after=math.ceil(settings.heartbeat_seconds),
        )


def plan_items(
    items: Sequence[Request], voices: Sequence[Voice | None], settings: Settings, catalog: Catalog, scope: str | None
) -> list[Plan]:
    """A batch's items, each with its looked-up voice, all planned before anything is stored: one
    bad item refuses the batch, and the refusal names it."""
    plans = []
    for index, (item, voice) in enumerate(zip(items, voices, strict=True)):
        try:
            plans.append(plan(item, voice, settings, catalog, scope))
        except InvalidRequest as e:
            raise InvalidRequest(f"item {index}: {e.message}") from None
    return plans
