"""The service registry for the Makefile, before anything is installed (standard library only).

    python3 tools/services.py folders    # services/identification services/referral ...
    python3 tools/services.py packages   # identification referral exchange voluntary_return

It reads openapi/services.toml (or $THB_OPENAPI_DIR/services.toml) with the registry module of the contracts
package, loaded by its path so that nothing needs to be installed first."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _registry_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_thb_registry", REPO_ROOT / "openapi" / "registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    directory = Path(os.environ.get("THB_OPENAPI_DIR") or REPO_ROOT / "openapi")
    services = _registry_module().load_registry((directory / "services.toml").read_text(encoding="utf-8"))
    what = argv[1] if len(argv) > 1 else "folders"
    if what == "folders":
        print(" ".join(service.folder for service in services))
    elif what == "packages":
        print(" ".join(service.package for service in services))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
