"""k8s/: kubernetes-validate against the Kubernetes schemas, strict, then what schemas
cannot see: no namespace fields, references between objects (ConfigMaps, Secrets and
their keys, selectors, scale targets, RBAC), probes, grace periods, and KEDA agreeing
with the worker. Settings a manifest leaves unset are read as kafka-worker's own
defaults (`kafka-worker config --defaults`), never guessed."""

import json
import re
import subprocess
import sys

from .manifests import (
    containers,
    get,
    http_probe,
    ident,
    key_paths,
    pod_labels,
    pod_spec,
    port_number,
    writable,
)


def check_all(report, manifests, defaults, k8s_version):
    for f in manifests.files:
        hits = [f"{ident(o)}{p}" for g, o in manifests.objects if g == f for p in key_paths(o, "namespace")]
        report.check(not hits, f"{f}: namespace-agnostic (no namespace fields)", ", ".join(hits))
    check_schemas(report, manifests, k8s_version)
    check_workloads(report, manifests)
    check_server(report, manifests)
    worker_env = check_worker(report, manifests, defaults)
    check_console(report, manifests, defaults)
    metrics_port = int(worker_env.get("METRICS_PORT") or defaults["METRICS_PORT"])
    check_scrape_annotations(report, manifests, metrics_port)
    check_keda(report, manifests, worker_env)
    check_lag_cronjob(report, manifests)


def check_schemas(report, manifests, k8s_version):
    """kubernetes-validate, strict. It only warns (exit 0) about a kind it has no schema
    for, so any line other than INFO counts as a failure here."""
    import kubernetes_validate.version

    if not manifests.schema_files:
        return
    print(f"  $ kubernetes-validate --strict -k {k8s_version} {' '.join(manifests.schema_files)}")
    run = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", k8s_version, *manifests.schema_files],
        capture_output=True, text=True, check=False,
    )
    lines = (run.stdout + run.stderr).strip().splitlines()
    for line in lines:
        print(f"      {line}")
    passed = [line for line in lines if line.startswith("INFO ") and " passed " in line]
    others = [line for line in lines if not line.startswith("INFO ")]
    expected = sum(1 for f, _ in manifests.objects if f in manifests.schema_files)
    report.check(run.returncode == 0 and not others and len(passed) == expected,
                 f"kubernetes-validate {kubernetes_validate.version.__version__}: {len(passed)}/{expected} objects "
                 f"valid against Kubernetes {k8s_version} (strict)",
                 f"exit {run.returncode}, {len(others)} warning/error line(s)")


def check_workloads(report, manifests):
    """Every workload: references resolve, volumes are declared, hardening is in place."""
    for kind in ("Deployment", "CronJob"):
        for name, obj in manifests.of_kind(kind).items():
            spec = pod_spec(obj)
            w = f"{kind}/{name}"
            missing = missing_references(manifests, spec)
            report.check(not missing, f"{w}: the ConfigMaps, Secrets (and keys) and ServiceAccount it uses are in k8s/",
                         "missing " + ", ".join(missing))
            declared = {v["name"] for v in spec.get("volumes") or []}
            mounted = {m["name"] for c in containers(spec) for m in c.get("volumeMounts") or []}
            report.check(mounted == declared, f"{w}: every volume mounted, every mount declared",
                         f"undeclared {sorted(mounted - declared)}, unused {sorted(declared - mounted)}")
            bad = hardening_gaps(spec)
            report.check(not bad, f"{w}: non-root, read-only root filesystem, no privilege escalation, resources, "
                                  "probe ports declared", "; ".join(bad))


def missing_references(manifests, spec):
    missing = []
    for c in containers(spec):
        for src in c.get("envFrom") or []:
            if "configMapRef" in src and manifests.configmap_keys(src["configMapRef"]["name"]) is None:
                missing.append(f"ConfigMap {src['configMapRef']['name']}")
            if "secretRef" in src and manifests.secret_keys(src["secretRef"]["name"]) is None:
                missing.append(f"Secret {src['secretRef']['name']}")
        for e in c.get("env") or []:
            ref = get(e, "valueFrom", "secretKeyRef")
            if ref and ref["key"] not in (manifests.secret_keys(ref["name"]) or ()):
                missing.append(f"Secret {ref['name']} key {ref['key']}")
            ref = get(e, "valueFrom", "configMapKeyRef")
            if ref and ref["key"] not in (manifests.configmap_keys(ref["name"]) or ()):
                missing.append(f"ConfigMap {ref['name']} key {ref['key']}")
    sa = spec.get("serviceAccountName")
    if sa and sa not in manifests.of_kind("ServiceAccount"):
        missing.append(f"ServiceAccount {sa}")
    return missing


