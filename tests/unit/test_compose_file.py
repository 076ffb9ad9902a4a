"""docker-compose.yml: valid Compose, and the production properties issue 8 asks for."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.errors import SettingsError
from app.mail_config import MailConfig
from app.settings import Settings, check_web_exposure, load_settings
from tests.support.compose_files import (
    APP_SERVICES,
    COMPOSE_SCHEMA,
    ROOT,
    load_compose,
    raw_compose,
    service_environment,
)

SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE|API_KEY|CREDENTIAL", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _kafka_version_of_the_local_broker() -> str:
    pom = ET.parse(ROOT / "app" / "kafka" / "pom.xml").getroot()
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.find("m:properties/m:kafka.version", namespace)
    assert version is not None and version.text
    return version.text.strip()


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    raw_errors = [e.message for e in validator.iter_errors(raw_compose())]
    assert raw_errors == []


def test_the_schema_check_rejects_a_broken_compose_file(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    misspelt = copy.deepcopy(compose)
    misspelt["services"]["worker"]["comand"] = misspelt["services"]["worker"].pop("command")
    assert any("comand" in e.message for e in validator.iter_errors(misspelt))
    mistyped = copy.deepcopy(compose)
    mistyped["services"]["kafka"]["ports"] = "127.0.0.1:9092:9092"
    assert any("ports" in e.absolute_path for e in validator.iter_errors(mistyped))


def test_the_stack_has_kafka_in_kraft_mode_the_app_and_mailpit(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "worker", "simulator", "scheduler", "mailpit"}
    assert services["kafka"]["image"] == f"apache/kafka:{_kafka_version_of_the_local_broker()}"
    kafka = service_environment(services["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any(
        "ZOOKEEPER" in name for s in services.values() for name in service_environment(s)
    )
    for name in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
        "KAFKA_MIN_INSYNC_REPLICAS",
    ):
        assert kafka[name] == "1", name
    assert services["mailpit"]["image"].startswith("axllent/mailpit:v")


def test_the_app_services_run_the_commands_of_the_readme(compose: dict[str, Any]) -> None:
    commands = {name: compose["services"][name]["command"] for name in APP_SERVICES}
    assert commands == {
        "worker": ["clickstream", "worker", "--processes", "auto"],
        "simulator": ["clickstream", "simulate", "--scenario", "flash-sale"],
        "scheduler": ["clickstream", "scheduler"],
    }
    images = {compose["services"][name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert compose["services"][name]["build"]["context"] == "."


@pytest.mark.parametrize("name", ["kafka", "worker", "simulator", "scheduler", "mailpit"])
def test_every_service_runs_as_non_root_restarts_and_has_a_healthcheck(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    _assert_non_root(name, service)
    assert service.get("restart") in ("unless-stopped", "always", "on-failure")
    check = service.get("healthcheck", {})
    assert not check.get("disable")
    assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL")
    assert "ALL" in service.get("cap_drop", [])


def _assert_non_root(name: str, service: dict[str, Any]) -> None:
    user = str(service.get("user", ""))
    assert user, f"{name} sets no user: it would run as the image's default user"
    assert user.split(":")[0] not in ("root", "0")


def test_data_dir_and_worker_state_live_in_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    mounts: dict[str, dict[str, str]] = {}
    for name, service in compose["services"].items():
        mounts[name] = {}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in named, f"{name} mounts {source}, not a named volume"
            mounts[name][target] = source
    worker_data = service_environment(compose["services"]["worker"])["DATA_DIR"]
    assert worker_data in mounts["worker"]
    assert mounts["worker"].get(f"{worker_data}/worker-state") not in (
        None,
        mounts["worker"][worker_data],
    )
    scheduler_data = service_environment(compose["services"]["scheduler"])["DATA_DIR"]
    assert mounts["scheduler"][scheduler_data] == mounts["worker"][worker_data]
    kafka_logs = service_environment(compose["services"]["kafka"])["KAFKA_LOG_DIRS"]
    assert kafka_logs in mounts["kafka"]


def test_every_published_port_is_bound_to_localhost(compose: dict[str, Any]) -> None:
    published = [
        (name, port) for name, s in compose["services"].items() for port in s.get("ports", [])
    ]
    assert {name for name, _ in published} >= {"kafka", "worker", "mailpit"}
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


def test_the_worker_web_server_is_reachable_through_its_localhost_port(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    env = service_environment(worker)
    assert env["WEB_HOST"] == "0.0.0.0"
    container_ports = [port.rsplit(":", 1)[1] for port in worker["ports"]]
    assert env["WEB_PORT"] in container_ports
    # A wildcard bind advertises the host name to the other workers: it must resolve.
    assert worker["hostname"] == "worker"


def test_the_web_api_is_anonymous_only_behind_a_localhost_binding(
    compose: dict[str, Any], clean_env: Path
) -> None:
    """WEB_HOST=0.0.0.0 needs WEB_TOKEN or WEB_ALLOW_ANONYMOUS; the opt-out is safe only
    because the port is published on 127.0.0.1 alone."""
    worker = compose["services"]["worker"]
    env = {k.lower(): v for k, v in service_environment(worker).items()}
    assert env["web_allow_anonymous"] == "true"
    assert all(port.startswith("127.0.0.1:") for port in worker["ports"])
    check_web_exposure(load_settings(**env))
    del env["web_allow_anonymous"]
    with pytest.raises(SettingsError, match="WEB_TOKEN"):
        check_web_exposure(load_settings(**env))
    check_web_exposure(load_settings(**env, web_token="from-dotenv"))


def test_the_file_holds_no_secrets() -> None:
    for name, service in raw_compose()["services"].items():
        for key, value in service_environment(service).items():
            assert not SECRET_NAME.search(key), f"{name} sets {key}={value!r}: put it in .env"
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(?i)(password|token|secret)\s*[:=]\s*\S", text)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_read_an_optional_env_file(compose: dict[str, Any], name: str) -> None:
    assert compose["services"][name]["env_file"] == [{"path": ".env", "required": False}]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_variables_are_settings_and_start_up(
    compose: dict[str, Any], name: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown names would be ignored silently; a bad combination stops the container."""
    env = service_environment(compose["services"][name])
    known = {field.upper() for field in Settings.model_fields}
    assert set(env) <= known, f"not settings: {set(env) - known}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    check_web_exposure(settings)
    if name == "scheduler":
        MailConfig.from_settings(settings)


def test_app_services_reach_kafka_and_mailpit_on_their_listeners(compose: dict[str, Any]) -> None:
    kafka = service_environment(compose["services"]["kafka"])
    advertised = {item.split("://")[1] for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name in ("worker", "simulator"):
        servers = service_environment(compose["services"][name])["KAFKA_BOOTSTRAP_SERVERS"]
        assert set(servers.split(",")) <= advertised
        assert not servers.startswith("localhost")
    scheduler = service_environment(compose["services"]["scheduler"])
    assert scheduler["SMTP_HOST"] == "mailpit"
    mailpit_ports = [port.rsplit(":", 1)[1] for port in compose["services"]["mailpit"]["ports"]]
    assert scheduler["SMTP_PORT"] in mailpit_ports


def test_a_real_smtp_server_in_dotenv_replaces_mailpit() -> None:
    compose = load_compose({"SMTP_HOST": "smtp.example.org", "SMTP_PORT": "587"})
    scheduler = service_environment(compose["services"]["scheduler"])
    assert (scheduler["SMTP_HOST"], scheduler["SMTP_PORT"]) == ("smtp.example.org", "587")
