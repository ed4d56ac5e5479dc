"""The chart's fast checks (make chart): lint, render, validate, golden files, security scan, one source of truth.

Run with the chart tools' venv (.venv-chart: kubernetes-validate, checkov, jsonschema, PyYAML) and helm on PATH:

    .venv-chart/bin/python tools/chart/check.py            # every check, every scenario of helm/ci/
    .venv-chart/bin/python tools/chart/check.py --update   # rewrite helm/tests/golden/ from the current chart

What the platform's code reads is asked of the platform's own venv (.venv, `make install`): the topics that
plumbing.kafka takes from openapi/asyncapi.yaml and the topics each consumer subscribes to.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
GOLDEN = CHART / "tests" / "golden"
CRDS = CHART / "tests" / "crds"
RELEASE = "thb"
NAMESPACE = "thb"
# The Kubernetes versions whose schemas (kubernetes-validate) every rendered object must satisfy: the oldest the
# chart supports (Chart.yaml kubeVersion) and the one the API-server test runs.
KUBE_VERSIONS = ("1.30.0", "1.37.0")
WORKER_KINDS = ("relay", "consumer", "scheduler")

failures: list[str] = []


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            start = time.monotonic()
            try:
                fn()
            except AssertionError as error:
                failures.append(f"{name}: {error}")
                print(f"FAIL {name} ({time.monotonic() - start:.1f} s)\n  {error}")
            else:
                print(f"ok   {name} ({time.monotonic() - start:.1f} s)")

        run.__name__ = name
        return run

    return wrap


def helm(*args: str, check_rc: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["helm", *args], capture_output=True, text=True)
    if check_rc and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {result.stderr.strip()}")
    return result


def render(values: Path | None, *extra: str) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    return helm(*args, *extra).stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def scenario_name(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


# ------------------------------------------------------------------------------------ one source of truth


@check("services: the values' services map is the registry (openapi/services.toml)")
def services_match_registry() -> None:
    registry = tomllib.loads((ROOT / "openapi" / "services.toml").read_text())["services"]
    chart = values()["services"]
    assert set(chart) == set(registry), f"chart {sorted(chart)} != registry {sorted(registry)}"
    for name, entry in registry.items():
        ours = chart[name]
        assert ours["package"] == entry["package"], f"{name}: package {ours['package']} != {entry['package']}"
        wanted = {module.rsplit(".", 1)[-1]: module for module in entry.get("workers", [])}
        assert all(kind in WORKER_KINDS for kind in wanted), f"{name}: a worker kind not in {WORKER_KINDS}"
        got = {kind: worker["module"] for kind, worker in ours["workers"].items()}
        assert got == wanted, f"{name}: workers {got} != registry {wanted}"
        assert (ROOT / "docker" / f"{name}.Dockerfile").is_file(), f"no docker/{name}.Dockerfile"
    assert (ROOT / "docker" / "gateway.Dockerfile").is_file(), "no docker/gateway.Dockerfile"


@check("copies: helm/files/ holds the repository's base realm and platform configuration unchanged")
def copies_match() -> None:
    for ours, theirs in (
        ("base-realm.json", "realm/base-realm.json"),
        ("platform.yaml", "config/platform.yaml"),
    ):
        a, b = (CHART / "files" / ours).read_bytes(), (ROOT / theirs).read_bytes()
        assert a == b, f"helm/files/{ours} differs from {theirs}: cp {theirs} helm/files/{ours}"
    rendered = [doc for doc in documents(render(SCENARIOS[0])) if doc["kind"] == "ConfigMap"]
    assert (
        rendered and rendered[0]["data"]["platform.yaml"] == (ROOT / "config" / "platform.yaml").read_text()
    ), "the rendered ConfigMap's platform.yaml is not config/platform.yaml"


def code_topics() -> dict[str, Any]:
    """Ask the platform's code (its own venv) which topics it declares and which ones its consumers read."""
    python = ROOT / ".venv" / "bin" / "python"
    assert python.exists(), ".venv is missing: run make install first"
    script = """
import importlib, json, thb_contracts
from plumbing import kafka
topics = {t.name: [t.partitions, t.retention_ms] for t in kafka.load_topics()}
consumed = {}
for service in thb_contracts.services():
    for module in service.workers:
        names = getattr(importlib.import_module(module), "TOPICS", ())
        consumed[module] = list(names)
published = sorted(set(kafka._event_topics(kafka.asyncapi_path()).values()))
print(json.dumps({"topics": topics, "consumed": consumed, "published": published}))
"""
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, f"reading the code's topics failed: {out.stderr.strip()[-600:]}"
    return json.loads(out.stdout)


