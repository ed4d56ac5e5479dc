"""Keycloak 26 for the local stack: downloaded from Maven Central, built once, started with the realm imported.

Layout (see docs/auth.md):
- the pinned distribution is unzipped once into ``cache_dir()/keycloak-<version>`` and ``kc.sh build`` runs once
  per (version, build options, JDK); a marker file records that, so later starts use ``start --optimized``;
- every start gets a fresh Keycloak home ``<data>/home-<port>`` (``data`` defaults to ``data_dir("keycloak")``):
  its ``data`` folder (H2 database, transaction logs, the realm to import) is new, while ``lib``, ``themes``,
  ``providers`` and ``conf`` are symlinks into the shared install. A fresh database makes the import
  deterministic. A home is locked while its server runs, so a test session never deletes the home of a
  ``make run`` in the same checkout; unlocked homes are leftovers and are removed at the next start;
- the realm file imported is ``realm/base-realm.json`` merged with ``realm/local-realm.json``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import IO, Any

import httpx

from devstack.downloads import MAVEN_CENTRAL, fetch
from devstack.java import java_home as find_java_home
from devstack.paths import REPO_ROOT, cache_dir, data_dir
from devstack.process import ManagedProcess, StackError, free_port, progress

# The local realm's demo users share this password and log in through its `thb-test` client (realm/README.md):
# local only, never in the chart's realm.
DEMO_PASSWORD = "thb-local-demo-1"
TEST_CLIENT = "thb-test"
KEYCLOAK_VERSION = "26.7.3"
# sha256 computed once from the Maven Central artifact (whose published .sha1 matched) and pinned here.
KEYCLOAK_SHA256 = "27a6535553c3cdcd083872ba40629efafb3475e3b758e0c6f691395561dd0f1f"
KEYCLOAK_URL = (
    f"{MAVEN_CENTRAL}/org/keycloak/keycloak-quarkus-dist/{KEYCLOAK_VERSION}/"
    f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
)
REALM_NAME = "thb"
REALM_DIR = REPO_ROOT / "realm"
ADMIN_USER = "admin"

# Build-time options: changing them needs a new `kc.sh build`, hence they key the build marker.
# dev-file = embedded H2 on disk (local only). (`--cache` became a runtime option in 26.x: see start().)
BUILD_OPTIONS = ("--db=dev-file", "--health-enabled=true")

DEFAULT_HEAP = "-Xms128m -Xmx768m"


def _merge(base: Any, overlay: Any) -> Any:
    """Deep merge of two realm representations: the local file adds to or overrides the base file.

    Lists of objects are merged by their identity field (clientId, username, name) so the local file can add a
    secret to a base client without repeating it; other lists from the overlay replace the base list.
    """
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(overlay, list):
        for ident in ("clientId", "username", "name", "alias"):
            if all(isinstance(item, dict) and ident in item for item in base + overlay):
                result = list(base)
                index = {item[ident]: pos for pos, item in enumerate(result)}
                for item in overlay:
                    if item[ident] in index:
                        result[index[item[ident]]] = _merge(result[index[item[ident]]], item)
                    else:
                        result.append(item)
                return result
        return overlay
    return overlay


def merged_realm(base_file: Path | None = None, local_file: Path | None = None) -> dict[str, Any]:
    base = json.loads((base_file or REALM_DIR / "base-realm.json").read_text())
    local = json.loads((local_file or REALM_DIR / "local-realm.json").read_text())
    result = _merge(base, local)
    assert isinstance(result, dict)
    return result


def local_client_secret(client_id: str, local_file: Path | None = None) -> str | None:
    """The secret realm/local-realm.json gives `client_id` (a national system, or a service that exchanges
    tokens), or None. Local mode only: outside it Keycloak generates the secrets (realm/README.md)."""
    local = json.loads((local_file or REALM_DIR / "local-realm.json").read_text())
    for client in local.get("clients", []):
        if client.get("clientId") == client_id and isinstance(client.get("secret"), str):
            return str(client["secret"])
    return None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def admin_password() -> str:
    """Generated once per checkout into the ignored .local folder; never a default in code."""
    path = data_dir("keycloak") / "admin-password"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(18) + "\n")
    return path.read_text().strip()


class KeycloakServer:
    name = "keycloak"

    def __init__(self, port: int | None = None, data: Path | None = None, heap: str | None = None) -> None:
        self.port = port or free_port()
        self.data = data or data_dir("keycloak")
        # Health lives on the management interface (default 9000); a free port avoids clashes between stacks.
        self.management_port = free_port()
        self.heap = heap or os.environ.get("KEYCLOAK_HEAP", DEFAULT_HEAP)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/realms/{REALM_NAME}"
        self.admin_user = ADMIN_USER
        self.admin_password = ""
        self.startup_seconds: float | None = None
        self.process: ManagedProcess | None = None
        self._home_lock: IO[str] | None = None

    # -- installation -----------------------------------------------------------------------------------
    def _install(self) -> Path:
        home = cache_dir() / f"keycloak-{KEYCLOAK_VERSION}"
        if (home / "bin" / "kc.sh").exists():
            return home
        archive = fetch(KEYCLOAK_URL, f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip", KEYCLOAK_SHA256)
        progress(f"unpacking Keycloak {KEYCLOAK_VERSION}")
        staging = cache_dir() / f".keycloak-{KEYCLOAK_VERSION}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)
        for script in (staging / f"keycloak-{KEYCLOAK_VERSION}" / "bin").glob("*.sh"):
            script.chmod(0o755)
        try:
            # rename is atomic: a concurrent installer either wins or finds the finished folder
            (staging / f"keycloak-{KEYCLOAK_VERSION}").rename(home)
        except OSError:
            if not (home / "bin" / "kc.sh").exists():
                raise
        shutil.rmtree(staging, ignore_errors=True)
        return home

    def _java_env(self, java_home: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["JAVA_HOME"] = str(java_home)
        env["JAVA_OPTS_KC_HEAP"] = self.heap
        env.pop("JAVA_OPTS", None)  # kc.sh would otherwise drop its own tuned defaults
        return env

    def _build(self, install: Path, java_home: Path) -> None:
        key = hashlib.sha256(
            f"{KEYCLOAK_VERSION}|{' '.join(BUILD_OPTIONS)}|{java_home}".encode()
        ).hexdigest()[:16]
        marker = install / f".thb-build-{key}"
        lock_path = install / ".thb-build.lock"
        with open(lock_path, "w") as lock:
            # a shared cache may be used by two stacks at once; the build rewrites lib/quarkus
            fcntl.flock(lock, fcntl.LOCK_EX)
            if marker.exists():
                return
            for old in install.glob(".thb-build-*"):
                if old.name != lock_path.name:
                    old.unlink()
            progress("building Keycloak once for this configuration (about 30 s)")
            log = self.data / "build.log"
            with open(log, "wb") as out:
                result = subprocess.run(
                    [str(install / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
                    env=self._java_env(java_home),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=600,
                    check=False,
                )
            if result.returncode != 0:
                raise StackError(f"kc.sh build failed (exit {result.returncode}); see {log}")
            marker.write_text(f"{KEYCLOAK_VERSION} {' '.join(BUILD_OPTIONS)} {java_home}\n")

    def _fresh_home(self, install: Path) -> Path:
        self.data.mkdir(parents=True, exist_ok=True)
        for old in self.data.glob("home-*"):
            if not old.is_dir():
                continue
            with open(old.with_suffix(".lock"), "a") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running server owns it
                shutil.rmtree(old, ignore_errors=True)
                old.with_suffix(".lock").unlink(missing_ok=True)
                (self.data / f"keycloak-{old.name.removeprefix('home-')}.log").unlink(missing_ok=True)
        home = self.data / f"home-{self.port}"
        self._home_lock = open(home.with_suffix(".lock"), "a")  # noqa: SIM115 - held until stop()
        fcntl.flock(self._home_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(home, ignore_errors=True)
        (home / "data" / "import").mkdir(parents=True)
        for shared in ("bin", "lib", "themes", "providers", "conf"):
            (home / shared).symlink_to(install / shared)
        (self.data / f"keycloak-{self.port}.log").unlink(missing_ok=True)
        return home

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        self.data.mkdir(parents=True, exist_ok=True)
        install = self._install()
        java_home = find_java_home()  # THB_JAVA_HOME overrides it; Keycloak 26.7 verified here on Temurin 25
        self._build(install, java_home)
        self.admin_password = admin_password()
        realm_json = json.dumps(merged_realm(), sort_keys=True)
        home = self._fresh_home(install)
        template = self._template_dir(realm_json)
        try:
            if not (template / "keycloakdb.mv.db").exists():
                # First start for this realm: import it (schema + realm + admin, ~12 s), stop cleanly and keep the
                # database as a template. Later starts copy the template and skip all of that.
                _write_private(home / "data" / "import" / f"{REALM_NAME}-realm.json", realm_json)
                self._launch(home, install, java_home, import_realm=True)
                self._stop_process()
                self._save_template(home, template)
                shutil.rmtree(home / "data" / "import", ignore_errors=True)
            else:
                (home / "data" / "h2").mkdir(parents=True)
                for item in template.iterdir():
                    shutil.copy2(item, home / "data" / "h2" / item.name)
            self._launch(home, install, java_home, import_realm=False)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        progress(f"Keycloak ready at {self.issuer} in {self.startup_seconds:.1f}s")

    def _template_dir(self, realm_json: str) -> Path:
        """Keyed by everything that shapes the database: version, build, realm files and admin password."""
        key = hashlib.sha256(
            "|".join((KEYCLOAK_VERSION, *BUILD_OPTIONS, realm_json, self.admin_password)).encode()
        ).hexdigest()[:16]
        return self.data / f"template-{key}"

    def _save_template(self, home: Path, template: Path) -> None:
        staging = self.data / f".template-{self.port}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(home / "data" / "h2", staging)
        for old in self.data.glob("template-*"):
            shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(template)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent start saved the same template first

    def _launch(self, home: Path, install: Path, java_home: Path, *, import_realm: bool) -> None:
        env = self._java_env(java_home)
        env["KC_BOOTSTRAP_ADMIN_USERNAME"] = self.admin_user
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = self.admin_password
        argv = [
            str(install / "bin" / "kc.sh"),
            # kc.sh derives the home from its own path; the later -D wins, so the data folder is per start
            f"-Dkc.home.dir={home}",
            "start",
            "--optimized",
            *(["--import-realm"] if import_realm else []),
            "--http-enabled=true",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            # A fixed public URL makes iss the same whichever host name a client used (localhost or 127.0.0.1),
            # so it always equals OIDC_ISSUER, which the services compare it with.
            f"--hostname={self.base_url}",
            "--hostname-strict=false",
            # one node: no Infinispan cluster, so no JGroups ports (7800/57800) that two stacks would fight over
            "--cache=local",
            f"--db-url=jdbc:h2:file:{home}/data/h2/keycloakdb;NON_KEYWORDS=VALUE",
            "--log-level=info",
        ]
        log_path = self.data / f"keycloak-{self.port}.log"
        self.process = ManagedProcess(self.name, argv, log_path, env=env, cwd=home)
        progress(
            f"starting Keycloak on port {self.port}"
            + (" (first start: importing the realm)" if import_realm else "")
        )
        self.process.start()
        self.process.wait_until(self._discovery_ready, timeout=180, what="serving the realm")

    def _discovery_ready(self) -> bool:
        url = f"{self.issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local http only
            return bool(response.status == 200 and json.load(response).get("issuer") == self.issuer)

    def _stop_process(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None

    def stop(self) -> None:
        self._stop_process()
        if self._home_lock is not None:
            self._home_lock.close()
            self._home_lock = None

    def env(self) -> dict[str, str]:
        return {
            "OIDC_ISSUER": self.issuer,
            "KEYCLOAK_URL": self.base_url,
            "KEYCLOAK_REALM": REALM_NAME,
            "KEYCLOAK_ADMIN_USER": self.admin_user,
            "KEYCLOAK_ADMIN_PASSWORD": self.admin_password,
        }


DOCS_CLIENT = "api-docs"


def allow_docs_page(env: dict[str, str], gateway_url: str) -> None:
    """Let the API reference page of a local gateway log in through the realm's `api-docs` client.

    The base realm names no gateway address (each deployment registers its own public URL). A local gateway
    gets a free port at start, so its origin and its `/docs/oauth2-redirect.html` are added to the client here,
    through the admin API of the local Keycloak: the redirect back to the page, and the page's call to the token
    endpoint (CORS, `webOrigins`), then accept that exact origin and nothing wider."""
    import httpx

    base, realm = env["KEYCLOAK_URL"], env["KEYCLOAK_REALM"]
    token = httpx.post(
        f"{base}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": env["KEYCLOAK_ADMIN_USER"],
            "password": env["KEYCLOAK_ADMIN_PASSWORD"],
        },
        timeout=30,
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    clients = f"{base}/admin/realms/{realm}/clients"
    found = httpx.get(clients, params={"clientId": DOCS_CLIENT}, headers=headers, timeout=30)
    found.raise_for_status()
    client = found.json()[0]
    origin = gateway_url.rstrip("/")
    client["redirectUris"] = sorted({*client.get("redirectUris", []), f"{origin}/docs/oauth2-redirect.html"})
    client["webOrigins"] = sorted({*client.get("webOrigins", []), origin})
    httpx.put(f"{clients}/{client['id']}", json=client, headers=headers, timeout=30).raise_for_status()


def password_grant(
    issuer: str, username: str, password: str = DEMO_PASSWORD, timeout: float = 10
) -> httpx.Response:
    """A demo user's login at the realm `issuer` (the password grant of the local test client): the tests and the
    demo story log in with it; each caller decides what a refusal means to it."""
    return httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": TEST_CLIENT, "username": username, "password": password},
        timeout=timeout,
    )
