"""The deployment files (docker/, deploy/), checked offline: no container engine or cluster runs
on these machines, so nothing here builds an image or starts a container.

- every Dockerfile passes hadolint, pins its base images, runs as a non-root user, has a
  health check and enters through the `voicefarm` command line; .dockerignore keeps what the
  Dockerfiles copy;
- every YAML file passes yamllint; deploy/compose.yaml matches the Compose Specification's
  JSON schema; the Kubernetes manifests match Kubernetes' own schemas (strict: unknown fields
  fail) and KEDA's CRD models; the farm's wiring (one worker per engine, GPU reservations,
  grace periods, queue names) is consistent;
- every field of the settings object, and of each engine package's own settings, is set in
  compose and in deploy/k8s, or is in ALLOWED with a reason, and every VOICEFARM_* variable set
  there is a field: configuration cannot drift;
- Prometheus scrapes the API, every worker and the reconciler where they serve (compose's
  scrape config, the pods' annotations and ports);
- the alert rules and the dashboard parse as PromQL (tests/farm/test_deploy_live.py checks they
  name only metrics the farm's API and workers serve, and runs docker/healthcheck.py and
  docker/ensure-bucket.py against the test farm).

docs/operations.md says what this covers and what it does not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import typer.main
import yaml
from docker.utils.build import exclude_paths
from kombu.transport.redis import Channel

from voicefarm.cli import app as cli_app
from voicefarm.dispatch.names import engine_queue
from voicefarm.dispatch.priorities import LEVELS
from voicefarm.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile.*"))
COMPOSE = ROOT / "deploy" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
K8S_VERSION = "1.31.0"  # the oldest Kubernetes release the manifests are checked against
GPU_ENGINES = {"xtts", "styletts2"}
CLI_COMMANDS = set(typer.main.get_command(cli_app).commands)

# Settings deliberately left at their defaults in every deployment, each with why.
ALLOWED = {
    "plugins": "third-party engines: the shipped images carry only the built-in ones",
    "tiers": "the default chains name every built-in engine; chains skip engines with no live worker",
    "default_voice": "product default for requests that name no voice",
    "default_quality": "product default for requests that name no tier",
    "max_text_chars": "request limit of the API: a product decision, not a deployment one",
    "segment_chars": "long-form segment size: one engine call's worth, a product default",
    "segment_retries": "long-form retry policy: the default the long-form tests exercise",
    "document_batch_chars": "long-form priority threshold: a product default",
    "result_backend": "derived from the broker URL: Celery keeps a document's chord count beside its queue",
    "min_speed": "request limit of the API",
    "max_speed": "request limit of the API",
    "batch_max_items": "request limit of the batch endpoint",
    "max_lost_per_engine": "redelivery policy: the default is the one the reliability tests exercise",
    "quality_max_wer": "off: the ASR quality gate needs faster-whisper, which the images do not carry",
    "filesystem_polling_interval": "embedded filesystem broker only; deployments use Redis",
    "stream_max_entries": "bound of a job's live-audio feed: ample for the longest job a worker takes",
    "stream_ttl_seconds": "how long a finished job's live feed waits for a late listener (product default)",
    "xtts_stream_chunk_size": "coqui's own default of 20 GPT codes a streamed piece; a tuning knob",
    "xtts_batch_size": "1 (one job at a time) until a GPU run measures what each card holds (docs/performance.md)",
    "voice_max_upload_bytes": "reference-sample limit of the voice library (product default)",
    "voice_min_seconds": "reference-sample limit of the voice library (product default)",
    "voice_recommended_seconds": "reference-sample advice of the voice library (product default)",
    "voice_max_seconds": "reference-sample limit of the voice library (product default)",
    "voice_min_sample_rate": "reference-sample limit of the voice library (product default)",
    "voice_min_snr_db": "reference-sample limit of the voice library (product default)",
    "voice_max_clipping_ratio": "reference-sample limit of the voice library (product default)",
    "voice_min_speech_ratio": "reference-sample limit of the voice library (product default)",
    "voice_sample_rate": "stored reference samples' rate: changing it changes every stored voice",
    "piper_voices_dir": "the bundled voice only; extra voices need one volume in the API and Piper workers",
    "piper_spin": "ONNX Runtime's spinning stays off on machines shared with other processes (docs/operations.md)",
    "google_endpoint": "an endpoint override for tests (a local fake server)",
    "google_voices": "the engine's default voice per language",
    "google_timeout_seconds": "engine default",
    "google_retries": "engine default",
    "google_sample_rate": "engine default",
    "openai_models": "OpenAI-compatible endpoint's model -> tier map: a product default",
    "openai_voices": "OpenAI voice -> farm voice map; unlisted voices speak in default_voice",
    "openai_wait_seconds": "product default (60 s); a proxy in front of the API must wait longer",
    "xtts_latents_cache_size": "per-process LRU of voices' latents; the default fits a GPU worker",
    "styletts2_style_cache_size": "per-process LRU of voices' style vectors; the default fits a GPU worker",
    "callback_allow_cidrs": "none by default: an operator adds its own internal receivers, knowingly",
    "breaker_failures": "circuit breaker policy (5 failures in a row): the default the breaker tests exercise",
    "breaker_cooldown_seconds": "circuit breaker policy (60 s); the alert fires after 5 minutes degraded",
    "self_test_text": "the workers' probe sentence: short enough for every engine's limits",
    "max_active_jobs": "admission limit: a generous farm default; per tenant: voicefarm tenants set",
    "submissions_per_minute": "admission limit: a generous farm default; per tenant: voicefarm tenants set",
    "chars_per_day": "admission limit: a generous farm default; per tenant: voicefarm tenants set",
    "cache_scope": "shared by default (docs/operations.md weighs it); per tenant: voicefarm tenants set",
}
# The engine packages' own settings (VOICEFARM_<ENGINE>_*), keyed here as <engine>_<field>.
ENGINE_SETTINGS = {
    "xtts": ("workers/xtts/voicefarm_xtts/settings.py", "XttsSettings"),
    "styletts2": ("workers/styletts2/voicefarm_styletts2/settings.py", "StyleTTS2Settings"),
}


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, **kwargs)


def tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')", pytrace=False)
    return path


# --- Dockerfiles ----------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in text.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


def pinned(image: str) -> bool:
    """A digest, or a tag naming one release (not latest, not a floating major or minor)."""
    if "@sha256:" in image:
        return True
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if repository == "postgres":  # PostgreSQL's releases are major.minor
        return bool(re.match(r"\d+\.\d+(-|$)", tag))
    return bool(re.search(r"\d+\.\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\d", tag))


def test_dockerfiles_exist_for_every_role() -> None:
    names = {f.name.removeprefix("Dockerfile.") for f in DOCKERFILES}
    assert names == {"api", "worker-cpu", "worker-xtts", "worker-styletts2", "flower"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda f: f.name)
def test_hadolint(dockerfile: Path) -> None:
    result = run(tool("hadolint"), "--config", "docker/hadolint.yaml", str(dockerfile.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda f: f.name)
def test_dockerfile_shape(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    stages = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(stages) >= 2, "multi-stage: build tools stay out of the final image"
    assert all(pinned(image) for image in stages), f"unpinned base image in {stages}"
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage must run as a non-root user"
    assert any(op == "HEALTHCHECK" for op, _ in final)
    entrypoint = [json.loads(args) for op, args in final if op == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1] == ["tini", "--", "voicefarm"], "enter through the voicefarm command line"
    cmd = [json.loads(args) for op, args in final if op == "CMD"][-1]
    assert cmd[0] in CLI_COMMANDS, f"CMD {cmd} is not a voicefarm command"
    # No weights baked in: nothing copied or fetched at build time but code and requirements.
    for op, args in steps:
        assert op != "ADD", "ADD can fetch URLs; COPY only"
        if op in ("RUN", "COPY"):
            assert not re.search(
                r"\.(pth|pt|onnx|safetensors|ckpt|bin)\b|models?/|huggingface|hf_hub|wget|curl", args
            ), f"{op} {args}: model weights come from a volume, not the image"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda f: f.name)
def test_images_install_from_the_locks_only(dockerfile: Path) -> None:
    """Every install in an image is a lock, hash-checked, or the core or a local package under
    workers/, editable, without its dependencies (the lock holds them), as in make test and
    workers/*/setup.sh."""
    commands = [
        c.strip()
        for op, args in instructions(dockerfile)
        if op == "RUN"
        for c in re.findall(r"(?:uv )?pip (?:install|sync)[^&;|]*", args)
    ]
    assert any(c.startswith("uv pip sync") and "locks/" in c for c in commands), "no environment from a lock"
    for command in commands:
        assert ("--require-hashes" in command and re.search(r"locks/\w+\.txt", command)) or re.search(
            r"--no-deps -e \.(?: -e workers/\w+)*$", command
        ), f"{dockerfile.name}: {command!r} installs from outside the locks"


def test_dockerignore_keeps_what_the_dockerfiles_copy() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = set(exclude_paths(str(ROOT), patterns))
    assert not any(".venv" in p or p.startswith((".git/", "tests/", ".voicefarm")) for p in context)
    for dockerfile in DOCKERFILES:
        for op, args in instructions(dockerfile):
            if op != "COPY" or "--from=" in args:
                continue
            for source in args.split()[:-1]:
                assert source in context or any(p.startswith(source.rstrip("/") + "/") for p in context), (
                    f"{dockerfile.name}: COPY {source} is excluded by .dockerignore"
                )


# --- YAML -----------------------------------------------------------------------------------


def test_yamllint() -> None:
    result = run(tool("yamllint"), "--strict", "-c", ".yamllint", "deploy", "docker/hadolint.yaml", ".yamllint")
    assert result.returncode == 0, result.stdout + result.stderr


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def manifests() -> list[tuple[str, dict]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} to the default, and ${VAR:?error} (a required secret) to a stand-in."""
    return re.sub(r"\$\{(\w+)(?::?([-?])([^}]*))?\}", lambda m: m.group(3) if m.group(2) == "-" else "secret", value)


def parse_seconds(value: str | int) -> float:
    if isinstance(value, int):
        return value
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", value))


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process would read from this environment (and only it). Nothing that
    caches settings (get_settings, a first import of voicefarm.dispatch.app) may run while it is set."""
    for name in list(os.environ):
        if name.startswith("VOICEFARM_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_compose_matches_the_compose_spec() -> None:
    # The Compose Specification's schema, as check-jsonschema vendors it.
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(compose())
    ]
    assert not errors, "\n".join(errors)


def compose_env(service: str) -> dict[str, str]:
    environment = compose()["services"][service].get("environment", {})
    return {name: interpolate(str(value)) for name, value in environment.items()}


def test_compose_runs_a_whole_farm(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    settings = settings_from(compose_env("api"), monkeypatch)
    assert settings.broker_url.startswith("redis://") and settings.database_url.startswith("postgresql://")
    assert settings.storage_url.startswith("s3://") and settings.api_host == "0.0.0.0"
    assert {
        "redis",
        "postgres",
        "minio",
        "migrate",
        "bucket",
        "api",
        "reconciler",
        "webhooks",
        "aligner",
        "flower",
        "prometheus",
        "grafana",
    } <= set(services)
    for name, service in services.items():
        if "build" not in service:
            assert pinned(service["image"]), f"{name}: unpinned image {service['image']}"
        elif service.get("entrypoint") is None:
            assert service["command"][0] in CLI_COMMANDS, f"{name}: {service['command']} is not a voicefarm command"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # One worker per engine (Google's behind a profile), each past the longest task on SIGTERM.
    for engine in [*settings.engines, "google"]:
        worker = services[f"worker-{engine}"]
        assert worker["command"][:3] == ["worker", "--engine", engine]
        assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        worker_settings = settings_from(compose_env(f"worker-{engine}"), monkeypatch)
        assert parse_seconds(worker["stop_grace_period"]) > worker_settings.longest_task
        devices = worker.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        if engine in GPU_ENGINES:
            assert len(devices) == 1 and devices[0]["capabilities"] == ["gpu"]
            assert len(devices[0]["device_ids"]) == 1, "one GPU each"
            assert worker["command"][3:] == ["--gpu", "0"], "the container sees its one GPU as device 0"
        else:
            assert not devices
    # The dashboard and data source are mounted where the provisioning files say.
    grafana = services["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "voicefarm.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


# --- Kubernetes -----------------------------------------------------------------------------


def closed(schema):
    """A JSON schema in which objects take only the properties they declare."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            closed(value)
    elif isinstance(schema, list):
        for value in schema:
            closed(value)
    return schema


@cache
def keda_validator(kind: str) -> jsonschema.Validator:
    # KEDA's CRDs as typed models (generated from the CRDs by cloudcoil); their JSON schema,
    # closed, catches unknown and mistyped fields as the API server's CRD validation would.
    from cloudcoil.models.keda import v1alpha1

    return jsonschema.Draft202012Validator(closed(getattr(v1alpha1, kind).model_json_schema(by_alias=True)))


@pytest.mark.parametrize("name, doc", manifests(), ids=lambda v: v if isinstance(v, str) else v.get("kind"))
def test_k8s_manifest_matches_its_schema(name: str, doc: dict) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in keda_validator(doc["kind"]).iter_errors(doc)
        ]
        assert not errors, "\n".join(errors)
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{name} {doc['kind']} {doc['metadata']['name']}: {'/'.join(map(str, e.path))}: {e.message}")


def test_kustomization_lists_every_manifest_and_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    for _, doc in manifests():
        for container in pod_spec(doc).get("containers", []):
            image = container["image"]
            assert pinned(image), f"unpinned image {image}"
            assert image.startswith("rclone/") or image.rsplit(":", 1)[0] in images, f"{image} not in kustomization"


def pod_spec(doc: dict) -> dict:
    if doc["kind"] in ("Deployment", "Job"):
        return doc["spec"]["template"]["spec"]
    return {}


def k8s_settings_env() -> dict[str, str]:
    """What `envFrom` gives every farm pod: the ConfigMap and the farm's Secret."""
    env = {}
    for _, doc in manifests():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "voicefarm-config":
            env.update(doc["data"])
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == "voicefarm-secrets":
            env.update(doc["stringData"])
    return env


def deployments(component_prefix: str) -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc
        for _, doc in manifests()
        if doc["kind"] == "Deployment"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"].startswith(component_prefix)
    }


def queue_lists(prefix: str, engine: str) -> set[str]:
    """The Redis lists of an engine's Celery queue: kombu keeps one per priority level in use,
    "<queue>" for priority 0 and "<queue>\\x06\\x16<priority>" for the others."""
    base = f"{prefix}:{engine_queue(engine)}"
    return {base if p == 0 else f"{base}{Channel.sep}{p}" for p in LEVELS}


def test_k8s_runs_every_engine_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(k8s_settings_env(), monkeypatch)
    broker = urlparse(settings.broker_url)
    by_kind: dict[str, dict[str, dict]] = {}
    for _, doc in manifests():
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    pools = deployments("worker-")
    assert {d["spec"]["template"]["spec"]["containers"][0]["args"][2] for d in pools.values()} == set(settings.engines)
    for name, pool in pools.items():
        spec = pool["spec"]["template"]["spec"]
        args = spec["containers"][0]["args"]
        engine = args[2]
        assert args[:2] == ["worker", "--engine"]
        assert "replicas" not in pool["spec"], "the ScaledObject owns the replica count"
        assert spec["terminationGracePeriodSeconds"] > settings.longest_task, "warm shutdown outlasts the longest task"
        limits = spec["containers"][0]["resources"]["limits"]
        if engine in GPU_ENGINES:
            assert limits.get("nvidia.com/gpu") == 1 and args[3:] == ["--gpu", "0"]
            assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
        else:
            assert "nvidia.com/gpu" not in limits
        selector = pool["spec"]["selector"]["matchLabels"]
        assert by_kind["PodDisruptionBudget"][name]["spec"]["selector"]["matchLabels"] == selector
        scaled = by_kind["ScaledObject"][name]
        assert scaled["spec"]["scaleTargetRef"]["name"] == name and scaled["spec"]["minReplicaCount"] >= 1
        triggers = scaled["spec"]["triggers"]
        for trigger in triggers:
            meta = trigger["metadata"]
            assert trigger["type"] == "redis"
            # KEDA's Redis scaler's own metadata keys only, on the broker's Redis.
            assert set(meta) <= {
                "address",
                "host",
                "port",
                "databaseIndex",
                "listName",
                "listLength",
                "activationListLength",
                "enableTLS",
                "unsafeSsl",
                "username",
            }
            assert meta["address"] == f"{broker.hostname}:{broker.port}"
            assert meta["databaseIndex"] == (broker.path.strip("/") or "0")
        # The lists are the queue the API sends to, one per priority it uses.
        assert {t["metadata"]["listName"] for t in triggers} == queue_lists(settings.redis_prefix, engine)
        if len(triggers) > 1:  # summed, not the HPA's max of them
            formula = scaled["spec"]["advanced"]["scalingModifiers"]["formula"]
            assert set(re.findall(r"\w+", formula)) == {t["name"] for t in triggers}
    commands = {pod_spec(d)["containers"][0]["args"][0] for d in by_kind["Deployment"].values()}
    assert {"api", "reconcile", "webhooks", "aligner", "flower", "worker"} == commands
    (migrate,) = [d for d in by_kind["Job"].values() if pod_spec(d)["containers"][0].get("args") == ["migrate"]]
    assert "voicefarm/api" in pod_spec(migrate)["containers"][0]["image"]
    api = by_kind["Deployment"]["voicefarm-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
    for _, doc in manifests():
        spec = pod_spec(doc)
        if spec:
            assert spec["securityContext"]["runAsNonRoot"] is True
            for container in spec["containers"]:
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                if container.get("args"):
                    assert doc["metadata"]["name"].endswith("model-sync") or container["args"][0] in CLI_COMMANDS


# --- Settings drift -------------------------------------------------------------------------


def compose_env_names() -> set[str]:
    return {name for service in compose()["services"].values() for name in service.get("environment", {})}


def k8s_env_names() -> set[str]:
    names = set()
    for _, doc in manifests():
        if doc["kind"] == "ConfigMap":
            names |= set(doc.get("data", {}))
        if doc["kind"] == "Secret":
            names |= set(doc.get("stringData", {})) | set(doc.get("data", {}))
        for container in pod_spec(doc).get("containers", []):
            names |= {var["name"] for var in container.get("env", [])}
    return names


def env_name(field: str) -> str:
    return "VOICEFARM_" + field.upper()


@cache
def setting_fields() -> dict[str, str]:
    """Every setting, the core's and each engine package's, by key -> its VOICEFARM_* variable.
    The engine packages' settings modules are loaded from their files: the core environment
    does not install the engine packages, and must not."""
    fields = {f: env_name(f) for f in Settings.model_fields}
    for engine, (path, name) in ENGINE_SETTINGS.items():
        spec = importlib.util.spec_from_file_location(f"{engine}_settings", ROOT / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = getattr(module, name)
        prefix = model.model_config["env_prefix"]
        fields |= {f"{engine}_{f}": (prefix + f).upper() for f in model.model_fields}
    return fields


@pytest.mark.parametrize("where, names", [("deploy/compose.yaml", compose_env_names), ("deploy/k8s", k8s_env_names)])
def test_every_setting_is_deployed_or_deliberately_default(where: str, names) -> None:
    present, fields = names(), setting_fields()
    missing = [env for f, env in fields.items() if f not in ALLOWED and env not in present]
    assert not missing, f"set these in {where}, or add them to ALLOWED with a reason: {missing}"
    contradicted = [f for f in ALLOWED if fields[f] in present]
    assert not contradicted, f"{where} sets {contradicted}, which ALLOWED says are left at their defaults"


def test_every_deployed_variable_is_a_setting() -> None:
    known = set(setting_fields().values())
    unknown = sorted(n for n in compose_env_names() | k8s_env_names() if n.startswith("VOICEFARM_") and n not in known)
    assert not unknown, (
        f"not fields of the core's or an engine package's settings (a typo, or a renamed field?): {unknown}"
    )
    stale = sorted(f for f in ALLOWED if f not in setting_fields())
    assert not stale, f"ALLOWED names settings that no longer exist: {stale}"


# --- Prometheus and Grafana -----------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects; raises if it does not parse."""
    found: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / "voicefarm.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_prometheus_config() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert all((PROMETHEUS / f).is_file() for f in config["rule_files"])
    api, workers = config["scrape_configs"]
    env = compose()["x-env"]
    assert api["metrics_path"] == "/metrics" and api["static_configs"][0]["targets"] == [
        f"api:{env['VOICEFARM_API_PORT']}"
    ]
    # Every replica of every worker and of the reconciler, on the port each serves its counts on.
    ports = {"worker": env["VOICEFARM_METRICS_PORT"], "reconcile": env["VOICEFARM_RECONCILER_METRICS_PORT"]}
    counting = {
        (name, ports[command])
        for name, s in compose()["services"].items()
        if (command := s.get("command", [""])[0]) in ports
    }
    discovered = {(name, str(d["port"])) for d in workers["dns_sd_configs"] for name in d["names"]}
    assert workers["metrics_path"] == "/metrics" and discovered == counting
    assert all(d["type"] == "A" for d in workers["dns_sd_configs"])


def test_k8s_pods_are_scraped_where_they_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(k8s_settings_env(), monkeypatch)
    ports = {"api": settings.api_port, "worker": settings.metrics_port, "reconcile": settings.reconciler_metrics_port}
    for name, doc in deployments("").items():
        (container,) = pod_spec(doc)["containers"]
        role = container["args"][0]
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        if role not in ports:
            assert "prometheus.io/scrape" not in annotations, name
            continue
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(ports[role]), name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert ports[role] in {p["containerPort"] for p in container["ports"]}, name


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule["alert"]
        assert metric_names(rule["expr"]), rule["alert"]  # parses, and selects something
        promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
    # What ops watch, each covered.
    watched = " ".join(rule["expr"] for rule in rules)
    for metric in [
        "voicefarm_queue_depth",
        "voicefarm_fallbacks_total",
        "voicefarm_attempts_total",
        "voicefarm_job_latency_seconds_bucket",
        "voicefarm_live_workers",
        "voicefarm_cache_requests_total",
        "voicefarm_reconcile_last_success_timestamp_seconds",
    ]:
        assert metric in watched


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "voicefarm.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    for expr in dashboard_exprs():
        assert metric_names(expr), expr


def test_images_carry_the_scripts_their_checks_run() -> None:
    for dockerfile in DOCKERFILES:
        assert "COPY docker/healthcheck.py" in dockerfile.read_text(), dockerfile.name
    assert "docker/ensure-bucket.py" in (ROOT / "docker" / "Dockerfile.api").read_text()
