"""The token rule: a worker reachable from other machines needs WEB_TOKEN or an explicit opt-out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import SettingsError
from app.settings import check_web_exposure, load_settings
from app.web_host import advertised_host, is_loopback

FAUST = str(Path(sys.executable).parent / "faust")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("worker.example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_needs_a_token_or_the_opt_out(clean_env: Path) -> None:
    check_web_exposure(load_settings())
    with pytest.raises(SettingsError) as caught:
        check_web_exposure(load_settings(web_host="0.0.0.0"))
    assert "WEB_TOKEN" in str(caught.value) and "WEB_ALLOW_ANONYMOUS=true" in str(caught.value)
    check_web_exposure(load_settings(web_host="0.0.0.0", web_token="t"))
    check_web_exposure(load_settings(web_host="0.0.0.0", web_allow_anonymous=True))


def test_a_wildcard_bind_advertises_the_host_name() -> None:
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    assert advertised_host("0.0.0.0") not in ("0.0.0.0", "")


def test_the_worker_refuses_to_start_in_one_line(clean_env: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(clean_env), "WEB_HOST": "0.0.0.0"}
    done = subprocess.run([FAUST, "-A", "agents.worker_app", "worker", "-l", "info"], env=env, cwd=clean_env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: WEB_TOKEN=None is not allowed: expected a token, because WEB_HOST='0.0.0.0' is "
        "reachable from other machines (or set WEB_ALLOW_ANONYMOUS=true to serve the API to "
        "anyone without one). Fix WEB_TOKEN in the environment or in .env."
    ]
