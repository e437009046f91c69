#!/usr/bin/env bash
# Validates the deployment files. No Docker engine or Kubernetes cluster runs where
# this runs, so every check is static: nothing is built, started or applied.
#   1. k8s/ (every *.yaml, subfolders included): kubernetes-validate against the
#      Kubernetes $K8S_VERSION schemas, strict (unknown fields fail, and so does a
#      kind it has no schema for). KEDA objects (a CRD, no schema there) get a
#      structural check instead. Then what schemas cannot see: no namespace fields,
#      references between objects (ConfigMaps, Secrets and their keys, selectors,
#      scale targets, RBAC), probes, grace periods, and KEDA agreeing with the worker.
#   2. docker-compose.yml: parses, its build contexts, Dockerfiles and mounted files
#      exist, kafka-worker can be scaled (no container_name, no host ports), and the
#      services the README promises are there (with deploy/prometheus.yml's targets).
#   3. Dockerfile.*: every COPY/ADD source exists in the build context; multi-stage,
#      non-root USER, HEALTHCHECK.
# Idempotent: installs PyYAML and kubernetes-validate only when missing. Prints every
# check; exits non-zero if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Kubernetes version the manifests are validated against (supported by the pinned tool).
export K8S_VERSION=1.33.0
# Installed when kubernetes-validate is missing.
KUBERNETES_VALIDATE_VERSION=1.37.0

pip_install() {
  echo "installing: $*" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
}
python3 -c 'import yaml' 2>/dev/null || pip_install PyYAML
python3 -c 'import kubernetes_validate' 2>/dev/null ||
  pip_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"

exec python3 - <<'PY'
import fnmatch
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

K8S_VERSION = os.environ["K8S_VERSION"]
checks = 0
failures = []


def check(ok, what, why=""):
    global checks
    checks += 1
    if ok:
        print(f"  ok    {what}")
    else:
        failures.append(f"{what}: {why}" if why else what)
        print(f"  FAIL  {what}" + (f": {why}" if why else ""))
    return bool(ok)


def section(title):
    print(f"\n== {title}")


# --------------------------------------------------------------------------- k8s
section(f"k8s/ manifests (Kubernetes {K8S_VERSION})")

files = sorted(set(glob.glob("k8s/**/*.yaml", recursive=True) + glob.glob("k8s/**/*.yml", recursive=True)))
check(files, "k8s/ holds manifests")
objects = []  # (file, object)
schema_files, crd_files = [], []
for f in files:
    try:
        with open(f) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    except yaml.YAMLError as e:
        check(False, f"{f} parses as YAML", " ".join(str(e).split()))
        continue
    well_formed = bool(docs) and all(
        isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
        and isinstance(d.get("metadata"), dict) and d["metadata"].get("name")
        for d in docs
    )
    if not check(well_formed, f"{f}: {len(docs)} object(s), each with apiVersion, kind, metadata.name"):
        continue
    keda = [d for d in docs if str(d["apiVersion"]).startswith("keda.sh/")]
    if keda:
        check(len(keda) == len(docs), f"{f}: KEDA objects alone in their file (checked apart from the schemas)")
        crd_files.append(f)
    else:
        schema_files.append(f)
    objects += [(f, d) for d in docs]


