#!/usr/bin/env bash
# Builds the chart test's Kubernetes API server from the Go module proxy and installs etcd from Debian.
#
#   tools/chart/build-apiserver.sh      -> $THB_CHART_CACHE/bin/kube-apiserver (default ~/.cache/thb-chart)
#
# kube-apiserver is published only inside the k8s.io/kubernetes module, whose go.mod points its staging modules
# (k8s.io/api, k8s.io/apiserver, ...) at local folders. A small build module of our own requires
# k8s.io/kubernetes and maps each staging module to its release (Kubernetes v1.X.Y = staging v0.X.Y).
# Nothing is rebuilt when the binary already reports the pinned version; Go's module and build caches make a
# second cold-binary build fast. Needs Go (PATH or /usr/local/go/bin) and apt-get (etcd-server) as root.
set -euo pipefail

KUBE_VERSION=v1.37.2  # the Kubernetes API version the chart is tested against (kubernetes-validate: same minor)
CACHE=${THB_CHART_CACHE:-$HOME/.cache/thb-chart}
BIN=$CACHE/bin
say() { printf '[build-apiserver] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; else say "Go is needed to build kube-apiserver"; exit 1; fi
fi
mkdir -p "$BIN"

if ! command -v etcd >/dev/null 2>&1; then
  say "installing etcd (Debian package etcd-server)"
  apt-get install -y -qq etcd-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null; }
fi

if [ -x "$BIN/kube-apiserver" ] && "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $KUBE_VERSION"; then
  say "kube-apiserver $KUBE_VERSION present"
  exit 0
fi

start=$SECONDS
work=$CACHE/build-$KUBE_VERSION
mkdir -p "$work"
if [ ! -f "$work/.ready" ]; then  # written once the build module resolved completely
  upstream=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging=$(python3 - "$upstream" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(" ".join(sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", text, re.M)))))
PY
)
  [ -n "$staging" ] || { say "no staging modules found in $upstream"; exit 1; }
  go_line=$(grep -m1 '^go ' "$upstream")
  {
    printf 'module thb.local/apiserver\n\n%s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$go_line" "$KUBE_VERSION"
    for module in $staging; do printf '\t%s => %s v0.%s\n' "$module" "$module" "${KUBE_VERSION#v1.}"; done
    printf ')\n'
  } > "$work/go.mod"
  # tidy resolves the build's dependencies from an import that only it sees (build tag)
  printf '//go:build deps\n\npackage deps\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > "$work/deps.go"
  (cd "$work" && go mod tidy)
  touch "$work/.ready"
fi
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
(cd "$work" && go build -trimpath -o "$BIN/kube-apiserver.new" \
  -ldflags "-s -w -X $version_pkg.gitVersion=$KUBE_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean" \
  k8s.io/kubernetes/cmd/kube-apiserver)
mv "$BIN/kube-apiserver.new" "$BIN/kube-apiserver"
say "kube-apiserver $KUBE_VERSION built in $((SECONDS - start)) s"
