"""The OpenAPI schema, with every limit the API enforces.

Pydantic writes each field's type and the rules it checks itself. The rest are added here, when
the schema is first asked for: the limits that come from the settings (tiers, speeds, text
length, batch size) and those checked with a message of their own (`jobs.plans.plan`, and
`jobs.submit.accept_speech` for OpenAI's model), and, on every path, query and header parameter,
the control-character rule of `app.RefuseControlCharacters`. Clients and fuzzers
(tests/farm/test_schema_fuzz.py) then see what the API takes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from voicefarm.audio.codec import FORMATS
from voicefarm.jobs.plans import MAX_RATE, MIN_RATE
from voicefarm.schemas import HEADER_VALUE, PLAIN
from voicefarm.settings import Settings

# Printable (schemas.PRINTABLE) with something to say: a text of spaces is empty. The spaces are
# spelled out as Python's \s has them (jobs.keys.normalise_text): a schema's \s may be ASCII only.
SPACE = r"\s\x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPOKEN = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*"
    rf"[^{SPACE}\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
    r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)
PARAMETER = {"path": PLAIN, "query": PLAIN, "header": HEADER_VALUE}
# A voice sample is taken only with consent (api.voices._consent).
CONSENT = {"dependentSchemas": {"file": {"required": ["consent"], "properties": {"consent": {"const": True}}}}}


def models(settings: Settings) -> list[str]:
    """What POST /v1/audio/speech takes as `model`: an OpenAI model whose tier exists, or a tier."""
    mapped = [model for model, tier in settings.openai_models.items() if tier in settings.tiers]
    return list(dict.fromkeys([*mapped, *settings.tiers]))


def limits(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """Per request schema, per property: what the API checks beyond the type."""
    text: dict[str, Any] = {"pattern": SPOKEN, "maxLength": settings.max_text_chars}
    speed: dict[str, Any] = {"minimum": settings.min_speed, "maximum": settings.max_speed}
    options: dict[str, dict[str, Any]] = {
        "quality": {"enum": list(settings.tiers)},
        "format": {"enum": list(FORMATS)},
        "speed": speed,
        "sample_rate": {"minimum": MIN_RATE, "maximum": MAX_RATE},
    }
    # Also at most batch_max_items in all, phrases × voices: no schema can say that.
    batch = {"minItems": 1, "maxItems": settings.batch_max_items}
    return {
        "JobRequest": {"text": text, **options},
        "BatchItemRequest": {"text": text, **options},
        "BatchRequest": {**options, "items": batch, "phrases": {**batch, "items": text}},
        "SpeechRequest": {"input": text, "model": {"enum": models(settings)}, "speed": speed},
    }


def merge(schema: dict[str, Any], extra: dict[str, Any]) -> None:
    """Add `extra` to a property's schema: to its non-null branch when it is optional."""
    target = next((branch for branch in schema.get("anyOf", []) if branch.get("type") != "null"), schema)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def not_null(schema: dict[str, Any]) -> None:
    """A form field is sent or not; it is never null (a null would arrive as the text "null")."""
    for name, prop in schema["properties"].items():
        branches = [branch for branch in prop.get("anyOf", []) if branch.get("type") != "null"]
        if len(branches) == 1:
            schema["properties"][name] = {**{k: v for k, v in prop.items() if k != "anyOf"}, **branches[0]}


def openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI schema with the limits above; built once, as FastAPI's own is."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = doc["components"]["schemas"]
        for name, properties in limits(settings).items():
            for prop, extra in properties.items():
                merge(components[name]["properties"][prop], extra)
        for operation in (op for path in doc["paths"].values() for op in path.values()):
            for parameter in operation.get("parameters", []):
                merge(parameter["schema"], {"pattern": PARAMETER[parameter["in"]]})
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if form is not None:
                body = components[form["schema"]["$ref"].rsplit("/", 1)[-1]]
                not_null(body)
                if {"file", "consent"} <= body["properties"].keys():
                    body.update(CONSENT)
        app.openapi_schema = doc
    return app.openapi_schema
