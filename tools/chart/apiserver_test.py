"""Installs every scenario of helm/ci/ into a real Kubernetes API server, then uninstalls it (make chart).

A throwaway control plane on the loopback interface: etcd (Debian's etcd-server) and kube-apiserver (built by
tools/chart/build-apiserver.sh), with its own certificates in a temporary folder; both are stopped and the folder
removed at the end, also on failure. Then, per scenario, in a namespace of its own:

1. the test-owned CRDs (helm/tests/crds/) are applied and established;
2. `helm install` must be accepted: admission, the built-in types' validation, and the CRDs' schemas (with
   strict field validation, so an unknown field is an error, not a silently pruned field);
3. every object the chart rendered must exist in the server;
4. `helm uninstall` must leave nothing in the namespace (every listable namespaced type is looked at).

No controllers and no nodes run: Deployments get no Pods, custom resources no operator. docs/deploy.md says what
this proves and what it cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
CRDS = CHART / "tests" / "crds"
CACHE = Path(os.environ.get("THB_CHART_CACHE", Path.home() / ".cache" / "thb-chart"))
BIN = CACHE / "bin"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificates(folder: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=thb-chart-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject, ext in (
        ("server", "/CN=kube-apiserver", "server.ext"),
        ("admin", "/O=system:masters/CN=thb-chart-test", "client.ext"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", ext, "-out", f"{name}.crt", cwd=folder)  # fmt: skip
    openssl("genrsa", "-out", "sa.key", "2048", cwd=folder)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


class ApiServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="thb-chart-apiserver."))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.kubeconfig = self.folder / "kubeconfig"

    def __enter__(self) -> ApiServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def spawn(self, name: str, argv: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        )

    def start(self) -> None:
        etcd = shutil.which("etcd")
        assert etcd, "etcd not found: tools/chart/build-apiserver.sh installs it"
        apiserver = BIN / "kube-apiserver"
        assert apiserver.exists(), f"{apiserver} not found: run tools/chart/build-apiserver.sh"
        certificates(self.folder)
        client, peer, secure = free_ports(3)
        self.spawn("etcd", [
            etcd, "--name", "thb-chart", "--data-dir", str(self.folder / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"thb-chart=http://127.0.0.1:{peer}", "--unsafe-no-fsync",
        ])  # fmt: skip
        f = self.folder
        self.spawn("kube-apiserver", [
            str(apiserver), f"--etcd-servers=http://127.0.0.1:{client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={secure}",
            f"--tls-cert-file={f / 'server.crt'}", f"--tls-private-key-file={f / 'server.key'}",
            f"--client-ca-file={f / 'ca.crt'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={f / 'sa.pub'}", f"--service-account-signing-key-file={f / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
            f"--cert-dir={f / 'certs'}", "--profiling=false",
        ])  # fmt: skip
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {
                                "server": f"https://127.0.0.1:{secure}",
                                "certificate-authority": str(f / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "admin",
                            "user": {
                                "client-certificate": str(f / "admin.crt"),
                                "client-key": str(f / "admin.key"),
                            },
                        }
                    ],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                    "current-context": "test",
                }
            )
        )
        self.kubeconfig.chmod(0o600)
        started = time.monotonic()
        while time.monotonic() - started < 120:
            for process in self.processes:
                assert process.poll() is None, f"{process.args[0]} exited: {self.tail()}"
            if self.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() == "ok":
                print(f"api server ready after {time.monotonic() - started:.0f} s")
                return
            time.sleep(1)
        raise AssertionError(f"api server not ready after 120 s: {self.tail()}")

    def tail(self) -> str:
        return "\n".join(
            log.name + ": " + " | ".join(log.read_text(errors="replace").splitlines()[-5:])
            for log in self.folder.glob("*.log")
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{BIN}:{os.environ['PATH']}"}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(argv), capture_output=True, text=True, env=self.env())
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: {result.stderr.strip()[-3000:]}")
        return result

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "kubectl"), *args, check=check)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "helm"), *args, check=check)


def namespaced_objects(server: ApiServer, namespace: str, types: list[str]) -> set[str]:
    out = server.kubectl("get", ",".join(types), "-n", namespace, "-o", "json", "--ignore-not-found")
    items: list[dict[str, Any]] = json.loads(out.stdout or '{"items": []}')["items"]
    return {f"{item['kind']}/{item['metadata']['name']}" for item in items}


def refusal_check(server: ApiServer, folder: Path) -> int:
    """The server really checks the CRD schemas: a KafkaTopic with a misspelt field is refused."""
    bad = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "misspelt", "namespace": "default"},
        "spec": {"topicName": "misspelt", "partition": 3, "replicas": 3},
    }
    (folder / "misspelt.yaml").write_text(yaml.safe_dump(bad))
    result = server.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-f", str(folder / "misspelt.yaml"), check=False
    )
    if result.returncode != 0 and "partition" in result.stderr:
        print("ok   the API server refuses a custom resource with an unknown field")
        return 1
    print(
        f"FAIL the API server accepted a custom resource with an unknown field: {result.stdout}{result.stderr}"
    )
    return 0


def main() -> int:
    scenarios = sorted(CHART.glob("ci/*-values.yaml"))
    passed = failed = 0
    with ApiServer() as server:
        for path in sorted(CRDS.glob("*.yaml")):
            server.kubectl("apply", "--server-side", "-f", str(path))
        server.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        types = [
            line
            for line in server.kubectl(
                "api-resources", "--verbs=list", "--namespaced", "-o", "name"
            ).stdout.split()
            if line not in ("events", "events.events.k8s.io")
        ]
        namespace_dir = server.folder / "manifests"
        namespace_dir.mkdir()
        refused = refusal_check(server, namespace_dir)
        passed += refused
        failed += 1 - refused
        for scenario in scenarios:
            name = scenario.name.removesuffix("-values.yaml")
            namespace = f"chart-{name}"
            start = time.monotonic()
            try:
                server.kubectl("create", "namespace", namespace)
                before = namespaced_objects(server, namespace, types)
                rendered = [
                    doc
                    for doc in yaml.safe_load_all(
                        server.helm(
                            "template", "thb", str(CHART), "-n", namespace, "-f", str(scenario)
                        ).stdout
                    )
                    if doc
                ]
                # The API server's own strict validation of every object (unknown fields are errors), then helm.
                manifest = namespace_dir / f"{name}.yaml"
                manifest.write_text(yaml.safe_dump_all(rendered))
                server.kubectl(
                    "create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(manifest)
                )
                server.helm(
                    "install", "thb", str(CHART), "-n", namespace, "-f", str(scenario), "--timeout", "60s"
                )
                status = json.loads(server.helm("status", "thb", "-n", namespace, "-o", "json").stdout)
                assert status["info"]["status"] == "deployed", f"{name}: release {status['info']['status']}"
                present = namespaced_objects(server, namespace, types)
                missing = {f"{doc['kind']}/{doc['metadata']['name']}" for doc in rendered} - present
                assert not missing, f"{name}: not in the server after install: {sorted(missing)}"
                server.helm("uninstall", "thb", "-n", namespace, "--wait", "--timeout", "60s")
                left = namespaced_objects(server, namespace, types) - before
                assert not left, f"{name}: left after helm uninstall: {sorted(left)}"
                server.kubectl("delete", "namespace", namespace, "--wait=false")
            except AssertionError as error:
                failed += 1
                print(f"FAIL install/uninstall {name} ({time.monotonic() - start:.1f} s)\n  {error}")
            else:
                passed += 1
                print(
                    f"ok   install/uninstall {name}: {len(rendered)} objects ({time.monotonic() - start:.1f} s)"
                )
    print(f"chart-apiserver: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
