"""The chart's fast checks (make chart): lint, render, validate, golden files, security scan, one source of truth.

Run with the chart tools' venv (.venv-chart: kubernetes-validate, checkov, jsonschema, PyYAML) and helm on PATH:

    .venv-chart/bin/python tools/chart/check.py            # every check, every scenario of helm/ci/
    .venv-chart/bin/python tools/chart/check.py --update   # rewrite helm/tests/golden/ from the current chart

What the platform's code reads is asked of the platform's own venv (.venv, `make install`): the topics that
plumbing.kafka takes from openapi/asyncapi.yaml and the topics each consumer subscribes to, and how each rendered
service process reads its environment for calls on behalf of the user (plumbing.config, plumbing.on_behalf,
plumbing.service_auth).
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


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a values file over the chart's values: maps merge, anything else replaces, null
    deletes."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario_values(scenario: Path) -> dict[str, Any]:
    return merged(values(), yaml.safe_load(scenario.read_text()) or {})


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


def realm_pairs() -> set[tuple[str, str]]:
    """The on-behalf pairs (requesting client, target client) the realm declares: its clientScopeMappings, where
    each target lists the clients that have its `access` role in scope (realm/README.md)."""
    realm = json.loads((CHART / "files" / "base-realm.json").read_text())
    pairs = set()
    for target, mappings in realm.get("clientScopeMappings", {}).items():
        for mapping in mappings:
            assert "access" in mapping["roles"], (
                f"realm clientScopeMappings.{target}: {mapping} without access"
            )
            pairs.add((mapping["client"], target))
    return pairs


def declared_pairs(vals: dict[str, Any]) -> set[tuple[str, str]]:
    """(caller, target) service names of services.<caller>.callsOnBehalf."""
    return {
        (caller, target)
        for caller, service in vals["services"].items()
        for target in service.get("callsOnBehalf") or []
    }


@check(
    "on-behalf pairs: services.<name>.callsOnBehalf == the realm's clientScopeMappings (realm/base-realm.json)"
)
def on_behalf_pairs_match_realm() -> None:
    chart = {(f"{caller}-api", f"{target}-api") for caller, target in declared_pairs(values())}
    realm = realm_pairs()
    assert chart == realm, (
        f"callsOnBehalf in helm/values.yaml {sorted(chart)} != the realm's clientScopeMappings {sorted(realm)}"
    )
    for caller, service in values()["services"].items():
        assert not service.get("oidcClientId"), (
            f"services.{caller}.oidcClientId: the realm's client is {caller}-api"
        )


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


@check(
    "refusals: unknown keys, wrong types, missing allowed clients, key file or upstreams, bad on-behalf calls"
)
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
        # identification calls return on behalf of the user: without return it must not list it
        "services.return.enabled=false,services.identification.callsOnBehalf={referral,exchange}",
        expect="gateway: the service return is not deployed here; set gateway.externalUpstreams.return",
    )
    bad(
        "a call on behalf without an upstream",
        "--set",
        "services.identification.api.enabled=false,gateway.enabled=false",
        expect="services.exchange.callsOnBehalf: the API of identification is not deployed in this release; "
        "set gateway.externalUpstreams.identification",
    )
    bad(
        "a call on behalf of an unknown service",
        "--set",
        "services.exchange.callsOnBehalf={nowhere}",
        expect="services.exchange.callsOnBehalf: nowhere is not a service",
    )
    bad(
        "a call on behalf of itself",
        "--set",
        "services.exchange.callsOnBehalf={exchange}",
        expect="a service does not call itself",
    )
    bad(
        "a call on behalf of an unknown service, only the caller's workers here",
        "--set",
        "services.exchange.api.enabled=false,gateway.enabled=false,services.exchange.callsOnBehalf={nowhere}",
        expect="services.exchange.callsOnBehalf: nowhere is not a service",
    )
    bad(
        "a client secret given as a value",
        "--set",
        "services.exchange.oidcClientSecret.value=s3cret",
        expect="additional properties",
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


# ------------------------------------------------------------------------------------ calls on behalf of the user

NAMESPACE_LABELS = {"kubernetes.io/metadata.name": NAMESPACE}


def client_id(name: str, service: dict[str, Any]) -> str:
    return service.get("oidcClientId") or f"{name}-api"


def upstream_url(vals: dict[str, Any], name: str) -> str | None:
    service = vals["services"][name]
    if service["enabled"] and service["api"]["enabled"]:
        return f"http://{RELEASE}-{name}-api:{vals['defaults']['api']['port']}"
    return (vals["gateway"].get("externalUpstreams") or {}).get(name)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (an empty one selects everything)."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, listed = expression["key"], expression["operator"], expression.get("values") or []
        if (
            (operator == "In" and labels.get(key) not in listed)
            or (operator == "NotIn" and key in labels and labels[key] in listed)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy peer covers a pod of the release's namespace. An ipBlock is taken to cover no pod
    (the scenarios list addresses outside the cluster)."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer and not selects(peer["namespaceSelector"], NAMESPACE_LABELS):
        return False
    return selects(peer.get("podSelector") or {}, labels)


def policy_allows(
    policies: list[dict[str, Any]],
    direction: str,
    pod: dict[str, str],
    peer: dict[str, str],
    port: tuple[int, str],
) -> bool:
    """NetworkPolicy semantics for one direction: a pod no policy of that direction selects is open; otherwise
    some rule of a selecting policy must cover the peer and the (number, name) port."""
    kind, rules_key, peers_key = (
        ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    )
    selecting = [
        policy["spec"]
        for policy in policies
        if kind in policy["spec"].get("policyTypes", ["Ingress"])
        and selects(policy["spec"]["podSelector"], pod)
    ]
    if not selecting:
        return True
    for spec in selecting:
        for rule in spec.get(rules_key) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(item, peer) for item in peers):
                continue
            ports = rule.get("ports")
            if not ports or any(
                item.get("protocol", "TCP") == "TCP" and item.get("port") in (None, *port) for item in ports
            ):
                return True
    return False


def flat_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the process sees it, a value from a Secret standing in for the Secret's."""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"from-secret-{ref['name']}-{ref['key']}"
    return env


