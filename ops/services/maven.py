"""Jars from Maven Central: ``mvn dependency:copy-dependencies`` on one of our POMs (which
build nothing) into a cache folder that git ignores, once; a later call finds them there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .proc import ServiceError


def resolve_jars(pom: Path, jars: Path, marker: str, what: str,
                 properties: dict[str, str] | None = None) -> Path:
    """The folder ``jars`` holding ``pom``'s runtime jars, resolved unless ``marker`` (one of
    them) is there already; ServiceError says what is missing (Maven, Maven Central)."""
    if (jars / marker).exists():
        return jars
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(f"Maven is not installed; it resolves {what} from Maven Central "
                           "(Debian: apt-get install -y maven).")
    tmp = jars.with_name(jars.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp.resolve()}", "-DincludeScope=runtime",
           *(f"-D{k}={v}" for k, v in (properties or {}).items())]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ServiceError(f"Maven could not resolve {what} from Maven Central (is it reachable? "
                           f"is the version served?):\n{(res.stdout + res.stderr)[-2000:]}")
    shutil.rmtree(jars, ignore_errors=True)
    tmp.rename(jars)
    return jars
