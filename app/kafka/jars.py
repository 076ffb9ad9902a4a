"""Fetches the Kafka broker's jars from Maven Central with `mvn`, once, into a user cache."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from app.errors import BrokerError

logger = logging.getLogger(__name__)

_MIN_JAVA = 17


def pom_path() -> Path:
    """The pom that names the broker version and its logging binding."""
    return Path(str(resources.files("app.kafka").joinpath("pom.xml")))


def kafka_version() -> str:
    """The broker version, kept in one place: the pom's `kafka.version` property."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_path().read_text())
    if not match:
        msg = f"{pom_path()} has no <kafka.version>; restore it from git"
        raise BrokerError(msg)
    return match.group(1).strip()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clickstream"


def java_executable() -> str:
    """The `java` to run, after checking it is Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        msg = (
            "Java 17+ is needed to run the local Kafka broker and none was found: "
            "install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
        raise BrokerError(msg)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < _MIN_JAVA:
        msg = (
            f"Java {_MIN_JAVA}+ is needed to run the local Kafka broker, but {java} is Java "
            f"{major or 'of unknown version'}: install OpenJDK 17 or set JAVA_HOME to it"
        )
        raise BrokerError(msg)
    return java


def ensure_jars() -> Path:
    """Return the directory of the broker's jars, fetching them with mvn the first time."""
    version = kafka_version()
    target = cache_root() / f"kafka-{version}"
    if (target / ".complete").exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        msg = (
            f"Maven is needed once to fetch Apache Kafka {version} from Maven Central and was "
            "not found: install it (Debian/Ubuntu: apt-get install maven) and run again"
        )
        raise BrokerError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"kafka-{version}-", dir=target.parent))
    logger.info("fetching Apache Kafka %s jars with mvn into %s", version, target)
    cmd = [
        mvn, "-q", "-B", "-f", str(pom_path()), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        msg = f"mvn could not fetch Apache Kafka {version} (is Maven Central reachable?):\n{tail}"
        raise BrokerError(msg)
    (staging / ".complete").write_text(version)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