def hardening_gaps(spec):
    bad = []
    pod_sc = spec.get("securityContext") or {}
    for c in containers(spec):
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if not (non_root and (sc.get("runAsUser", pod_sc.get("runAsUser")) or 0) != 0):
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
    return bad


def selects(service, labels, container, port):
    sel = get(service, "spec", "selector", default={})
    ports = get(service, "spec", "ports", default=[])
    return bool(sel) and sel.items() <= labels.items() and any(
        port_number(container, p.get("targetPort", p.get("port"))) == port for p in ports)


def check_server(report, manifests):
    """mcp-server: Deployment, Service, HPA, PDB."""
    server = manifests.named("Deployment", "mcp-server")
    if not report.check(server, "Deployment/mcp-server exists"):
        return
    spec = pod_spec(server)
    c = (spec.get("containers") or [{}])[0]
    env = manifests.env_of(c)
    report.check((get(server, "spec", "replicas", default=1)) >= 2, "Deployment/mcp-server: at least 2 replicas")
    report.check(http_probe(c, "readinessProbe") == ("/ready", 8080),
                 "Deployment/mcp-server: readiness probe GET /ready on 8080", str(http_probe(c, "readinessProbe")))
    report.check(http_probe(c, "livenessProbe") == ("/health", 8080),
                 "Deployment/mcp-server: liveness probe GET /health on 8080", str(http_probe(c, "livenessProbe")))
    home = env.get("HOME")
    report.check(writable(spec, c, "/tmp") and (home is None or writable(spec, c, home)),
                 f"Deployment/mcp-server: /tmp and HOME ({home}) on emptyDir volumes (read-only root filesystem)")
    report.check("MCP_API_KEYS" in env, "Deployment/mcp-server: MCP_API_KEYS set")
    labels = pod_labels(server)
    svc = manifests.named("Service", "mcp-server")
    if report.check(svc, "Service/mcp-server exists"):
        report.check(selects(svc, labels, c, 8080), "Service/mcp-server: selects the mcp-server pods, targets port 8080")
    hpas = [h for h in manifests.of_kind("HorizontalPodAutoscaler").values()
            if get(h, "spec", "scaleTargetRef", "name") == "mcp-server"]
    if report.check(len(hpas) == 1, "HorizontalPodAutoscaler on Deployment/mcp-server exists"):
        h = hpas[0]
        cpu = [m for m in get(h, "spec", "metrics", default=[]) if get(m, "resource", "name") == "cpu"]
        report.check(h["apiVersion"] == "autoscaling/v2" and get(h, "spec", "scaleTargetRef", "kind") == "Deployment"
                     and cpu and 2 <= get(h, "spec", "minReplicas", default=1) <= get(h, "spec", "maxReplicas", default=0),
                     f"{ident(h)}: autoscaling/v2 on CPU, 2 <= minReplicas <= maxReplicas")
    pdbs = [p for p in manifests.of_kind("PodDisruptionBudget").values()
            if get(p, "spec", "selector", "matchLabels")
            and get(p, "spec", "selector", "matchLabels").items() <= labels.items()]
    report.check(pdbs, "PodDisruptionBudget selecting the mcp-server pods exists")


