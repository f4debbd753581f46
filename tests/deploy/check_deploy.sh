#!/usr/bin/env bash
# Checks the files under deploy/ with the tools that consume them, offline:
#   (a) every YAML file parses (no duplicate keys either)
#   (b) Kubernetes: `kubectl apply --dry-run=client --validate=false` on each manifest and
#       on `kubectl kustomize deploy/kubernetes`, plus cross-references (selectors, ports,
#       probes, the ConfigMap's backends against the Triton StatefulSet)
#   (c) `promtool check config` on the Prometheus config
#   (d) the Grafana dashboard: every panel has queries, and `promtool check rules` parses
#       each of them as PromQL
#   (e) `systemd-analyze verify` and `systemd-analyze security` on the unit
#   (f) the compose file (`docker compose config` where it works, else its structure)
#   (g) the Dockerfile's options, targets and runtime packages against the build
#   and `infergate --check-config` on both gateway configs when a build is at hand.
#
# usage: check_deploy.sh SOURCE_DIR [BUILD_DIR]
# BUILD_DIR (default SOURCE_DIR/build, if it holds gateway/infergate) enables the checks
# that need the built binaries. CTest runs this as `deploy_manifests`.
# Tools: python3 with PyYAML (Debian: python3-yaml), kubectl (kubernetes-client),
# promtool (prometheus); systemd-analyze and docker compose are used when present.
set -euo pipefail

src=$(cd "${1:?usage: check_deploy.sh SOURCE_DIR [BUILD_DIR]}" && pwd)
build=${2:-}
if [[ -z $build && -x $src/build/gateway/infergate ]]; then
  build=$src/build
fi
deploy=$src/deploy
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
helper=$here/check_deploy.py

need() {  # need TOOL HINT
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "check_deploy: FAIL: '$1' is not installed ($2)" >&2
    exit 2
  fi
}
need python3 "Debian: python3-yaml"
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "check_deploy: FAIL: python3 cannot import yaml (Debian: python3-yaml)" >&2
  exit 2
fi
need kubectl "Debian: kubernetes-client; scripts/install-deps.sh installs it"
need promtool "Debian: prometheus; scripts/install-deps.sh installs it"

tmp=$(mktemp -d)
stub_pid=
cleanup() {
  if [[ -n $stub_pid ]]; then kill "$stub_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failed=()
section() { echo; echo "== $*"; }
# run NAME CMD...: runs CMD, prints its output, records NAME when it fails.
run() {
  local name=$1
  shift
  if "$@"; then return 0; fi
  echo "FAIL: $name" >&2
  failed+=("$name")
  return 0
}
# quiet NAME CMD...: CMD must succeed and print nothing (systemd-analyze verify reports
# unknown keys and bad values as warnings with exit status 0).
quiet() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1) && [[ -z $out ]]; then
    echo "ok: $name"
    return 0
  fi
  printf '%s\n' "$out"
  echo "FAIL: $name" >&2
  failed+=("$name")
}

infergate=
if [[ -n $build && -x $build/gateway/infergate ]]; then
  infergate=$build/gateway/infergate
elif [[ -n $build ]]; then
  echo "check_deploy: FAIL: $build/gateway/infergate does not exist" >&2
  exit 2
fi
check_config() {  # check_config FILE LABEL
  if [[ -z $infergate ]]; then
    echo "SKIP: infergate --check-config $2 (no build directory given)"
  else
    run "infergate --check-config $2" "$infergate" --check-config "$1"
  fi
}