def ident(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def key_paths(node, key, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield f"{path}.{k}"
            yield from key_paths(v, key, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from key_paths(v, key, f"{path}[{i}]")


for f in files:
    hits = [f"{ident(o)}{p}" for g, o in objects if g == f for p in key_paths(o, "namespace")]
    check(not hits, f"{f}: namespace-agnostic (no namespace fields)", ", ".join(hits))

# kubernetes-validate, strict. It only warns (exit 0) about a kind it has no schema
# for, so any line other than INFO counts as a failure here.
import kubernetes_validate.version

kv_version = kubernetes_validate.version.__version__
if schema_files:
    print(f"  $ kubernetes-validate --strict -k {K8S_VERSION} {' '.join(schema_files)}")
    run = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, *schema_files],
        capture_output=True, text=True,
    )
    lines = (run.stdout + run.stderr).strip().splitlines()
    for line in lines:
        print(f"      {line}")
    passed = [l for l in lines if l.startswith("INFO ") and " passed " in l]
    others = [l for l in lines if not l.startswith("INFO ")]
    expected = sum(1 for f, _ in objects if f in schema_files)
    check(run.returncode == 0 and not others and len(passed) == expected,
          f"kubernetes-validate {kv_version}: {len(passed)}/{expected} objects valid against Kubernetes {K8S_VERSION} (strict)",
          f"exit {run.returncode}, {len(others)} warning/error line(s)")

by_kind = {}
for f, o in objects:
    by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o


def get(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
        if obj is None:
            return default
    return obj


def pod_spec(obj):
    if obj["kind"] == "CronJob":
        return get(obj, "spec", "jobTemplate", "spec", "template", "spec", default={})
    return get(obj, "spec", "template", "spec", default={})


def pod_labels(obj):
    if obj["kind"] == "CronJob":
        return get(obj, "spec", "jobTemplate", "spec", "template", "metadata", "labels", default={})
    return get(obj, "spec", "template", "metadata", "labels", default={})


def env_of(spec, container):
    """Plain values a container sees: envFrom ConfigMaps, then env values."""
    env = {}
    for src in container.get("envFrom") or []:
        name = get(src, "configMapRef", "name")
        cm = by_kind.get("ConfigMap", {}).get(name)
        if cm:
            env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            env[e["name"]] = None  # from a Secret or field: set, value unknown
    return env


def containers(spec):
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def secret_keys(name):
    s = by_kind.get("Secret", {}).get(name)
    return None if s is None else set(s.get("data") or {}) | set(s.get("stringData") or {})


def configmap_keys(name):
    cm = by_kind.get("ConfigMap", {}).get(name)
    return None if cm is None else set(cm.get("data") or {})


# Every workload: references resolve, volumes are declared, hardening is in place.
for kind in ("Deployment", "CronJob"):
    for name, obj in by_kind.get(kind, {}).items():
        spec = pod_spec(obj)
        w = f"{kind}/{name}"
        missing = []
        for c in containers(spec):
            for src in c.get("envFrom") or []:
                if "configMapRef" in src and configmap_keys(src["configMapRef"]["name"]) is None:
                    missing.append(f"ConfigMap {src['configMapRef']['name']}")
                if "secretRef" in src and secret_keys(src["secretRef"]["name"]) is None:
                    missing.append(f"Secret {src['secretRef']['name']}")
            for e in c.get("env") or []:
                ref = get(e, "valueFrom", "secretKeyRef")
                if ref and ref["key"] not in (secret_keys(ref["name"]) or ()):
                    missing.append(f"Secret {ref['name']} key {ref['key']}")
                ref = get(e, "valueFrom", "configMapKeyRef")
                if ref and ref["key"] not in (configmap_keys(ref["name"]) or ()):
                    missing.append(f"ConfigMap {ref['name']} key {ref['key']}")
        sa = spec.get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", {}):
            missing.append(f"ServiceAccount {sa}")
        check(not missing, f"{w}: the ConfigMaps, Secrets (and keys) and ServiceAccount it uses are in k8s/",
              "missing " + ", ".join(missing))

        declared = {v["name"] for v in spec.get("volumes") or []}
        mounted = {m["name"] for c in containers(spec) for m in c.get("volumeMounts") or []}
        check(mounted <= declared and declared <= mounted, f"{w}: every volume mounted, every mount declared",
              f"undeclared {sorted(mounted - declared)}, unused {sorted(declared - mounted)}")

        bad = []
        pod_sc = spec.get("securityContext") or {}
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and (sc.get("runAsUser", pod_sc.get("runAsUser")) or 0) != 0):
                bad.append(f"{c['name']} may run as root")
            if sc.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{c['name']} root filesystem writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{c['name']} allows privilege escalation")
            res = c.get("resources") or {}
            if not (get(res, "requests", "cpu") and get(res, "requests", "memory") and get(res, "limits", "memory")):
                bad.append(f"{c['name']} lacks cpu/memory requests or a memory limit")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = get(c, probe, "httpGet", "port")
                if port is not None and port_number(c, port) is None:
                    bad.append(f"{c['name']} {probe} port {port} not declared")
        check(not bad, f"{w}: non-root, read-only root filesystem, no privilege escalation, resources, probe ports declared",
              "; ".join(bad))


def http_probe(c, probe):
    return get(c, probe, "httpGet", "path"), port_number(c, get(c, probe, "httpGet", "port"))


def writable(spec, c, path):
    """path is on an emptyDir mount of c."""
    empty = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    return any(m["name"] in empty and (path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/"))
               for m in c.get("volumeMounts") or [])


# mcp-server: Deployment, Service, HPA, PDB.
server = by_kind.get("Deployment", {}).get("mcp-server")
if check(server, "Deployment/mcp-server exists"):
    spec = pod_spec(server)
    c = (spec.get("containers") or [{}])[0]
    env = env_of(spec, c)
    check((get(server, "spec", "replicas", default=1)) >= 2, "Deployment/mcp-server: at least 2 replicas")
    check(http_probe(c, "readinessProbe") == ("/ready", 8080), "Deployment/mcp-server: readiness probe GET /ready on 8080",
          str(http_probe(c, "readinessProbe")))
    check(http_probe(c, "livenessProbe") == ("/health", 8080), "Deployment/mcp-server: liveness probe GET /health on 8080",
          str(http_probe(c, "livenessProbe")))
    home = env.get("HOME")
    check(writable(spec, c, "/tmp") and (home is None or writable(spec, c, home)),
          f"Deployment/mcp-server: /tmp and HOME ({home}) on emptyDir volumes (read-only root filesystem)")
    check("MCP_API_KEYS" in env, "Deployment/mcp-server: MCP_API_KEYS set")
    labels = pod_labels(server)
    svc = by_kind.get("Service", {}).get("mcp-server")
    if check(svc, "Service/mcp-server exists"):
        sel = get(svc, "spec", "selector", default={})
        ports = get(svc, "spec", "ports", default=[])
        check(sel and sel.items() <= labels.items() and any(port_number(c, p.get("targetPort", p.get("port"))) == 8080 for p in ports),
              "Service/mcp-server: selects the mcp-server pods, targets port 8080")
    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()
            if get(h, "spec", "scaleTargetRef", "name") == "mcp-server"]
    if check(len(hpas) == 1, "HorizontalPodAutoscaler on Deployment/mcp-server exists"):
        h = hpas[0]
        cpu = [m for m in get(h, "spec", "metrics", default=[]) if get(m, "resource", "name") == "cpu"]
        check(h["apiVersion"] == "autoscaling/v2" and get(h, "spec", "scaleTargetRef", "kind") == "Deployment" and cpu
              and 2 <= get(h, "spec", "minReplicas", default=1) <= get(h, "spec", "maxReplicas", default=0),
              f"{ident(h)}: autoscaling/v2 on CPU, 2 <= minReplicas <= maxReplicas")
    pdbs = [p for p in by_kind.get("PodDisruptionBudget", {}).values()
            if (get(p, "spec", "selector", "matchLabels", default={}) or {}).items() <= labels.items()
            and get(p, "spec", "selector", "matchLabels")]
    check(pdbs, "PodDisruptionBudget selecting the mcp-server pods exists")

# kafka-worker: grace period, metrics port and probes.
worker = by_kind.get("Deployment", {}).get("kafka-worker")
worker_env = {}
if check(worker, "Deployment/kafka-worker exists"):
    spec = pod_spec(worker)
    c = (spec.get("containers") or [{}])[0]
    worker_env = env_of(spec, c)
    grace = worker_env.get("SHUTDOWN_GRACE_SECONDS")
    source = "its env"
    if grace is None:
        source = "default in pkg/worker/src/config.rs"
        m = re.search(r"fn default_shutdown_grace_seconds\(\)\s*->\s*u64\s*\{\s*([\d_]+)\s*\}",
                      open("pkg/worker/src/config.rs").read())
        grace = m and m.group(1).replace("_", "")
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    check(grace is not None and tgps > int(grace),
          f"Deployment/kafka-worker: terminationGracePeriodSeconds {tgps} > SHUTDOWN_GRACE_SECONDS {grace} ({source})")
    metrics = int(worker_env.get("METRICS_PORT") or 9090)
    declared = [p.get("containerPort") for p in c.get("ports") or []]
    check(metrics in declared, f"Deployment/kafka-worker: metrics port {metrics} (METRICS_PORT) declared", f"ports {declared}")
    check(http_probe(c, "readinessProbe") == ("/ready", metrics) and http_probe(c, "livenessProbe") == ("/health", metrics),
          f"Deployment/kafka-worker: readiness GET /ready and liveness GET /health on {metrics}",
          f"{http_probe(c, 'readinessProbe')}, {http_probe(c, 'livenessProbe')}")
    missing = [k for k in ("KAFKA_BROKERS", "KAFKA_TOPIC", "MCP_CONSUMER_GROUP", "MCP_SERVER_URL", "MCP_API_KEY",
                           "WORKER_CONCURRENCY", "SHUTDOWN_GRACE_SECONDS") if k not in worker_env]
    check(not missing, "Deployment/kafka-worker: KAFKA_BROKERS, KAFKA_TOPIC, MCP_CONSUMER_GROUP, MCP_SERVER_URL, "
          "MCP_API_KEY, WORKER_CONCURRENCY, SHUTDOWN_GRACE_SECONDS set", f"missing {missing}")

# The console: read-only unless changed, keyed, reachable through its Service.
console = by_kind.get("Deployment", {}).get("mcp-jobs-console")
if check(console, "Deployment/mcp-jobs-console exists"):
    spec = pod_spec(console)
    c = (spec.get("containers") or [{}])[0]
    env = env_of(spec, c)
    check(c.get("args") == ["console"], "Deployment/mcp-jobs-console: runs `kafka-worker console`", str(c.get("args")))
    check(str(env.get("CONSOLE_READ_ONLY")).lower() == "true", "Deployment/mcp-jobs-console: CONSOLE_READ_ONLY=true",
          str(env.get("CONSOLE_READ_ONLY")))
    check("CONSOLE_API_KEYS" in env, "Deployment/mcp-jobs-console: CONSOLE_API_KEYS set")
    missing = [k for k in ("KAFKA_BROKERS", "KAFKA_TOPIC", "MCP_CONSUMER_GROUP") if k not in env]
    check(not missing, "Deployment/mcp-jobs-console: the workers' topic and group", f"missing {missing}")
    http = int(env.get("CONSOLE_PORT") or 8081)
    svc = by_kind.get("Service", {}).get("mcp-jobs-console")
    if check(svc, "Service/mcp-jobs-console exists"):
        sel = get(svc, "spec", "selector", default={})
        ports = get(svc, "spec", "ports", default=[])
        check(sel and sel.items() <= pod_labels(console).items()
              and any(port_number(c, p.get("targetPort", p.get("port"))) == http for p in ports),
              f"Service/mcp-jobs-console: selects the console pods, targets CONSOLE_PORT {http}")

for name, port in (("mcp-server", 8080), ("kafka-worker", int(worker_env.get("METRICS_PORT") or 9090))):
    d = by_kind.get("Deployment", {}).get(name)
    a = get(d, "spec", "template", "metadata", "annotations", default={}) if d else {}
    check(a.get("prometheus.io/scrape") == "true" and str(a.get("prometheus.io/port")) == str(port),
          f"Deployment/{name}: prometheus.io scrape annotations on port {port}")

# KEDA ScaledObject: structure, and the same lag as `kafka-worker lag --replicas`.
keda_objects = [(f, o) for f, o in objects if f in crd_files]
check(any(o["kind"] == "ScaledObject" for _, o in keda_objects), "a KEDA ScaledObject exists")
for f, so in keda_objects:
    w = f"{f}: {ident(so)}"
    if not check(so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject",
                 f"{w}: apiVersion keda.sh/v1alpha1, kind ScaledObject", f"{so['apiVersion']} {so['kind']}"):
        continue
    spec = so.get("spec") or {}
    known = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "idleReplicaCount", "initialCooldownPeriod",
             "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}
    check(set(spec) <= known, f"{w}: only known spec fields", f"unknown {sorted(set(spec) - known)}")
    ref = spec.get("scaleTargetRef") or {}
    check(ref.get("name") == "kafka-worker" and ref.get("kind", "Deployment") == "Deployment"
          and ref.get("apiVersion", "apps/v1") == "apps/v1" and worker is not None,
          f"{w}: scaleTargetRef is Deployment/{ref.get('name')} (the worker's)")
    kafka = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
    if check(len(kafka) == 1, f"{w}: one trigger of type kafka"):
        md = kafka[0].get("metadata") or {}
        need = ("bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold")
        absent = [k for k in need if not isinstance(md.get(k), str) or not md[k]]
        check(not absent, f"{w}: kafka metadata {', '.join(need)} set (as strings)", f"absent or not strings: {absent}")
        lag = md.get("lagThreshold", "")
        act = md.get("activationLagThreshold", "")
        check(str(lag).isdigit() and int(lag) > 0 and str(act).isdigit(),
              f"{w}: lagThreshold {lag} > 0, activationLagThreshold {act} >= 0")
        for key, var in (("bootstrapServers", "KAFKA_BROKERS"), ("consumerGroup", "MCP_CONSUMER_GROUP"),
                         ("topic", "KAFKA_TOPIC"), ("lagThreshold", "LAG_PER_REPLICA")):
            check(str(md.get(key)) == str(worker_env.get(var)), f"{w}: {key} = the worker's {var} ({worker_env.get(var)})",
                  f"{md.get(key)!r}")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    check(isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi and hi >= 1,
          f"{w}: 0 <= minReplicaCount {lo} <= maxReplicaCount {hi}, max >= 1")
    for field, value, var in (("minReplicaCount", lo, "MIN_REPLICAS"), ("maxReplicaCount", hi, "MAX_REPLICAS")):
        if worker_env.get(var) is not None:
            check(str(value) == worker_env[var], f"{w}: {field} = the worker's {var} ({worker_env[var]})")

# Lag scaler for clusters without KEDA: CronJob + ServiceAccount/Role/RoleBinding.
cronjobs = [o for o in by_kind.get("CronJob", {}).values()
            if "kafka-worker lag --replicas" in json.dumps(o)]
if check(len(cronjobs) == 1, "a CronJob running `kafka-worker lag --replicas` exists"):
    cj = cronjobs[0]
    w = ident(cj)
    spec = pod_spec(cj)
    check(get(cj, "spec", "schedule") == "* * * * *", f"{w}: runs every minute")
    script = json.dumps([(c.get("command") or []) + (c.get("args") or []) for c in spec.get("containers") or []])
    check(re.search(r"kubectl scale deployment kafka-worker --replicas=", script) and worker is not None,
          f"{w}: runs `kubectl scale deployment kafka-worker --replicas=N` on the worker Deployment")
    # kubectl reaches the script's container through a volume an initContainer fills.
    inits = {m["name"] for c in spec.get("initContainers") or [] for m in c.get("volumeMounts") or []}
    mains = {m["name"] for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    empty = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    check(inits & mains & empty, f"{w}: an initContainer shares an emptyDir with the scaling container")
    sa = spec.get("serviceAccountName")
    bindings = [b for b in by_kind.get("RoleBinding", {}).values()
                if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa for s in b.get("subjects") or [])
                and get(b, "roleRef", "kind") == "Role"]
    roles = [by_kind.get("Role", {}).get(get(b, "roleRef", "name")) for b in bindings]
    granted = set()
    for role in filter(None, roles):
        for rule in role.get("rules") or []:
            if "apps" in (rule.get("apiGroups") or []):
                names = rule.get("resourceNames")
                if names and "kafka-worker" not in names:
                    continue
                granted |= {(r, v) for r in rule.get("resources") or [] for v in rule.get("verbs") or []}
    need = {(r, v) for r in ("deployments", "deployments/scale") for v in ("get", "patch")}
    check(sa and need <= granted, f"{w}: ServiceAccount {sa} bound to a Role granting get/patch on deployments and deployments/scale",
          f"missing {sorted(need - granted)}")
    cluster = [b for b in by_kind.get("ClusterRoleBinding", {}).values()
               if any(s.get("name") == sa for s in b.get("subjects") or [])]
    check(not cluster, f"{w}: no cluster-wide rights for {sa}")

# ------------------------------------------------------------------- compose
section("docker-compose.yml")

compose = None
try:
    with open("docker-compose.yml") as fh:
        compose = yaml.safe_load(fh)
    check(isinstance(compose, dict) and isinstance(compose.get("services"), dict), "docker-compose.yml parses, has services")
except (OSError, yaml.YAMLError) as e:
    check(False, "docker-compose.yml parses", " ".join(str(e).split()))

dockerfiles = {}  # path -> build context
if isinstance(compose, dict) and isinstance(compose.get("services"), dict):
    services = compose["services"]

    def env(svc):
        e = services.get(svc, {}).get("environment") or {}
        if isinstance(e, list):
            e = dict(item.split("=", 1) if "=" in item else (item, None) for item in e)
        return {k: None if v is None else str(v) for k, v in e.items()}

    for name in ("kafka", "create-topics", "redis", "mcp-server", "kafka-worker", "console", "jaeger", "prometheus"):
        check(name in services, f"service {name} defined")

    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        ctx = build.get("context", ".")
        df = os.path.normpath(os.path.join(ctx, build.get("dockerfile", "Dockerfile")))
        check(os.path.isdir(ctx) and os.path.isfile(df), f"{name}: build context {ctx} and {df} exist")
        dockerfiles[df] = ctx

    declared_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                src = v.split(":", 1)[0] if ":" in v else None
                kind = "bind" if src and src[0] in "./~" else "volume"
            else:
                src, kind = v.get("source"), v.get("type", "volume")
            if kind == "bind":
                check(os.path.exists(src), f"{name}: mounted {src} exists")
            elif src:
                check(src in declared_volumes, f"{name}: volume {src} declared")
        for ef in [svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get("env_file") or []:
            path = ef if isinstance(ef, str) else ef.get("path")
            check(os.path.isfile(path), f"{name}: env_file {path} exists")
        deps = svc.get("depends_on") or []
        unknown = [d for d in deps if d not in services]
        if deps:
            check(not unknown, f"{name}: depends_on names defined services", f"unknown {unknown}")

    worker_svc = services.get("kafka-worker") or {}
    host_ports = []
    for p in worker_svc.get("ports") or []:
        if isinstance(p, dict):
            if p.get("published"):
                host_ports.append(str(p))
        elif ":" in str(p).rsplit("/", 1)[0]:
            host_ports.append(str(p))
    check("container_name" not in worker_svc and not host_ports,
          "kafka-worker: no container_name, no host ports (docker compose up --scale kafka-worker=N works)",
          f"container_name {worker_svc.get('container_name')}, host ports {host_ports}")
    grace = env("kafka-worker").get("SHUTDOWN_GRACE_SECONDS") or "25"
    stop = re.fullmatch(r"(\d+)s", str(worker_svc.get("stop_grace_period", "10s")))
    check(stop and int(stop.group(1)) > int(grace),
          f"kafka-worker: stop_grace_period {worker_svc.get('stop_grace_period', '10s (default)')} > SHUTDOWN_GRACE_SECONDS {grace}")

    kafka = services.get("kafka") or {}
    check(str(kafka.get("image", "")).startswith("apache/kafka") and "controller" in (env("kafka").get("KAFKA_PROCESS_ROLES") or "")
          and not any("ZOOKEEPER" in k for k in env("kafka")),
          "kafka: apache/kafka image in KRaft mode (process roles broker,controller, no ZooKeeper)")
    check("create-topics" in json.dumps((services.get("create-topics") or {}).get("command")),
          "create-topics: runs `kafka-worker create-topics`")
    jaeger = services.get("jaeger") or {}
    check("jaeger" in str(jaeger.get("image", "")) and "all-in-one" in str(jaeger.get("image", ""))
          and str(env("jaeger").get("COLLECTOR_OTLP_ENABLED")).lower() == "true",
          "jaeger: all-in-one image with COLLECTOR_OTLP_ENABLED=true")
    for name in ("mcp-server", "kafka-worker"):
        endpoint = env(name).get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
        host = re.sub(r"^\w+://([^:/]+).*$", r"\1", endpoint)
        check(endpoint and host in services, f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT ({endpoint}) points at a compose service")

    # Prometheus: its mounted config scrapes mcp-server:8080 and every kafka-worker on 9090.
    prom_cfg = None
    for v in (services.get("prometheus") or {}).get("volumes") or []:
        src, _, dst = str(v).partition(":") if isinstance(v, str) else (v.get("source"), "", v.get("target"))
        if str(dst).startswith("/etc/prometheus/prometheus.yml"):
            prom_cfg = src
    if check(prom_cfg and os.path.isfile(prom_cfg), f"prometheus: scrape config mounted from the repo ({prom_cfg})"):
        try:
            with open(prom_cfg) as fh:
                prom = yaml.safe_load(fh) or {}
            targets = set()
            for job in prom.get("scrape_configs") or []:
                for sc in job.get("static_configs") or []:
                    targets |= set(sc.get("targets") or [])
                for sd in job.get("dns_sd_configs") or []:
                    targets |= {f"{n}:{sd.get('port')}" for n in sd.get("names") or []}
            check("mcp-server:8080" in targets, f"{prom_cfg}: scrapes mcp-server:8080")
            check({"kafka-worker:9090", "tasks.kafka-worker:9090"} & targets, f"{prom_cfg}: scrapes kafka-worker:9090 (every replica)")
        except yaml.YAMLError as e:
            check(False, f"{prom_cfg} parses", " ".join(str(e).split()))

# --------------------------------------------------------------- Dockerfiles
section("Dockerfiles")

for df in sorted(glob.glob("Dockerfile*")):
    dockerfiles.setdefault(df, ".")


def instructions(path):
    out, current = [], ""
    with open(path) as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            # Comment lines are dropped, also inside a continued instruction.
            if line.strip().startswith("#"):
                continue
            if line.rstrip().endswith("\\"):
                current += line.rstrip()[:-1] + " "
                continue
            current += line
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


for df, ctx in sorted(dockerfiles.items()):
    if not check(os.path.isfile(df), f"{df} exists"):
        continue
    ins = instructions(df)
    stages, final_start = [], 0
    for i, (word, rest) in enumerate(ins):
        if word == "FROM":
            m = re.search(r"\s+as\s+(\S+)\s*$", rest, re.I)
            stages.append(m.group(1) if m else None)
            final_start = i
    check(len(stages) >= 2, f"{df}: multi-stage ({len(stages)} stages)")
    missing = []
    for word, rest in ins:
        if word not in ("COPY", "ADD"):
            continue
        try:
            args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        except ValueError:
            args = rest.split()
        flags = [a for a in args if a.startswith("--")]
        args = [a for a in args if not a.startswith("--")]
        frm = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
        if frm:
            if frm[0] not in stages and not re.search(r"[/:.]", frm[0]):
                missing.append(f"stage {frm[0]}")
            continue
        for src in args[:-1]:
            if re.match(r"^(https?|git)://", src):
                continue
            if not glob.glob(os.path.join(ctx, src)):
                missing.append(src)
    check(not missing, f"{df}: every COPY/ADD source exists in build context {ctx}", f"missing {missing}")
    ignore_file = os.path.join(ctx, ".dockerignore")
    ignored = []
    if os.path.isfile(ignore_file):
        with open(ignore_file) as f:
            patterns = [l.strip().rstrip("/") for l in f if l.strip() and not l.startswith("#")]
        for word, rest in ins:
            if word not in ("COPY", "ADD") or "--from=" in rest:
                continue
            for src in shlex.split(rest)[:-1]:
                parts = os.path.normpath(src).split(os.sep)
                for pattern in patterns:
                    bare = pattern.removeprefix("**/")
                    if any(fnmatch.fnmatch("/".join(parts[:n]), bare) for n in range(1, len(parts) + 1)) or \
                       (pattern.startswith("**/") and any(fnmatch.fnmatch(part, bare) for part in parts)):
                        ignored.append(f"{src} ({pattern})")
    check(os.path.isfile(ignore_file), f"{ctx}/.dockerignore keeps build output and dependencies out of the context")
    check(not ignored, f"{df}: no COPY source is excluded by .dockerignore", f"excluded {ignored}")
    final = ins[final_start:]
    users = [rest for word, rest in final if word == "USER"]
    check(users and users[-1].split(":")[0] not in ("root", "0"), f"{df}: final stage runs as a non-root USER ({users[-1] if users else 'none'})")
    health = [rest for word, rest in final if word == "HEALTHCHECK"]
    check(health and health[-1].upper() != "NONE", f"{df}: final stage has a HEALTHCHECK")
    if df.endswith("worker"):
        check(health and re.search(r"127\.0\.0\.1:[^/\s]*9090[^/\s]*/health", health[-1]),
              f"{df}: HEALTHCHECK hits http://127.0.0.1:9090/health")
    if df.endswith("server"):
        entry = [rest for word, rest in final if word == "ENTRYPOINT"]
        check(entry and "tini" in entry[-1], f"{df}: tini is the entrypoint (reaps orphaned children)")

# ------------------------------------------------------------------- summary
print()
if failures:
    print(f"validate-deploy: {len(failures)} of {checks} checks FAILED:")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print(f"validate-deploy: all {checks} checks passed (static: no Docker engine or cluster used)")
PY