def check_worker(report, manifests, defaults):
    """kafka-worker: grace period, metrics port and probes. Returns the environment its
    container sees, which KEDA must agree with."""
    worker = manifests.named("Deployment", "kafka-worker")
    if not report.check(worker, "Deployment/kafka-worker exists"):
        return {}
    spec = pod_spec(worker)
    c = (spec.get("containers") or [{}])[0]
    worker_env = manifests.env_of(c)
    grace = worker_env.get("SHUTDOWN_GRACE_SECONDS")
    source = "its env"
    if grace is None:
        grace, source = defaults["SHUTDOWN_GRACE_SECONDS"], "kafka-worker's default"
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    report.check(tgps > int(grace),
                 f"Deployment/kafka-worker: terminationGracePeriodSeconds {tgps} > SHUTDOWN_GRACE_SECONDS {grace} ({source})")
    metrics = int(worker_env.get("METRICS_PORT") or defaults["METRICS_PORT"])
    declared = [p.get("containerPort") for p in c.get("ports") or []]
    report.check(metrics in declared, f"Deployment/kafka-worker: metrics port {metrics} (METRICS_PORT) declared",
                 f"ports {declared}")
    report.check(http_probe(c, "readinessProbe") == ("/ready", metrics)
                 and http_probe(c, "livenessProbe") == ("/health", metrics),
                 f"Deployment/kafka-worker: readiness GET /ready and liveness GET /health on {metrics}",
                 f"{http_probe(c, 'readinessProbe')}, {http_probe(c, 'livenessProbe')}")
    needed = ("KAFKA_BROKERS", "KAFKA_TOPIC", "MCP_CONSUMER_GROUP", "MCP_SERVER_URL", "MCP_API_KEY",
              "WORKER_CONCURRENCY", "SHUTDOWN_GRACE_SECONDS")
    missing = [k for k in needed if k not in worker_env]
    report.check(not missing, f"Deployment/kafka-worker: {', '.join(needed)} set", f"missing {missing}")
    return worker_env


def check_console(report, manifests, defaults):
    """The console: read-only unless changed, keyed, reachable through its Service."""
    console = manifests.named("Deployment", "mcp-jobs-console")
    if not report.check(console, "Deployment/mcp-jobs-console exists"):
        return
    c = (pod_spec(console).get("containers") or [{}])[0]
    env = manifests.env_of(c)
    report.check(c.get("args") == ["console"], "Deployment/mcp-jobs-console: runs `kafka-worker console`",
                 str(c.get("args")))
    report.check(str(env.get("CONSOLE_READ_ONLY")).lower() == "true",
                 "Deployment/mcp-jobs-console: CONSOLE_READ_ONLY=true", str(env.get("CONSOLE_READ_ONLY")))
    report.check("CONSOLE_API_KEYS" in env, "Deployment/mcp-jobs-console: CONSOLE_API_KEYS set")
    missing = [k for k in ("KAFKA_BROKERS", "KAFKA_TOPIC", "MCP_CONSUMER_GROUP") if k not in env]
    report.check(not missing, "Deployment/mcp-jobs-console: the workers' topic and group", f"missing {missing}")
    http = int(env.get("CONSOLE_PORT") or defaults["CONSOLE_PORT"])
    svc = manifests.named("Service", "mcp-jobs-console")
    if report.check(svc, "Service/mcp-jobs-console exists"):
        report.check(selects(svc, pod_labels(console), c, http),
                     f"Service/mcp-jobs-console: selects the console pods, targets CONSOLE_PORT {http}")


def check_scrape_annotations(report, manifests, metrics_port):
    for name, port in (("mcp-server", 8080), ("kafka-worker", metrics_port)):
        d = manifests.named("Deployment", name)
        a = get(d, "spec", "template", "metadata", "annotations", default={}) if d else {}
        report.check(a.get("prometheus.io/scrape") == "true" and str(a.get("prometheus.io/port")) == str(port),
                     f"Deployment/{name}: prometheus.io scrape annotations on port {port}")


KEDA_SPEC_FIELDS = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "idleReplicaCount", "initialCooldownPeriod",
                    "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}


def check_keda(report, manifests, worker_env):
    """KEDA ScaledObject: structure, and the same lag as `kafka-worker lag --replicas`."""
    keda_objects = [(f, o) for f, o in manifests.objects if f in manifests.crd_files]
    report.check(any(o["kind"] == "ScaledObject" for _, o in keda_objects), "a KEDA ScaledObject exists")
    for f, so in keda_objects:
        w = f"{f}: {ident(so)}"
        if not report.check(so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject",
                            f"{w}: apiVersion keda.sh/v1alpha1, kind ScaledObject", f"{so['apiVersion']} {so['kind']}"):
            continue
        spec = so.get("spec") or {}
        report.check(set(spec) <= KEDA_SPEC_FIELDS, f"{w}: only known spec fields",
                     f"unknown {sorted(set(spec) - KEDA_SPEC_FIELDS)}")
        ref = spec.get("scaleTargetRef") or {}
        report.check(ref.get("name") == "kafka-worker" and ref.get("kind", "Deployment") == "Deployment"
                     and ref.get("apiVersion", "apps/v1") == "apps/v1"
                     and manifests.named("Deployment", "kafka-worker") is not None,
                     f"{w}: scaleTargetRef is Deployment/{ref.get('name')} (the worker's)")
        kafka = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
        if report.check(len(kafka) == 1, f"{w}: one trigger of type kafka"):
            check_kafka_trigger(report, w, kafka[0].get("metadata") or {}, worker_env)
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        report.check(isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi and hi >= 1,
                     f"{w}: 0 <= minReplicaCount {lo} <= maxReplicaCount {hi}, max >= 1")
        for field, value, var in (("minReplicaCount", lo, "MIN_REPLICAS"), ("maxReplicaCount", hi, "MAX_REPLICAS")):
            if worker_env.get(var) is not None:
                report.check(str(value) == worker_env[var], f"{w}: {field} = the worker's {var} ({worker_env[var]})")


