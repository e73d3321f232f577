"""Install a Debian package when its binary is missing (as root), or say what to run."""

from __future__ import annotations

import os
import shutil
import subprocess

from .proc import ServiceError


def ensure_binary(binary: str, package: str) -> str:
    found = shutil.which(binary) or (f"/usr/bin/{binary}" if os.path.exists(f"/usr/bin/{binary}")
                                     else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(f"{binary} is not installed: run `sudo apt-get install -y {package}`.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise ServiceError(f"`{' '.join(cmd)}` failed:\n{(res.stdout + res.stderr)[-2000:]}")
    found = shutil.which(binary)
    if not found:
        raise ServiceError(f"installed {package} but {binary} is still not on PATH")
    return found