section "(a) YAML parses"
mapfile -t yamls < <(find "$deploy" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
run "YAML parse" python3 "$helper" yaml "${yamls[@]}"

section "(b) Kubernetes manifests"
# kubectl maps kinds to API resources through the API server's discovery documents, even
# for --dry-run=client, and there is no cluster here. A local stand-in serves discovery for
# the built-in kinds and the Prometheus Operator's PodMonitor, and finds no objects, so
# each object is decoded, mapped and reported "created (dry run)" by kubectl itself.
mkfifo "$tmp/port.fifo"
exec 3<>"$tmp/port.fifo"  # opened read-write: the read below cannot block on open
python3 "$helper" stub-apiserver "$tmp/port.fifo" &
stub_pid=$!
if ! read -r -t 20 stub_port <&3 || [[ ! $stub_port =~ ^[0-9]+$ ]]; then
  echo "check_deploy: FAIL: the discovery stand-in did not start within 20 s" >&2
  exit 2
fi
exec 3<&-
cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$stub_port"}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
users: [{name: stub, user: {}}]
current-context: stub
EOF
kc=(kubectl --kubeconfig "$tmp/kubeconfig" --cache-dir "$tmp/kube-cache")
dry_run() {  # dry_run FILE: every object in FILE is created in the dry run
  local out want
  if ! out=$("${kc[@]}" apply --dry-run=client --validate=false -f "$1" 2>&1); then
    printf '%s\n' "$out"
    return 1
  fi
  printf '%s\n' "$out"
  want=$(python3 -c 'import sys, yaml
print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$1")
  [[ $(grep -c 'created (dry run)$' <<<"$out") -eq $want ]] || {
    echo "expected $want objects created (dry run)"
    return 1
  }
}
for f in "$deploy"/kubernetes/*.yaml; do
  [[ $(basename "$f") == kustomization.yaml ]] && continue
  run "kubectl apply --dry-run=client $(basename "$f")" dry_run "$f"
done
if "${kc[@]}" kustomize "$deploy/kubernetes" >"$tmp/kustomized.yaml"; then
  objects=$(grep -c '^kind:' "$tmp/kustomized.yaml")
  echo "ok: kubectl kustomize deploy/kubernetes ($objects objects)"
  run "kubectl apply --dry-run=client (kustomized)" dry_run "$tmp/kustomized.yaml"
else
  echo "FAIL: kubectl kustomize deploy/kubernetes" >&2
  failed+=("kubectl kustomize")
fi
run "Kubernetes cross-references" \
  python3 "$helper" k8s "$deploy/kubernetes" "$tmp/k8s-infergate.yaml"
if [[ -s $tmp/k8s-infergate.yaml ]]; then
  check_config "$tmp/k8s-infergate.yaml" "(configmap.yaml's infergate.yaml)"
fi
# The autoscaling objects: they apply, and every query they scale on is PromQL.
for f in "$deploy"/kubernetes/keda/scaledobject.yaml "$deploy"/kubernetes/keda/hpa.yaml; do
  run "kubectl apply --dry-run=client kubernetes/keda/$(basename "$f")" dry_run "$f"
done
run "kubectl kustomize deploy/kubernetes/keda" "${kc[@]}" kustomize "$deploy/kubernetes/keda"
if python3 - "$deploy/kubernetes/keda/scaledobject.yaml" "$tmp/keda-rules.yml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
rules = [{"record": f"keda:trigger{i}", "expr": t["metadata"]["query"]}
         for i, t in enumerate(doc["spec"]["triggers"])]
yaml.safe_dump({"groups": [{"name": "keda", "rules": rules}]}, open(sys.argv[2], "w"))
PY
then
  run "promtool check rules (KEDA queries)" promtool check rules "$tmp/keda-rules.yml"
else
  failed+=("KEDA queries")
fi
# The secure overlay (TLS with a cert-manager Certificate, JWTs): it builds, every object
# applies, and its config passes --check-config with a stand-in for the Secret's files.
if "${kc[@]}" kustomize "$deploy/kubernetes-secure" >"$tmp/secure.yaml"; then
  echo "ok: kubectl kustomize deploy/kubernetes-secure ($(grep -c '^kind:' "$tmp/secure.yaml") objects)"
  run "kubectl apply --dry-run=client (kubernetes-secure)" dry_run "$tmp/secure.yaml"
  run "kubernetes-secure's pieces" python3 "$helper" k8s-secure "$tmp/secure.yaml" \
    "$tmp/secure-infergate.yaml"
  if [[ -s $tmp/secure-infergate.yaml ]] && openssl req -x509 -newkey ec \
      -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=infergate \
      -keyout "$tmp/tls.key" -out "$tmp/tls.crt" >/dev/null 2>&1; then
    sed -i "s#/etc/infergate/tls/#$tmp/#g" "$tmp/secure-infergate.yaml"
    check_config "$tmp/secure-infergate.yaml" "(kubernetes-secure's infergate.yaml)"
  fi
else
  echo "FAIL: kubectl kustomize deploy/kubernetes-secure" >&2
  failed+=("kubectl kustomize kubernetes-secure")
fi

section "(c) Prometheus"
run "promtool check config" promtool check config "$deploy/prometheus/prometheus.yml"

section "(d) Grafana dashboard"
if python3 "$helper" grafana "$deploy/grafana/infergate.json" "$tmp/dashboard-rules.yml"; then
  run "promtool check rules (dashboard queries)" promtool check rules "$tmp/dashboard-rules.yml"
else
  failed+=("Grafana dashboard")
fi

section "(e) systemd unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify fails on an ExecStart binary that is not installed: check a copy that runs the
  # build's infergate (or /bin/true), everything else as written.
  mkdir -p "$tmp/unit"
  sed "s#/usr/local/bin/infergate#${infergate:-/bin/true}#g" \
    "$deploy/systemd/infergate.service" >"$tmp/unit/infergate.service"
  quiet "systemd-analyze verify infergate.service" \
    systemd-analyze verify "$tmp/unit/infergate.service"
  # The hardening, as systemd scores it (0 = locked down, 10 = none; fail above 2.0).
  if out=$(systemd-analyze security --offline=true --threshold=20 \
      "$tmp/unit/infergate.service" 2>&1); then
    echo "ok: $(grep 'Overall exposure' <<<"$out")"
  else
    printf '%s\n' "$out" | grep -E '^✗|Overall' || printf '%s\n' "$out"
    echo "FAIL: systemd-analyze security (exposure above 2.0)" >&2
    failed+=("systemd-analyze security")
  fi
else
  echo "SKIP: systemd-analyze is not installed"
fi

section "(f) docker compose"
if docker compose version >/dev/null 2>&1; then
  run "docker compose config" docker compose -f "$deploy/docker-compose.yml" config --quiet
else
  echo "note: docker compose is not available; checking the file's structure instead"
fi
run "compose structure" python3 "$helper" compose "$deploy/docker-compose.yml"
check_config "$deploy/compose-infergate.yaml" "compose-infergate.yaml"

section "(g) Dockerfile"
run "Dockerfile" python3 "$helper" dockerfile "$deploy/Dockerfile" "$src" ${build:+"$build"}

echo
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "check_deploy: ${#failed[@]} check(s) failed:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "check_deploy: all deploy/ checks passed"
