"""The deployment files say what the code does: settings that exist, commands the CLI has, probes on
real paths, selectors that select; the image installs the hashed lock and nothing of the emulators.
(`make deploy-check` checks them against the Compose spec and Kubernetes' schemas.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from bot.config import Settings
from bot.probes import process_of

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
KUBERNETES = [doc for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
              for doc in yaml.safe_load_all(path.read_text()) if doc]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROCESSES = {"serve", "worker", "socket"}
PROBES = {("connect-dynamics", "probe", "web"), ("connect-dynamics", "probe", "worker")}


def web_paths() -> set[str]:
    """The GET paths of the web app, read from its route table in `bot/web.py`."""
    source = (ROOT / "bot" / "web.py").read_text()
    return set(re.findall(r'Route\("(/[a-z/]+)", \w+, methods=\["GET"\]\)', source))


def kinds(kind: str) -> list[dict]:
    return [doc for doc in KUBERNETES if doc["kind"] == kind]


def test_the_web_app_serves_the_probe_paths() -> None:
    assert {"/livez", "/readyz", "/healthz", "/metrics"} == web_paths()


# -- docker-compose.yml ----------------------------------------------------------------------------
def test_compose_runs_web_two_workers_and_a_persistent_password_protected_redis() -> None:
    services = COMPOSE["services"]
    assert services["web"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"] and services["worker"]["deploy"]["replicas"] == 2
    assert services["socket"]["command"] == ["socket"] and services["socket"]["profiles"] == ["socket"]
    redis = services["redis"]
    assert redis["image"] == "redis:7"
    assert "--appendonly yes" in redis["command"][-1] and "--requirepass" in redis["command"][-1]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    for name in ("web", "worker", "socket"):
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")


def test_compose_healthchecks_are_the_probes_of_each_process() -> None:
    services = COMPOSE["services"]
    assert tuple(services["web"]["healthcheck"]["test"][1:]) == ("connect-dynamics", "probe", "web")
    assert tuple(services["worker"]["healthcheck"]["test"][1:]) == ("connect-dynamics", "probe", "worker")
    assert services["socket"]["healthcheck"] == {"disable": True}


def test_compose_names_only_settings_that_exist() -> None:
    for name in ("web", "worker", "socket"):
        assert set(COMPOSE["services"][name]["environment"]) <= set(Settings.model_fields), name


# -- deploy/kubernetes ----------------------------------------------------------------------------
def containers() -> dict[str, dict]:
    found = {}
    for deployment in kinds("Deployment"):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        found[deployment["metadata"]["labels"]["app.kubernetes.io/component"]] = container
    return found


def test_kubernetes_runs_serve_and_worker_with_requests_and_the_secret() -> None:
    by_component = containers()
    assert {name: c["args"] for name, c in by_component.items()} == {"web": ["serve"], "worker": ["worker"]}
    [secret] = kinds("Secret")
    for container in by_component.values():
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]


def test_kubernetes_probes_point_at_real_paths_and_commands() -> None:
    web, worker = containers()["web"], containers()["worker"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    paths = {web[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert paths <= web_paths()
    port = {p["name"]: p["containerPort"] for p in web["ports"]}[web["livenessProbe"]["httpGet"]["port"]]
    assert port == int({e["name"]: e["value"] for e in web["env"]}["PORT"])
    assert tuple(worker["livenessProbe"]["exec"]["command"]) in PROBES


def test_the_secret_template_names_only_settings_that_exist() -> None:
    [secret] = kinds("Secret")
    assert set(secret["stringData"]) <= set(Settings.model_fields)
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REDIS_URL", "ENCRYPTION_KEY"} <= set(secret["stringData"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_service_and_each_disruption_budget_select_one_deployment() -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in kinds("Deployment")}
    [service] = kinds("Service")
    assert [n for n, labels in pods.items() if _selects(service["spec"]["selector"], labels)] == ["connect-dynamics-web"]
    budgets = kinds("PodDisruptionBudget")
    selected = sorted(n for b in budgets for n, labels in pods.items()
                      if _selects(b["spec"]["selector"]["matchLabels"], labels))
    assert selected == sorted(pods)


# -- the image ------------------------------------------------------------------------------------
def test_the_base_image_is_pinned_by_digest() -> None:
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert default and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default[1])
    assert "FROM ${PYTHON_IMAGE}" in DOCKERFILE


def test_the_image_installs_the_hashed_lock_before_the_code_and_no_emulator() -> None:
    lock_install = DOCKERFILE.index("pip install --require-hashes -r requirements.lock")
    assert DOCKERFILE.index("COPY requirements.lock") < lock_install < DOCKERFILE.index("COPY bot")
    assert "pip install --no-deps --no-build-isolation --check-build-dependencies ." in DOCKERFILE
    assert not re.search(r"^COPY .*\b(sandbox|tests|bench)\b", DOCKERFILE, re.MULTILINE)
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"sandbox", "tests", "bench", ".venv", ".env"} <= ignored
    assert re.search(r"^USER 10001$", DOCKERFILE, re.MULTILINE)


def test_the_image_healthcheck_fits_each_process() -> None:
    assert 'CMD ["connect-dynamics", "probe", "auto"]' in DOCKERFILE
    assert process_of(["/usr/local/bin/python", "/usr/local/bin/connect-dynamics", "serve"]) == "serve"


def _pins(lock: str) -> dict[str, list[str]]:
    """name -> its hashes, for every pinned requirement of the lock."""
    pins: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", block)
        if pin:
            pins[re.sub(r"[-_.]+", "-", pin[1]).lower()] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
    return pins


def test_the_lock_pins_every_production_dependency_with_hashes() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", d)[0]).lower() for d in dependencies}
    pins = _pins((ROOT / "requirements.lock").read_text())
    assert names <= set(pins)
    assert all(pins.values()), [name for name, hashes in pins.items() if not hashes]
    assert not {"fakeredis", "trustme", "aiosmtpd", "websockets", "pytest"} & set(pins)


@pytest.mark.parametrize(("argv", "process"), [
    (["/usr/local/bin/python", "/usr/local/bin/connect-dynamics", "worker"], "worker"),
    (["/sbin/docker-init", "--", "connect-dynamics", "socket"], "socket"),
    (["python", "-m", "bot.cli", "serve"], "serve"),
    (["connect-dynamics", "demo"], None),
    (["redis-server", "worker"], None),
    ([""], None),
])
def test_probe_auto_reads_the_process_from_its_command_line(argv: list[str], process: str | None) -> None:
    assert process_of(argv) == process


def test_the_env_example_names_only_settings_and_the_compose_password() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert names - set(Settings.model_fields) == {"REDIS_PASSWORD"}
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ENCRYPTION_KEY", "MARKETO_BASE_URL"} <= names