def check_kafka_trigger(report, w, md, worker_env):
    need = ("bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold")
    absent = [k for k in need if not isinstance(md.get(k), str) or not md[k]]
    report.check(not absent, f"{w}: kafka metadata {', '.join(need)} set (as strings)", f"absent or not strings: {absent}")
    lag = md.get("lagThreshold", "")
    act = md.get("activationLagThreshold", "")
    report.check(str(lag).isdigit() and int(lag) > 0 and str(act).isdigit(),
                 f"{w}: lagThreshold {lag} > 0, activationLagThreshold {act} >= 0")
    for key, var in (("bootstrapServers", "KAFKA_BROKERS"), ("consumerGroup", "MCP_CONSUMER_GROUP"),
                     ("topic", "KAFKA_TOPIC"), ("lagThreshold", "LAG_PER_REPLICA")):
        report.check(str(md.get(key)) == str(worker_env.get(var)),
                     f"{w}: {key} = the worker's {var} ({worker_env.get(var)})", f"{md.get(key)!r}")


def check_lag_cronjob(report, manifests):
    """The lag scaler for clusters without KEDA: CronJob + ServiceAccount/Role/RoleBinding."""
    cronjobs = [o for o in manifests.of_kind("CronJob").values() if "kafka-worker lag --replicas" in json.dumps(o)]
    if not report.check(len(cronjobs) == 1, "a CronJob running `kafka-worker lag --replicas` exists"):
        return
    cj = cronjobs[0]
    w = ident(cj)
    spec = pod_spec(cj)
    report.check(get(cj, "spec", "schedule") == "* * * * *", f"{w}: runs every minute")
    script = json.dumps([(c.get("command") or []) + (c.get("args") or []) for c in spec.get("containers") or []])
    report.check(re.search(r"kubectl scale deployment kafka-worker --replicas=", script)
                 and manifests.named("Deployment", "kafka-worker") is not None,
                 f"{w}: runs `kubectl scale deployment kafka-worker --replicas=N` on the worker Deployment")
    # kubectl reaches the script's container through a volume an initContainer fills.
    inits = {m["name"] for c in spec.get("initContainers") or [] for m in c.get("volumeMounts") or []}
    mains = {m["name"] for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    empty = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    report.check(inits & mains & empty, f"{w}: an initContainer shares an emptyDir with the scaling container")
    sa = spec.get("serviceAccountName")
    granted = rights_of(manifests, sa)
    need = {(r, v) for r in ("deployments", "deployments/scale") for v in ("get", "patch")}
    report.check(sa and need <= granted,
                 f"{w}: ServiceAccount {sa} bound to a Role granting get/patch on deployments and deployments/scale",
                 f"missing {sorted(need - granted)}")
    cluster = [b for b in manifests.of_kind("ClusterRoleBinding").values()
               if any(s.get("name") == sa for s in b.get("subjects") or [])]
    report.check(not cluster, f"{w}: no cluster-wide rights for {sa}")


def rights_of(manifests, service_account):
    """(resource, verb) pairs on the kafka-worker Deployment that Roles bound to the
    service account grant."""
    bindings = [b for b in manifests.of_kind("RoleBinding").values()
                if any(s.get("kind") == "ServiceAccount" and s.get("name") == service_account
                       for s in b.get("subjects") or [])
                and get(b, "roleRef", "kind") == "Role"]
    granted = set()
    for role in filter(None, (manifests.named("Role", get(b, "roleRef", "name")) for b in bindings)):
        for rule in role.get("rules") or []:
            if "apps" not in (rule.get("apiGroups") or []):
                continue
            names = rule.get("resourceNames")
            if names and "kafka-worker" not in names:
                continue
            granted |= {(r, v) for r in rule.get("resources") or [] for v in rule.get("verbs") or []}
    return granted
