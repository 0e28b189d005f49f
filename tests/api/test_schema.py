"""The OpenAPI schema states the limits the API enforces, taken from the farm's settings."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from voicefarm.audio.codec import FORMATS
from voicefarm.schemas import PLAIN
from voicefarm.settings import get_settings


def branch(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional property's non-null schema."""
    return next((b for b in prop.get("anyOf", []) if b.get("type") != "null"), prop)


def test_request_bodies_carry_the_limits_from_the_settings(app: TestClient) -> None:
    settings, doc = get_settings(), app.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("JobRequest", "BatchItemRequest", "BatchRequest"):
        props = schemas[name]["properties"]
        assert branch(props["quality"])["enum"] == list(settings.tiers)
        assert props["format"]["enum"] == list(FORMATS)
        assert (props["speed"]["minimum"], props["speed"]["maximum"]) == (settings.min_speed, settings.max_speed)
        assert (branch(props["sample_rate"])["minimum"], branch(props["sample_rate"])["maximum"]) == (8000, 48000)
        assert branch(props["language"])["maxLength"] == 16
    job = schemas["JobRequest"]["properties"]
    assert job["text"]["maxLength"] == settings.max_text_chars and "\\s" in job["text"]["pattern"]
    assert branch(job["voice"])["maxLength"] == 200 and branch(job["callback_url"])["maxLength"] == 2000
    batch = schemas["BatchRequest"]
    assert [kind["required"] for kind in batch["oneOf"]] == [["items"], ["phrases"]]
    for kind in ("items", "phrases"):
        assert branch(batch["properties"][kind])["maxItems"] == settings.batch_max_items
    speech = schemas["SpeechRequest"]["properties"]
    assert speech["model"]["enum"] == [*settings.openai_models, *settings.tiers]
    assert speech["input"]["maxLength"] == settings.max_text_chars


def test_every_operation_but_health_needs_a_key_and_no_parameter_takes_a_control_character(app: TestClient) -> None:
    doc = app.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "description": "An API key",
        "in": "header",
        "name": "X-API-Key",
    }
    operations = {f"{m.upper()} {p}": op for p, item in doc["paths"].items() for m, op in item.items()}
    assert {label for label, op in operations.items() if "security" not in op} == {"GET /healthz"}
    path_parameters = [
        parameter for op in operations.values() for parameter in op.get("parameters", []) if parameter["in"] == "path"
    ]
    assert len(path_parameters) >= 7 and all(parameter["schema"]["pattern"] == PLAIN for parameter in path_parameters)


def test_a_voice_sample_needs_consent_and_form_fields_are_never_null(app: TestClient) -> None:
    doc = app.get("/openapi.json").json()
    for path, method in [("/v1/voices", "post"), ("/v1/voices/{voice_id}", "patch")]:
        ref = doc["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        form = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert form["dependentSchemas"]["file"]["properties"]["consent"] == {"const": True}
        assert not [name for name, prop in form["properties"].items() if "anyOf" in prop]
