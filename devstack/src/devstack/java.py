"""Pick the JDK for the local JVM servers: a newer LTS beside the default if the machine has one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from devstack.process import StackError

# Keycloak deprecated JDK 17; prefer a newer JDK when one is installed beside the default.
_PREFERRED = [
    "temurin-25-jdk-amd64",
    "temurin-21-jdk-amd64",
    "java-21-openjdk-amd64",
    "java-17-openjdk-amd64",
]


def java_home() -> Path:
    if home := os.environ.get("THB_JAVA_HOME"):
        return Path(home)
    for name in _PREFERRED:
        candidate = Path("/usr/lib/jvm") / name
        if (candidate / "bin" / "java").exists():
            return candidate
    java = shutil.which("java")
    if java is None:
        raise StackError("no JDK found: install a JDK 17+ or set THB_JAVA_HOME")
    return Path(java).resolve().parent.parent


def java_bin() -> str:
    return str(java_home() / "bin" / "java")
