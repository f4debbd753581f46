#!/usr/bin/env python3
"""The Python half of tests/deploy/check_deploy.sh: parses and cross-checks deploy/.

Subcommands (each prints `FAIL: ...` lines for what is wrong and exits 1 if anything is):
  yaml FILE...                   every document parses; no duplicate keys
  k8s DIR OUT_CONFIG             manifests hang together; writes the ConfigMap's
                                 infergate.yaml to OUT_CONFIG for `infergate --check-config`
  k8s-secure FILE OUT_CONFIG     the kustomized kubernetes-secure overlay: the Certificate's
                                 Secret is mounted where the config's TLS files are, the
                                 readiness probe needs no gRPC, /tmp is writable; writes
                                 its infergate.yaml to OUT_CONFIG
  grafana FILE OUT_RULES         dashboard shape; every panel's queries, as a rules file
                                 for `promtool check rules`
  compose FILE                   services, files and names the compose setup relies on
  dockerfile FILE SRC [BUILD]    options, targets, binary paths and runtime packages
  stub-apiserver PORT_FILE       API discovery for `kubectl apply --dry-run=client`
"""
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

problems = []


def fail(msg):
    problems.append(msg)
    print(f"FAIL: {msg}")


def finish():
    sys.exit(1 if problems else 0)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (the last one would silently win)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: keys written next to it override the merged ones
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


def cmd_yaml(paths):
    for p in paths:
        try:
            docs = load_all(p)
        except (yaml.YAMLError, OSError) as e:
            fail(f"{p}: {e}")
            continue
        if not docs:
            fail(f"{p}: no YAML document in it")
        else:
            print(f"ok: {p} ({len(docs)} document{'s' if len(docs) > 1 else ''})")
    finish()


# --- Kubernetes -----------------------------------------------------------------------

