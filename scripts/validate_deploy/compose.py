"""docker-compose.yml: it parses, its build contexts, Dockerfiles and mounted files
exist, kafka-worker can be scaled (no container_name, no host ports), and the services
the README promises are there (with deploy/prometheus.yml's targets)."""

import json
import os
import re

import yaml

SERVICES = ("kafka", "create-topics", "redis", "mcp-server", "kafka-worker", "console", "jaeger", "prometheus")


def check_all(report, path, defaults):
    """Returns the Dockerfiles it builds, by path, with their build contexts."""
    try:
        with open(path) as fh:
            compose = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as e:
        report.check(False, f"{path} parses", " ".join(str(e).split()))
        return {}
    if not report.check(isinstance(compose, dict) and isinstance(compose.get("services"), dict),
                        f"{path} parses, has services"):
        return {}
    services = compose["services"]
    for name in SERVICES:
        report.check(name in services, f"service {name} defined")
    dockerfiles = check_builds(report, services)
    check_mounts(report, services, set(compose.get("volumes") or {}))
    check_worker(report, services, defaults)
    check_companions(report, services)
    return dockerfiles


def environment(service):
    e = service.get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) if "=" in item else (item, None) for item in e)
    return {k: None if v is None else str(v) for k, v in e.items()}


def check_builds(report, services):
    dockerfiles = {}
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        ctx = build.get("context", ".")
        df = os.path.normpath(os.path.join(ctx, build.get("dockerfile", "Dockerfile")))
        report.check(os.path.isdir(ctx) and os.path.isfile(df), f"{name}: build context {ctx} and {df} exist")
        dockerfiles[df] = ctx
    return dockerfiles


def check_mounts(report, services, declared_volumes):
    for name, svc in services.items():
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                src = v.split(":", 1)[0] if ":" in v else None
                kind = "bind" if src and src[0] in "./~" else "volume"
            else:
                src, kind = v.get("source"), v.get("type", "volume")
            if kind == "bind":
                report.check(os.path.exists(src), f"{name}: mounted {src} exists")
            elif src:
                report.check(src in declared_volumes, f"{name}: volume {src} declared")
        for ef in [svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get("env_file") or []:
            path = ef if isinstance(ef, str) else ef.get("path")
            report.check(os.path.isfile(path), f"{name}: env_file {path} exists")
        deps = svc.get("depends_on") or []
        unknown = [d for d in deps if d not in services]
        if deps:
            report.check(not unknown, f"{name}: depends_on names defined services", f"unknown {unknown}")


def host_ports(service):
    ports = []
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            if p.get("published"):
                ports.append(str(p))
        elif ":" in str(p).rsplit("/", 1)[0]:
            ports.append(str(p))
    return ports


def check_worker(report, services, defaults):
    worker = services.get("kafka-worker") or {}
    published = host_ports(worker)
    report.check("container_name" not in worker and not published,
                 "kafka-worker: no container_name, no host ports (docker compose up --scale kafka-worker=N works)",
                 f"container_name {worker.get('container_name')}, host ports {published}")
    grace = environment(worker).get("SHUTDOWN_GRACE_SECONDS") or defaults["SHUTDOWN_GRACE_SECONDS"]
    stop = re.fullmatch(r"(\d+)s", str(worker.get("stop_grace_period", "10s")))
    report.check(stop and int(stop.group(1)) > int(grace),
                 f"kafka-worker: stop_grace_period {worker.get('stop_grace_period', '10s (default)')} "
                 f"> SHUTDOWN_GRACE_SECONDS {grace}")


def check_companions(report, services):
    kafka_env = environment(services.get("kafka") or {})
    report.check(str((services.get("kafka") or {}).get("image", "")).startswith("apache/kafka")
                 and "controller" in (kafka_env.get("KAFKA_PROCESS_ROLES") or "")
                 and not any("ZOOKEEPER" in k for k in kafka_env),
                 "kafka: apache/kafka image in KRaft mode (process roles broker,controller, no ZooKeeper)")
    report.check("create-topics" in json.dumps((services.get("create-topics") or {}).get("command")),
                 "create-topics: runs `kafka-worker create-topics`")
    jaeger = services.get("jaeger") or {}
    image = str(jaeger.get("image", ""))
    report.check("jaeger" in image and "all-in-one" in image
                 and str(environment(jaeger).get("COLLECTOR_OTLP_ENABLED")).lower() == "true",
                 "jaeger: all-in-one image with COLLECTOR_OTLP_ENABLED=true")
    for name in ("mcp-server", "kafka-worker"):
        endpoint = environment(services.get(name) or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
        host = re.sub(r"^\w+://([^:/]+).*$", r"\1", endpoint)
        report.check(endpoint and host in services,
                     f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT ({endpoint}) points at a compose service")
    check_prometheus(report, services)


def check_prometheus(report, services):
    """Its mounted config scrapes mcp-server:8080 and every kafka-worker on 9090."""
    config = None
    for v in (services.get("prometheus") or {}).get("volumes") or []:
        src, _, dst = str(v).partition(":") if isinstance(v, str) else (v.get("source"), "", v.get("target"))
        if str(dst).startswith("/etc/prometheus/prometheus.yml"):
            config = src
    if not report.check(config and os.path.isfile(config), f"prometheus: scrape config mounted from the repo ({config})"):
        return
    try:
        with open(config) as fh:
            prometheus = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        report.check(False, f"{config} parses", " ".join(str(e).split()))
        return
    targets = set()
    for job in prometheus.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            targets |= set(sc.get("targets") or [])
        for sd in job.get("dns_sd_configs") or []:
            targets |= {f"{n}:{sd.get('port')}" for n in sd.get("names") or []}
    report.check("mcp-server:8080" in targets, f"{config}: scrapes mcp-server:8080")
    report.check({"kafka-worker:9090", "tasks.kafka-worker:9090"} & targets,
                 f"{config}: scrapes kafka-worker:9090 (every replica)")
