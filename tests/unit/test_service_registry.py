"""One service registry (openapi/services.toml): adding a service is one entry there plus its folder.

The test adds a service `demo` to a copy of the contracts folder — one `[services.demo]` entry and a contract
`demo.yaml` — and shows, in fresh processes pointed at that copy (THB_OPENAPI_DIR), that every reader picks it
up without any other change: the Makefile installs and checks `services/demo`, the gateway routes `/v1/demo/...`
and validates tokens for `demo-api`, the local stack starts its API and its worker, the role table lists its
operations. The same checks against the unchanged registry show no `demo`, so the test is not vacuous. It also
checks that every deployable declares in its own pyproject.toml the distributions its code imports (so each can
be built into its own image) and that nothing outside the registry spells the list of services.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import thb_contracts

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json
from devstack.platform import SERVICES as PROCESSES
from gateway.contracts import SERVICES, audience_of, build_routes, load_contracts
from tools.contracts import SERVICE_CONTRACTS, role_table
routes = build_routes(load_contracts())
print(json.dumps({
    "gateway": list(SERVICES),
    "audiences": [audience_of(s) for s in SERVICES],
    "routes": sorted({o.template for o in routes.operations if o.template.startswith("/v1/demo/")}),
    "processes": [[p.name, p.asgi_app, p.database, list(p.workers)] for p in PROCESSES],
    "tools": list(SERVICE_CONTRACTS),
    "role_table_has_demo": "/v1/demo/" in role_table(),
}))
"""


def _readers(openapi_dir: Path | None) -> dict:
    env = {**os.environ}
    env.pop("THB_OPENAPI_DIR", None)
    if openapi_dir is not None:
        env["THB_OPENAPI_DIR"] = str(openapi_dir)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    # What `make install` installs (and `make lint` checks): the Makefile's package list.
    make = subprocess.run(
        ["make", "--no-print-directory", "--eval", "show-packages: ; @echo $(PACKAGES)", "show-packages"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(probe.stdout), "make": make.stdout.split()}


@pytest.fixture(scope="module")
def with_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("contracts") / "openapi"
    shutil.copytree(REPO / "openapi", folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    registry = (folder / "services.toml").read_text()
    (folder / "services.toml").write_text(
        registry + '\n[services.demo]\npackage = "demo"\nworkers = ["demo.entrypoints.consumer"]\n'
    )
    # The new service's contract: the referral skeleton's, under its own name.
    contract = (folder / "referral.yaml").read_text().replace("/v1/referral/", "/v1/demo/")
    (folder / "demo.yaml").write_text(contract.replace("Referral", "Demo").replace("referral.", "demo."))
    return folder


def test_a_registry_entry_and_a_contract_are_all_a_new_service_needs(with_demo: Path) -> None:
    seen = _readers(with_demo)
    assert seen["gateway"][-1] == "demo" and "demo-api" in seen["audiences"]
    assert seen["routes"], "the gateway routes the new service's operations"
    assert ["demo", "demo.entrypoints.http:app", "thb_demo", ["demo.entrypoints.consumer"]] in seen[
        "processes"
    ]
    assert seen["tools"][-1] == "demo" and seen["role_table_has_demo"]
    assert "services/demo" in seen["make"], "make install installs the new service's folder"


def test_without_the_entry_there_is_no_such_service() -> None:
    seen = _readers(None)
    assert "demo" not in seen["gateway"] and not seen["routes"] and not seen["role_table_has_demo"]
    assert "services/demo" not in seen["make"]
    assert [p[0] for p in seen["processes"]] == [s.name for s in thb_contracts.services()]
    assert "services/identification" in seen["make"]


def test_the_registry_refuses_what_it_cannot_use() -> None:
    from thb_contracts.registry import RegistryError, load_registry

    for broken in (
        "",
        "[services.Bad-Name]\npackage = 'x'",
        "[services.demo]\npackage = 'not a package'",
        "[services.demo]\npackage = 'demo'\nworkers = 'demo.worker'",
        "[services.demo]\npackage = 'demo'\nport = 8080",
    ):
        with pytest.raises(RegistryError):
            load_registry(broken)


# ------------------------------------------------------------------------------ the registry is the only list

# Where a list of the services may still be spelled: the registry itself, realm files (one client per service),
# docs, and tests that name services on purpose.
_SERVICE_LIST = re.compile(r"identification\W+referral\W+exchange\W+return")


def test_no_code_outside_the_registry_spells_the_list_of_services() -> None:
    offenders = []
    for folder in ("libs", "services", "gateway", "devstack", "tools", "bench", "Makefile", "pyproject.toml"):
        paths = [REPO / folder] if (REPO / folder).is_file() else (REPO / folder).rglob("*")
        for path in paths:
            if path.suffix not in (".py", ".toml", "") or "/tests/" in str(path) or not path.is_file():
                continue
            if path.name == "pyproject.toml" and path.parent != REPO:
                continue
            text = path.read_text(errors="replace")
            if path.suffix == ".py":
                text = _code_without_docstrings(text)
            if _SERVICE_LIST.search(text):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"the list of services is spelled outside openapi/services.toml: {offenders}"


def _code_without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0].value.value = ""
    return ast.unparse(tree)


# ------------------------------------------------------------------- every deployable declares its imports

FIRST_PARTY = {s.package for s in thb_contracts.services()} | {
    "plumbing",
    "gateway",
    "devstack",
    "thb_contracts",
}
DEPLOYABLES = [
    "openapi",
    "libs/plumbing",
    "devstack",
    "gateway",
    *[s.folder for s in thb_contracts.services()],
]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ]", name, maxsplit=1)[0]).lower()


def _imports(folder: Path) -> set[str]:
    modules: set[str] = set()
    for path in folder.rglob("*.py"):
        if "tests" in path.relative_to(folder).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


@pytest.mark.parametrize("folder", DEPLOYABLES)
def test_each_deployable_declares_the_distributions_it_imports(folder: str) -> None:
    declared = {
        _normalise(d)
        for d in tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"].get(
            "dependencies", []
        )
    }
    provided_by = importlib.metadata.packages_distributions()
    missing = [
        module
        for module in sorted(_imports(REPO / folder))
        if not {_normalise(d) for d in provided_by.get(module, [module])} & declared
    ]
    assert not missing, f"{folder}/pyproject.toml does not declare what provides {missing}"