def pod_workloads(objs):
    return [o for o in objs if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_ports(workload):
    ports = {}
    for c in workload["spec"]["template"]["spec"].get("containers", []):
        for p in c.get("ports", []):
            ports[p.get("name")] = p["containerPort"]
    return ports


def cmd_k8s(directory, out_config):
    objs = []
    for name in sorted(os.listdir(directory)):
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml":
            for d in load_all(os.path.join(directory, name)):
                d["_file"] = name
                objs.append(d)
    kust = load_all(os.path.join(directory, "kustomization.yaml"))[0]
    listed = set(kust.get("resources", []))
    for name in {o["_file"] for o in objs}:
        if name not in listed:
            fail(f"kustomization.yaml does not list {name}")
    for name in listed:
        if not os.path.exists(os.path.join(directory, name)):
            fail(f"kustomization.yaml lists {name}, which does not exist")
    namespace = kust.get("namespace")
    for o in objs:
        where = f"{o['_file']}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
        ns = o.get("metadata", {}).get("namespace")
        if o.get("kind") != "Namespace" and ns != namespace:
            fail(f"{where}: namespace {ns!r}, the kustomization says {namespace!r}")

    workloads = pod_workloads(objs)
    for w in workloads:
        where = f"{w['_file']}: {w['kind']}/{w['metadata']['name']}"
        tmpl = w["spec"]["template"]
        labels = tmpl["metadata"].get("labels", {})
        if not matches(w["spec"]["selector"].get("matchLabels"), labels):
            fail(f"{where}: selector does not match the pod template's labels")
        ann = tmpl["metadata"].get("annotations", {})
        ports = container_ports(w)
        if ann.get("prometheus.io/scrape") != "true":
            fail(f"{where}: no prometheus.io/scrape: \"true\" annotation")
        if int(ann.get("prometheus.io/port", -1)) not in ports.values():
            fail(f"{where}: prometheus.io/port is not a container port")
        for c in tmpl["spec"]["containers"]:
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                fail(f"{where}: container {c['name']} lacks resource requests or limits")

    # The gateway: probes, security, the config volume.
    gateway = [w for w in workloads if w["metadata"]["name"] == "infergate"]
    if len(gateway) != 1:
        fail("no Deployment named infergate")
    else:
        g = gateway[0]
        spec = g["spec"]["template"]["spec"]
        c = spec["containers"][0]
        if c.get("readinessProbe", {}).get("grpc", {}).get("port") != 8001:
            fail("gateway: readinessProbe is not a gRPC probe on port 8001")
        if "livenessProbe" not in c:
            fail("gateway: no livenessProbe")
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            fail("gateway: pod securityContext lacks runAsNonRoot: true")
        if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
            fail("gateway: container lacks readOnlyRootFilesystem: true")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        cm_name = None
        for v in spec.get("volumes", []):
            if "configMap" in v and mounts.get(v["name"]) == "/etc/infergate":
                cm_name = v["configMap"]["name"]
        if cm_name is None:
            fail("gateway: no ConfigMap volume mounted at /etc/infergate")
        cms = [o for o in objs if o.get("kind") == "ConfigMap"
               and o["metadata"]["name"] == cm_name]
        if cm_name and not cms:
            fail(f"gateway mounts ConfigMap {cm_name}, which no manifest defines")
        elif cms:
            text = cms[0].get("data", {}).get("infergate.yaml")
            if text is None:
                fail(f"ConfigMap {cm_name} has no infergate.yaml key")
            else:
                with open(out_config, "w", encoding="utf-8") as f:
                    f.write(text)
                check_gateway_config(yaml.load(text, Loader=StrictLoader), objs, grace)

    # Services select pods and name ports that exist; the headless one serves the
    # StatefulSet.
    for s in (o for o in objs if o.get("kind") == "Service"):
        where = f"{s['_file']}: Service/{s['metadata']['name']}"
        targets = [w for w in workloads
                   if matches(s["spec"].get("selector"),
                              w["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            fail(f"{where}: its selector matches no pod template")
            continue
        ports = container_ports(targets[0])
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if tp not in ports and tp not in ports.values():
                fail(f"{where}: targetPort {tp} is not a container port")
    for st in (w for w in workloads if w["kind"] == "StatefulSet"):
        svc = [s for s in objs if s.get("kind") == "Service"
               and s["metadata"]["name"] == st["spec"].get("serviceName")]
        if not svc or svc[0]["spec"].get("clusterIP") != "None":
            fail(f"StatefulSet/{st['metadata']['name']}: serviceName is not a headless Service")
        for c in st["spec"]["template"]["spec"]["containers"]:
            if "nvidia.com/gpu" not in c.get("resources", {}).get("limits", {}):
                fail(f"StatefulSet/{st['metadata']['name']}: no nvidia.com/gpu limit")

    for pm in (o for o in objs if o.get("kind") == "PodMonitor"):
        where = f"{pm['_file']}: PodMonitor/{pm['metadata']['name']}"
        targets = [w for w in workloads
                   if matches(pm["spec"]["selector"].get("matchLabels"),
                              w["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            fail(f"{where}: its selector matches no pod template")
            continue
        for ep in pm["spec"].get("podMetricsEndpoints", []):
            if ep.get("port") not in container_ports(targets[0]):
                fail(f"{where}: port {ep.get('port')!r} is not a named container port")
    if not problems:
        print(f"ok: {len(objs)} Kubernetes objects hang together")
    finish()


def check_gateway_config(cfg, objs, grace):
    """The gateway's backends are the StatefulSet's pods under its headless Service."""
    sets = {w["metadata"]["name"]: w for w in pod_workloads(objs) if w["kind"] == "StatefulSet"}
    for b in cfg.get("backends", []):
        if "dns" in b:
            # Every pod of a StatefulSet, by its headless Service's records.
            host, _, port = b["dns"].rpartition(":")
            m = re.fullmatch(r"([^.]+)\.([^.]+)\.svc(\.cluster\.local)?", host)
            if not m:
                fail(f"ConfigMap backend {b['name']}: dns {host} is not <service>.<namespace>.svc")
                continue
            st = [s for s in sets.values() if s["spec"].get("serviceName") == m.group(1)
                  and s["metadata"].get("namespace") == m.group(2)]
            if not st:
                fail(f"ConfigMap backend {b['name']}: no StatefulSet is governed by service "
                     f"{m.group(1)} in namespace {m.group(2)}")
            elif int(port) not in container_ports(st[0]).values():
                fail(f"ConfigMap backend {b['name']}: port {port} is not a Triton container port")
            continue
        host, _, port = b["address"].rpartition(":")
        m = re.fullmatch(r"(.+)-(\d+)\.([^.]+)\.([^.]+)\.svc(\.cluster\.local)?", host)
        if not m:
            fail(f"ConfigMap backend {b['name']}: {host} is not <pod>.<service>.<namespace>.svc")
            continue
        st = sets.get(m.group(1))
        if st is None:
            fail(f"ConfigMap backend {b['name']}: no StatefulSet named {m.group(1)}")
            continue
        if int(m.group(2)) >= st["spec"].get("replicas", 1):
            fail(f"ConfigMap backend {b['name']}: {m.group(1)} has only "
                 f"{st['spec'].get('replicas', 1)} replicas")
        if m.group(3) != st["spec"].get("serviceName"):
            fail(f"ConfigMap backend {b['name']}: service {m.group(3)} is not the "
                 f"StatefulSet's serviceName")
        if m.group(4) != st["metadata"].get("namespace"):
            fail(f"ConfigMap backend {b['name']}: namespace {m.group(4)} is not the StatefulSet's")
        if int(port) not in container_ports(st).values():
            fail(f"ConfigMap backend {b['name']}: port {port} is not a Triton container port")
    for key, want in (("listen", ":8001"), ("admin_listen", ":8002")):
        if not str(cfg.get(key, "")).startswith("0.0.0.0") or not str(cfg.get(key)).endswith(want):
            fail(f"ConfigMap: {key} must be 0.0.0.0{want} for probes and scrapes to reach it")
    drain = str(cfg.get("drain_timeout", "30s"))
    m = re.fullmatch(r"(\d+)s", drain)
    if m and int(m.group(1)) >= grace:
        fail(f"ConfigMap drain_timeout {drain} is not below terminationGracePeriodSeconds {grace}")


# --- Grafana --------------------------------------------------------------------------

def cmd_grafana(path, out_rules):
    with open(path, encoding="utf-8") as f:
        try:
            dash = json.load(f)
        except json.JSONDecodeError as e:
            fail(f"{path}: {e}")
            finish()
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    if "DS_PROMETHEUS" not in variables:
        fail(f"{path}: no DS_PROMETHEUS datasource variable")
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # panels inside collapsed rows
    rules, ids = [], set()
    for p in panels:
        if p.get("id") in ids:
            fail(f"{path}: panel id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        title = p.get("title", f"panel {p.get('id')}")
        targets = [t for t in p.get("targets", []) if str(t.get("expr", "")).strip()]
        if not targets or len(targets) != len(p.get("targets", [])):
            fail(f"{path}: panel {title!r} has a target without an expression")
            continue
        if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            fail(f"{path}: panel {title!r} does not use the ${{DS_PROMETHEUS}} datasource")
        for t in targets:
            expr = t["expr"]
            for var in re.findall(r"\$\{?(\w+)", expr):
                if var not in variables:
                    fail(f"{path}: panel {title!r} uses ${var}, which is not a variable")
            if not re.search(r"\binfergate_\w+", expr):
                fail(f"{path}: panel {title!r} queries no infergate_ metric: {expr}")
            # Grafana's variables become a regex that matches anything; promtool parses it.
            promql = re.sub(r"\$\{?\w+\}?", ".*", expr)
            rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId'].lower()}",
                          "expr": promql})
    with open(out_rules, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    if not problems:
        print(f"ok: {path}: {len(panels)} panels, {len(rules)} queries")
    finish()


# --- docker compose ------------------------------------------------------------------

def cmd_compose(path):
    base = os.path.dirname(os.path.abspath(path))
    doc = load_all(path)[0]
    services = doc.get("services", {})
    for want in ("gateway", "sim-1", "sim-2", "sim-3", "prometheus", "grafana"):
        if want not in services:
            fail(f"{path}: no service {want}")
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            fail(f"{path}: service {name} has neither image nor build")
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")) and not os.path.exists(os.path.join(base, src)):
                fail(f"{path}: service {name} mounts {src}, which does not exist")
        for dep in s.get("depends_on", []):
            if dep not in services:
                fail(f"{path}: service {name} depends on unknown service {dep}")
    build = services.get("gateway", {}).get("build", {})
    ctx = os.path.join(base, build.get("context", "."))
    if not os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))):
        fail(f"{path}: the gateway's Dockerfile is not at {build}")
    # The gateway's config names compose services; Prometheus scrapes compose services.
    gw_cfg = None
    for v in services.get("gateway", {}).get("volumes", []):
        src, dst = v.split(":")[:2]
        if dst == "/etc/infergate/infergate.yaml":
            gw_cfg = os.path.join(base, src)
    if gw_cfg is None:
        fail(f"{path}: nothing is mounted at /etc/infergate/infergate.yaml in the gateway")
    elif os.path.exists(gw_cfg):
        for b in load_all(gw_cfg)[0].get("backends", []):
            if b["address"].rpartition(":")[0] not in services:
                fail(f"{gw_cfg}: backend {b['name']} address {b['address']} is not a service")
    for name, s in services.items():
        for v in s.get("volumes", []):
            src, dst = v.split(":")[:2]
            if dst.endswith("prometheus.yml") and os.path.exists(os.path.join(base, src)):
                prom = load_all(os.path.join(base, src))[0]
                for job in prom.get("scrape_configs", []):
                    for sc in job.get("static_configs", []):
                        for t in sc.get("targets", []):
                            host = t.rpartition(":")[0]
                            if host != "localhost" and host not in services:
                                fail(f"{src}: target {t} is not a compose service")
    if not problems:
        print(f"ok: {path}: {len(services)} services, their files and names")
    finish()


# --- Dockerfile -----------------------------------------------------------------------

BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}  # in debian:12-slim


def owning_packages(libs):
    """{soname: Debian package} for the shared libraries the dynamic linker finds."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    cache = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    candidates = {}  # path -> soname; dpkg knows a file by one of its /lib, /usr/lib names
    for lib in libs:
        m = re.search(rf"^\s*{re.escape(lib)} \(([^)]*)\) => (\S+)$", cache, re.M)
        if not m:
            continue
        paths = {m.group(2), os.path.realpath(m.group(2))}
        paths |= {p.replace("/usr/lib/", "/lib/", 1) for p in paths if p.startswith("/usr/lib/")}
        paths |= {p.replace("/lib/", "/usr/lib/", 1) for p in paths if p.startswith("/lib/")}
        for p in paths:
            candidates[p] = lib
    out = subprocess.run(["dpkg-query", "-S", *candidates], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        if path in candidates and "," not in pkgs:
            found[candidates[path]] = pkgs.split(":")[0]
    return found


def cmd_dockerfile(path, src, build=None):
    text = open(path, encoding="utf-8").read()
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    stages = re.split(r"^FROM ", logical, flags=re.M)[1:]
    if len(stages) != 2:
        fail(f"{path}: expected a build stage and a runtime stage, found {len(stages)} stages")
        finish()
    build_stage, runtime = stages
    cmake = open(os.path.join(src, "CMakeLists.txt"), encoding="utf-8").read()
    for opt in re.findall(r"-D(INFERGATE_\w+)=", build_stage):
        if not re.search(rf"option\({opt}\b", cmake):
            fail(f"{path}: -D{opt} is not an option in CMakeLists.txt")
    executables = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(("build", ".", "out"))]
        if "CMakeLists.txt" in files:
            body = open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8").read()
            executables.update(re.findall(r"add_executable\(\s*([\w-]+)", body))
    m = re.search(r"ninja -C build[^&\n]*", build_stage)
    targets = [t for t in (m.group(0).split()[3:] if m else []) if not t.startswith("-")]
    for t in targets:
        if t not in executables:
            fail(f"{path}: ninja target {t} is not an add_executable() in the tree")
    copies = re.findall(r"^COPY --from=build /src/build/(\S+) (\S+)", runtime, re.M)
    binaries = {"infergate", "infergate-sim", "infergate-bench"}
    if {os.path.basename(c) for c, _ in copies} != binaries:
        fail(f"{path}: the runtime stage does not copy the three binaries")
    for key in ("USER 10001", "EXPOSE 8001 8002", "HEALTHCHECK", "ENTRYPOINT"):
        if key not in runtime:
            fail(f"{path}: the runtime stage has no {key}")
    hc = re.search(r"^HEALTHCHECK .*CMD (\[.*\])$", runtime, re.M)
    try:
        if not hc or "/healthz" not in " ".join(json.loads(hc.group(1))):
            fail(f"{path}: HEALTHCHECK does not ask /healthz")
    except json.JSONDecodeError as e:
        fail(f"{path}: HEALTHCHECK's CMD is not a JSON array: {e}")
    installed = set()
    for line in re.findall(r"apt-get install ([^&]*)", runtime):
        installed.update(w for w in line.split() if not w.startswith("-"))
    if build is None:
        print(f"SKIP: {path}: binaries and runtime packages (no build directory given)")
    elif not (shutil.which("objdump") and shutil.which("dpkg-query")):
        print(f"SKIP: {path}: runtime packages (objdump or dpkg-query missing)")
    else:
        needed = {}  # soname -> the binaries that name it
        for built, _ in copies:
            binary = os.path.join(build, built)
            if not os.path.exists(binary):
                msg = f"{path}: {binary} does not exist (the image copies build/{built})"
                if built == "gateway/infergate":
                    fail(msg)
                else:  # infergate-sim and -bench need INFERGATE_BUILD_BENCHMARKS=ON
                    print(f"SKIP: {msg}")
                continue
            dump = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True).stdout
            for lib in re.findall(r"^\s*NEEDED\s+(\S+)", dump, re.M):
                needed.setdefault(lib, []).append(os.path.basename(built))
        packages = owning_packages(needed)
        for lib, users in sorted(needed.items()):
            pkg = packages.get(lib)
            if pkg is None:
                fail(f"{path}: cannot tell which Debian package holds {lib} ({', '.join(users)})")
            elif pkg not in installed | BASE_IMAGE_PACKAGES:
                fail(f"{path}: {lib} (package {pkg}, linked by {', '.join(users)}) "
                     f"is not installed by the runtime stage")
    if not problems:
        print(f"ok: {path}: stages, options, targets, binaries, runtime packages")
    finish()


# --- a stand-in for the API server's discovery -----------------------------------------

# kubectl maps every kind to its REST resource through the server's discovery documents,
# even for --dry-run=client. These are the ones a cluster with the Prometheus Operator
# serves for the kinds deploy/kubernetes uses; the objects themselves are never found,
# so apply's client-side dry run reports each as "created (dry run)".
DISCOVERY = {
    "/api/v1": [("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
                ("services", "Service", True), ("secrets", "Secret", True),
                ("serviceaccounts", "ServiceAccount", True), ("pods", "Pod", True),
                ("persistentvolumeclaims", "PersistentVolumeClaim", True)],
    "/apis/apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True),
                      ("daemonsets", "DaemonSet", True)],
    "/apis/policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "/apis/autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "/apis/keda.sh/v1alpha1": [("scaledobjects", "ScaledObject", True),
                               ("triggerauthentications", "TriggerAuthentication", True)],
    "/apis/monitoring.coreos.com/v1": [("podmonitors", "PodMonitor", True),
                                       ("servicemonitors", "ServiceMonitor", True)],
    "/apis/cert-manager.io/v1": [("certificates", "Certificate", True),
                                 ("issuers", "Issuer", True),
                                 ("clusterissuers", "ClusterIssuer", False)],
}


def cmd_stub_apiserver(port_file):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def resource_list(path):
        gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [{"name": n, "singularName": "", "namespaced": ns, "kind": k,
                               "verbs": ["create", "delete", "get", "list", "patch", "update"]}
                              for n, k, ns in DISCOVERY[path]]}

    groups = {}
    for path in DISCOVERY:
        if path.startswith("/apis/"):
            g, v = path[len("/apis/"):].split("/")
            groups.setdefault(g, []).append(v)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/api":
                body = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
            elif path == "/apis":
                body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": g,
                     "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                     "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                    for g, vs in groups.items()]}
            elif path in DISCOVERY:
                body = resource_list(path)
            else:
                return self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "NotFound", "code": 404,
                                        "message": f"{path} not found"})
            self.reply(200, body)

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # PORT_FILE is a FIFO the caller reads with a deadline: one line, the port.
    with open(port_file, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


def cmd_k8s_secure(path, out_config):
    objs = load_all(path)
    certs = [o for o in objs if o.get("kind") == "Certificate"]
    if len(certs) != 1:
        fail(f"{path}: expected one cert-manager Certificate, found {len(certs)}")
        finish()
    secret = certs[0]["spec"]["secretName"]
    gateways = [o for o in objs if o.get("kind") == "Deployment"
                and o["metadata"]["name"] == "infergate"]
    if len(gateways) != 1:
        fail(f"{path}: no Deployment named infergate")
        finish()
    spec = gateways[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    tls_dir = None
    for v in spec.get("volumes", []):
        if v.get("secret", {}).get("secretName") == secret:
            tls_dir = mounts.get(v["name"])
    if tls_dir is None:
        fail(f"the gateway does not mount the Certificate's Secret {secret}")
    if "/tmp" not in mounts.values():
        fail("the gateway has nothing writable at /tmp (auth.mode jwt keeps its key cache there)")
    probe = c.get("readinessProbe", {})
    if "grpc" in probe or probe.get("httpGet", {}).get("path") != "/readyz":
        fail("with TLS on the gRPC port readiness must be httpGet /readyz (the grpc probe "
             "has no TLS)")
    cms = [o for o in objs if o.get("kind") == "ConfigMap"
           and o["metadata"]["name"] == "infergate-config"]
    text = cms[0]["data"]["infergate.yaml"] if cms else ""
    config = yaml.load(text, Loader=StrictLoader) if text else {}
    tls = config.get("frontend", {}).get("tls", {})
    for key in ("cert", "key"):
        if tls_dir and not str(tls.get(key, "")).startswith(tls_dir + "/"):
            fail(f"frontend.tls.{key} is not in the Secret's mount {tls_dir}")
    if config.get("auth", {}).get("mode") != "jwt":
        fail("kubernetes-secure's config does not use auth.mode jwt")
    with open(out_config, "w", encoding="utf-8") as f:
        f.write(text)
    if not problems:
        print(f"ok: {path}: Secret {secret} at {tls_dir}, /readyz, /tmp, frontend.tls, jwt")
    finish()


COMMANDS = {"yaml": lambda a: cmd_yaml(a), "k8s": lambda a: cmd_k8s(*a),
            "k8s-secure": lambda a: cmd_k8s_secure(*a),
            "grafana": lambda a: cmd_grafana(*a), "compose": lambda a: cmd_compose(*a),
            "dockerfile": lambda a: cmd_dockerfile(*a),
            "stub-apiserver": lambda a: cmd_stub_apiserver(*a)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        COMMANDS[sys.argv[1]](sys.argv[2:])
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, yaml.YAMLError) as e:
        # A file missing a field the checks rely on, or not shaped as expected.
        fail(f"{sys.argv[1]}: unexpected structure: {type(e).__name__}: {e}")
        finish()