@check("topics: chart == openapi/asyncapi.yaml == what the code uses (names, partitions, retention)")
def topics_match() -> None:
    asyncapi = yaml.safe_load((ROOT / "openapi" / "asyncapi.yaml").read_text())
    declared = {
        channel["address"]: [int(channel.get("x-partitions", 1)), int(channel["x-retention-ms"])]
        for channel in asyncapi["channels"].values()
    }
    chart = {
        name: [spec["partitions"], spec["retentionMs"]] for name, spec in values()["kafka"]["topics"].items()
    }
    assert chart == declared, f"kafka.topics in helm/values.yaml {chart} != asyncapi.yaml {declared}"
    code = code_topics()
    assert code["topics"] == declared, f"plumbing.kafka.load_topics() {code['topics']} != asyncapi.yaml"
    for module, names in code["consumed"].items():
        assert set(names) <= set(chart), f"{module} reads {names}, not all in the chart"
    assert set(code["published"]) <= set(chart), f"events go to {code['published']}, not all in the chart"
    rendered = {
        doc["spec"]["topicName"]: doc["spec"]
        for doc in documents(render(SCENARIOS[0]))
        if doc["kind"] == "KafkaTopic"
    }
    assert set(rendered) == set(chart), f"rendered KafkaTopics {sorted(rendered)} != {sorted(chart)}"
    for name, spec in rendered.items():
        assert [spec["partitions"], spec["config"]["retention.ms"]] == chart[name], f"{name}: {spec}"
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2, f"{name}: {spec}"


# ------------------------------------------------------------------------------------ per scenario


@check("helm lint --strict, every scenario")
def lint() -> None:
    for scenario in SCENARIOS:
        helm("lint", "--strict", str(CHART), "-f", str(scenario), "--namespace", NAMESPACE)


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The test-owned CRDs' schemas, made strict: an object that lists its properties takes no others."""

    def strict(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: strict(value) for key, value in node.items()}
            if (
                node.get("type") == "object"
                and "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node.setdefault("additionalProperties", False)
            if node.get("x-kubernetes-int-or-string"):
                node = {"type": ["integer", "string"]}
            return node
        if isinstance(node, list):
            return [strict(item) for item in node]
        return node

    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in documents(path.read_text()):
            group = crd["spec"]["group"]
            for version in crd["spec"]["versions"]:
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schemas[(f"{group}/{version['name']}", crd["spec"]["names"]["kind"])] = schema
    return schemas


def validate_documents(name: str, docs: list[dict[str, Any]], schemas: dict[tuple[str, str], Any]) -> None:
    for doc in docs:
        where = f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (doc["apiVersion"], doc["kind"])
        if key in schemas:
            errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc), key=str)
            assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(f"{where} ({version}): {error.message} at {list(error.path)}") from None
            except kubernetes_validate.SchemaNotFoundError:
                raise AssertionError(f"{where}: no Kubernetes or CRD schema for {key}") from None


def golden_text(scenario: Path) -> str:
    return render(scenario)


@check("render + validate (Kubernetes schemas offline, CRD schemas) + golden files, every scenario")
def render_validate_golden() -> None:
    schemas = crd_schemas()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        name = scenario_name(scenario)
        text = golden_text(scenario)
        validate_documents(name, documents(text), schemas)
        golden = GOLDEN / f"{name}.yaml"
        if UPDATE:
            golden.write_text(text)
            continue
        assert golden.exists(), f"no golden file {golden.relative_to(ROOT)}: run make chart-golden"
        if golden.read_text() != text:
            diff = "".join(
                list(
                    difflib.unified_diff(
                        golden.read_text().splitlines(True), text.splitlines(True), str(golden), "rendered"
                    )
                )[:80]
            )
            raise AssertionError(
                f"{name} differs from its golden file (make chart-golden rewrites it):\n{diff}"
            )
    names = {scenario_name(s) for s in SCENARIOS}
    stale = [p.name for p in GOLDEN.glob("*.yaml") if p.stem not in names]
    assert not stale, f"golden files without a scenario: {stale}"