def code_on_behalf(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask the platform's code (its own venv) how each rendered service process reads its environment: its
    client, its secret, the upstreams it calls on behalf of the user (OnBehalfClient.from_settings refuses to
    start without them) and the clients it accepts (THB_ALLOWED_AZP)."""
    python = ROOT / ".venv" / "bin" / "python"
    assert python.exists(), ".venv is missing: run make install first"
    script = """
import json, sys
from plumbing.config import Settings
from plumbing.on_behalf import OnBehalfClient
from plumbing.service_auth import allowed_clients
answers = []
for process in json.load(sys.stdin):
    try:
        settings = Settings.from_env(process["service"], process["env"])
        if process["targets"]:
            OnBehalfClient.from_settings(settings, targets=process["targets"]).close()
        answers.append({
            "client_id": settings.client_id,
            "secret": bool(settings.oidc_client_secret),
            "upstreams": dict(settings.upstreams),
            "allowed": sorted(allowed_clients(settings, None, process["env"])),
        })
    except Exception as error:
        answers.append({"error": f"{type(error).__name__}: {error}"})
print(json.dumps(answers))
"""
    out = subprocess.run(
        [str(python), "-c", script], input=json.dumps(processes), capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, f"asking the code about the environment failed: {out.stderr.strip()[-600:]}"
    answers: list[dict[str, Any]] = json.loads(out.stdout)
    return answers


def oidc_secret_names(vals: dict[str, Any]) -> set[str]:
    """The names of the Secrets holding the callers' client secrets (services.<name>.oidcClientSecret)."""
    return {
        (service.get("oidcClientSecret") or {}).get("secretName") or f"{RELEASE}-{name}-oidc"
        for name, service in vals["services"].items()
        if service.get("callsOnBehalf")
    }


def secrets_of_pod(pod: dict[str, Any]) -> set[str]:
    """Every Secret a pod spec can read: env secretKeyRefs, envFrom secretRefs and secret volumes."""
    names = set()
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


ON_BEHALF_ENV = ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")


def on_behalf_env(env: dict[str, Any]) -> set[str]:
    """The variables of calls on behalf of the user in a service process's environment."""
    return {key for key in env if key in ON_BEHALF_ENV or key.startswith("THB_UPSTREAM_")}


@check(
    "on-behalf calls, every scenario: callers' API pods get client, Secret and upstreams as the code reads them, "
    "no worker pod gets any; allowed azp; exactly the callers' API pods reach the targets' API pods"
)
def on_behalf_rendered() -> None:
    processes: list[dict[str, Any]] = []
    seen = {"caller api": 0, "caller worker": 0, "worker to target api": 0}
    for scenario in SCENARIOS:
        name = scenario_name(scenario)
        vals = scenario_values(scenario)
        services = vals["services"]
        oidc_secrets = oidc_secret_names(vals)
        docs = documents(render(scenario))
        pods = []
        for doc in docs:
            if doc["kind"] != "Deployment":
                continue
            where = f"{name}: {doc['metadata']['name']}"
            labels = doc["spec"]["template"]["metadata"]["labels"]
            pod = doc["spec"]["template"]["spec"]
            container = pod["containers"][0]
            pods.append((doc["metadata"]["name"], labels, container))
            env = {item["name"]: item for item in container["env"]}
            azp = env["THB_ALLOWED_AZP"]["value"].split(",")
            assert len(azp) == len(set(azp)), f"{where}: THB_ALLOWED_AZP names a client twice: {azp}"
            service = labels.get("thb.platform/service")
            kind = labels["thb.platform/kind"]
            if service is None:
                assert kind == "gateway", f"{where}: a {kind} pod without thb.platform/service"
                assert azp == vals["allowedClients"], f"{where}: THB_ALLOWED_AZP {azp} != allowedClients"
                assert not {"OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"} & set(env), (
                    f"{where}: the gateway calls nobody on behalf of the user"
                )
                assert not oidc_secrets & secrets_of_pod(pod), f"{where}: reads a caller's client secret"
                continue
            assert kind in ("api", "worker"), f"{where}: unknown kind {kind}"
            callers = sorted(
                client_id(caller, entry)
                for caller, entry in services.items()
                if service in (entry.get("callsOnBehalf") or [])
            )
            assert set(azp) == set(vals["allowedClients"]) | set(callers), (
                f"{where}: THB_ALLOWED_AZP {azp} != allowedClients + the clients calling it on behalf {callers}"
            )
            declared = services[service].get("callsOnBehalf") or []
            # Only an API process handles a user's request and so holds a user token to exchange: a worker of any
            # service, a caller's included, gets no client, no secret and no upstream (deny by default).
            targets = declared if kind == "api" else []
            if declared:
                seen[f"caller {kind}"] += 1
            if kind == "worker":
                leaked = on_behalf_env(env)
                assert not leaked, f"{where}: a worker gets {sorted(leaked)}; only the API calls on behalf"
                leaked = oidc_secrets & secrets_of_pod(pod)
                assert not leaked, f"{where}: a worker can read the client secret Secret(s) {sorted(leaked)}"
            upstreams = {
                key: item.get("value") for key, item in env.items() if key.startswith("THB_UPSTREAM_")
            }
            wanted = {f"THB_UPSTREAM_{target.upper()}": upstream_url(vals, target) for target in targets}
            assert upstreams == wanted, f"{where}: upstreams {upstreams} != {wanted}"
            if targets:
                secret = services[service].get("oidcClientSecret") or {}
                ref = {
                    "name": secret.get("secretName") or f"{RELEASE}-{service}-oidc",
                    "key": secret.get("key") or "client-secret",
                }
                item = env.get("OIDC_CLIENT_SECRET", {})
                assert "value" not in item, f"{where}: OIDC_CLIENT_SECRET must come from a Secret"
                got = item.get("valueFrom", {}).get("secretKeyRef")
                assert got == ref, f"{where}: OIDC_CLIENT_SECRET from {got}, want {ref}"
                got_id = env.get("OIDC_CLIENT_ID", {}).get("value")
                assert got_id == client_id(service, services[service]), f"{where}: OIDC_CLIENT_ID {got_id}"
                readable = oidc_secrets & secrets_of_pod(pod)
                assert readable == {ref["name"]}, f"{where}: reads the client secrets {sorted(readable)}"
            else:
                assert not {"OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"} & set(env), (
                    f"{where}: calls nobody on behalf"
                )
                assert not oidc_secrets & secrets_of_pod(pod), f"{where}: reads a caller's client secret"
            processes.append(
                {
                    "where": where,
                    "service": service,
                    "targets": targets,
                    "callers": callers,
                    "env": flat_env(container),
                }
            )
        if not vals["networkPolicy"]["enabled"]:
            continue
        # Exactly the architecture's flows between the release's own pods: the gateway to every API, and each
        # declared pair's caller API (never its workers) to the target's API, on the API port; nothing else. Each
        # side on its own (the caller's egress, the target's ingress) must allow exactly these, not only both
        # together.
        policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
        egress, ingress, expected = set(), set(), set()
        for source, source_labels, _ in pods:
            calls = services.get(source_labels.get("thb.platform/service", ""), {}).get("callsOnBehalf") or []
            for target, target_labels, container in pods:
                for port in container["ports"]:
                    key = (source, target, port["containerPort"])
                    number_and_name = (port["containerPort"], port.get("name", ""))
                    out = policy_allows(policies, "out", source_labels, target_labels, number_and_name)
                    into = policy_allows(policies, "in", target_labels, source_labels, number_and_name)
                    if out:
                        egress.add(key)
                    if into:
                        ingress.add(key)
                    if (
                        source_labels["thb.platform/kind"] == "worker"
                        and target_labels["thb.platform/kind"] == "api"
                        and target_labels["thb.platform/service"] in calls
                    ):
                        seen["worker to target api"] += 1
                        assert not out and not into, (
                            f"{name}: the worker {source} may reach the target API {target} on "
                            f"{port['containerPort']} (egress {out}, ingress {into}); only its API may"
                        )
                    if (
                        target_labels["thb.platform/kind"] == "api"
                        and port["containerPort"] == vals["defaults"]["api"]["port"]
                        and (
                            source_labels["thb.platform/kind"] == "gateway"
                            or (
                                source_labels["thb.platform/kind"] == "api"
                                and target_labels["thb.platform/service"] in calls
                            )
                        )
                    ):
                        expected.add(key)
        for side, allowed in (("egress", egress), ("ingress", ingress)):
            assert allowed == expected, (
                f"{name}: the {side} policies let through {sorted(allowed - expected)} "
                f"and block {sorted(expected - allowed)}"
            )
    # Not vacuous: the scenarios hold callers' APIs, callers' workers, and workers next to their targets' APIs.
    assert all(seen.values()), f"the scenarios do not exercise every case: {seen}"
    for process, answer in zip(processes, code_on_behalf(processes), strict=True):
        where = process["where"]
        assert "error" not in answer, (
            f"{where}: the code refuses the rendered environment: {answer.get('error')}"
        )
        assert answer["upstreams"].keys() == set(process["targets"]), (
            f"{where}: code reads {answer['upstreams']}"
        )
        assert answer["secret"] is bool(process["targets"]), (
            f"{where}: OIDC_CLIENT_SECRET read: {answer['secret']}"
        )
        missing = set(process["callers"]) - set(answer["allowed"])
        assert not missing, (
            f"{where}: the code does not accept the clients calling it on behalf: {sorted(missing)}"
        )
        if process["targets"]:
            assert answer["client_id"] == process["env"]["OIDC_CLIENT_ID"], (
                f"{where}: client {answer['client_id']}"
            )


@check("on-behalf calls, callers' APIs off: their workers get no secret, upstream or NetworkPolicy flow")
def on_behalf_workers_only() -> None:
    # The callers' APIs and the gateway off, the targets' API that has no callers of its own (identification)
    # on: only the callers' workers run, none of which calls on behalf of the user. The chart must render (no
    # target URL needed for a worker) and give them nothing of calls on behalf: no variable, no readable client
    # secret, no on-behalf NetworkPolicy even though a target's API runs next to them.
    vals = merged(values(), yaml.safe_load(SCENARIOS[0].read_text()) or {})
    # Every service calls another on behalf of the user; identification's calls (the right-of-access report)
    # are left out here so that it is the target whose API runs beside the callers' workers.
    vals["services"]["identification"]["callsOnBehalf"] = []
    callers = sorted(name for name, service in vals["services"].items() if service.get("callsOnBehalf"))
    running_targets = sorted({target for _, target in declared_pairs(vals)} - set(callers))
    assert callers and running_targets, f"no caller or no target without calls of its own: {vals['services']}"
    off = [f"services.{name}.api.enabled=false" for name in callers]
    without = ["--set-json", "services.identification.callsOnBehalf=[]"]
    docs = documents(render(SCENARIOS[0], *without, "--set", ",".join([*off, "gateway.enabled=false"])))
    oidc_secrets = oidc_secret_names(vals)
    kinds: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        where = f"callers' APIs off: {doc['metadata']['name']}"
        labels = doc["spec"]["template"]["metadata"]["labels"]
        kinds.setdefault(labels.get("thb.platform/service", ""), set()).add(labels["thb.platform/kind"])
        pod = doc["spec"]["template"]["spec"]
        leaked = on_behalf_env({item["name"]: item for item in pod["containers"][0]["env"]})
        assert not leaked, f"{where}: gets {sorted(leaked)}"
        assert not oidc_secrets & secrets_of_pod(pod), f"{where}: reads a caller's client secret"
    for name in callers:
        assert kinds.get(name) == {"worker"}, (
            f"callers' APIs off: {name} runs {kinds.get(name)}, want workers"
        )
    for name in running_targets:
        assert "api" in kinds.get(name, set()), f"callers' APIs off: the target {name} runs no API"
    on_behalf = [
        doc["metadata"]["name"]
        for doc in docs
        if doc["kind"] == "NetworkPolicy" and "on-behalf" in doc["metadata"]["name"]
    ]
    assert not on_behalf, f"callers' APIs off: on-behalf NetworkPolicies rendered: {on_behalf}"


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
        on_behalf_pairs_match_realm,
        topics_match,
        lint,
        render_validate_golden,
        refusals,
        hardening,
        on_behalf_rendered,
        on_behalf_workers_only,
        checkov,
    ):
        step()
    total = 11
    print(f"chart checks took {time.monotonic() - start:.0f} s")
    print(f"chart: {total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
