"""The Kafka broker's jars, fetched once from Maven Central into a cache.

``deploy/kafka/pom.xml`` names the broker's artifacts; :func:`fetch_jars` copies their
runtime classpath into ``.cache/kafka/libs`` and does it again only when the pom changed.
:func:`find_java` finds the Java runtime that Maven and the broker both need.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DEFAULT_CACHE: Path = REPO_ROOT / ".cache" / "kafka"
POM: Path = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
# Maven resolves a plugin by version; pinned here as in the pom so a fetch is reproducible.
COPY_DEPENDENCIES = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_java() -> str:
    # JAVA_HOME wins over PATH, as with Kafka's own scripts.
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "java not found: the Kafka broker needs a Java 17+ runtime on PATH or in JAVA_HOME"
        )
    return java


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    # Parallel test workers or two `make` targets may fetch at once; one copy at a time.
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_jars(cache: Path = DEFAULT_CACHE) -> Path:
    """Copy the broker's runtime classpath into ``cache/libs`` unless it is already current.

    The copy is redone when the pom changed since the last fetch (its sha256 is kept in
    ``cache/libs.sha256``). Returns the libs directory.
    """
    return copy_classpath(POM, cache, "kafka_*.jar", "the Kafka jars")


def copy_classpath(pom: Path, cache: Path, expect: str, what: str) -> Path:
    """Copy the runtime classpath of ``pom`` into ``cache/libs`` unless it is already current
    (the pom's sha256 is kept in ``cache/libs.sha256``); ``expect`` is a glob one of the jars
    must match. Returns the libs directory."""
    libs = cache / "libs"
    stamp = cache / "libs.sha256"
    pom_hash = _sha256(pom)
    with _locked(cache / ".fetch.lock"):
        if libs.is_dir() and stamp.is_file() and stamp.read_text().strip() == pom_hash:
            return libs
        find_java()  # Maven itself runs on Java; fail with the clearer message first.
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                f"mvn not found: Apache Maven is needed once to fetch {what} "
                f"into {libs} (apt-get install maven)"
            )
        # A fresh directory, swapped in at the end: jars left over from an older pom would
        # otherwise sit on the classpath next to their replacements.
        staging = cache / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                COPY_DEPENDENCIES,
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob(expect)):
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise RuntimeError(f"fetching {what} with Maven failed:\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        stamp.write_text(pom_hash + "\n")
        return libs