def bad(label: str, *args: str, expect: str) -> None:
    result = helm("template", RELEASE, str(CHART), "-f", str(SCENARIOS[0]), *args, check_rc=False)
    assert result.returncode != 0, f"{label}: rendered, should have been refused"
    assert expect in result.stderr, f"{label}: refused, but not for {expect!r}: {result.stderr.strip()}"


@check("refusals: unknown keys, wrong types, missing allowed clients, key file or upstreams")
def refusals() -> None:
    bad("unknown top-level key", "--set", "replicaCount=2", expect="additional properties")
    bad("unknown key in a service", "--set", "services.referral.apiPort=1", expect="additional properties")
    bad("unknown worker kind", "--set", "services.referral.workers.cron.enabled=true", expect="cron")
    bad("wrong type", "--set", "gateway.replicas=two", expect="want integer")
    bad("wrong type", "--set-string", "services.referral.enabled=yes", expect="want boolean")
    bad("plain-http public URL", "--set", "publicUrl=http://x.example", expect="publicUrl")
    bad("no allowed clients", "--set", "allowedClients=null", expect="allowedClients")
    bad("no key file", "--set", "keys.existingSecret=", expect="keys.existingSecret is required")
    bad(
        "gateway without an upstream",
        "--set",
        "services.exchange.enabled=false",
        expect="gateway.externalUpstreams.exchange",
    )


@check("hardening: every pod non-root, read-only root, no capabilities, seccomp, limits, probes")
def hardening() -> None:
    for scenario in SCENARIOS:
        for doc in documents(render(scenario)):
            if doc["kind"] != "Deployment":
                continue
            where = f"{scenario_name(scenario)}: {doc['metadata']['name']}"
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
            assert pod["automountServiceAccountToken"] is False, where
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"]["drop"] == ["ALL"], where
                assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
                assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
                assert "livenessProbe" in container and "readinessProbe" in container, where
                env = {item["name"]: item for item in container["env"]}
                assert env["THB_MODE"]["value"] == "production", where
                assert env["THB_ALLOWED_AZP"]["value"], where
                for item in env.values():
                    assert "value" not in item or "secret" not in item["name"].lower(), where
                if doc["metadata"]["labels"]["thb.platform/kind"] != "gateway":
                    assert env["THB_KEYS_FILE"]["value"] == "/etc/thb/keys/keys.json", where
                    assert "secretKeyRef" in env["MONGODB_URI"]["valueFrom"], where
                if doc["metadata"]["labels"]["thb.platform/kind"] == "worker":
                    assert env["THB_WORKER_PORT"]["value"], where


@check("checkov: no failed check on any scenario (skips justified in helm/tests/checkov.yaml)")
def checkov() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for scenario in SCENARIOS:
            (Path(folder) / f"{scenario_name(scenario)}.yaml").write_text(render(scenario))
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("checkov")),
                "--config-file",
                str(CHART / "tests" / "checkov.yaml"),
                "--directory",
                folder,
            ],
            capture_output=True,
            text=True,
        )
    summary = [line for line in result.stdout.splitlines() if "Passed checks" in line]
    assert result.returncode == 0, "\n".join(_failed_checks(result.stdout)) or result.stderr[-2000:]
    assert summary, f"checkov printed no summary: {result.stdout[-500:]} {result.stderr[-500:]}"
    print("     " + " | ".join(summary))


def _failed_checks(output: str) -> Iterator[str]:
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Check: "):
            block = " ".join(part.strip() for part in lines[index : index + 4])
            if "FAILED" in block:
                yield block


UPDATE = False


def main() -> int:
    global UPDATE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--update", action="store_true", help="rewrite the golden files, then check")
    UPDATE = parser.parse_args().update
    assert SCENARIOS, "no helm/ci/*-values.yaml"
    start = time.monotonic()
    for step in (
        services_match_registry,
        copies_match,
        topics_match,
        lint,
        render_validate_golden,
        refusals,
        hardening,
        checkov,
    ):
        step()
    total = 8
    print(f"chart checks took {time.monotonic() - start:.0f} s")
    print(f"chart: {total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
