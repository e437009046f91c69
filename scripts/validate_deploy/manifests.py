"""The Kubernetes objects of k8s/, loaded once, and the lookups every check needs
(an object's pod spec, the environment a container sees, the keys a Secret holds)."""

import glob

import yaml


def get(obj, *path, default=None):
    """obj[path[0]][path[1]]…, or `default` where the path ends early."""
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


def ident(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def key_paths(node, key, path=""):
    """Every path in `node` that ends in a field named `key`."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield f"{path}.{k}"
            yield from key_paths(v, key, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from key_paths(v, key, f"{path}[{i}]")


def pod_spec(obj):
    if obj["kind"] == "CronJob":
        return get(obj, "spec", "jobTemplate", "spec", "template", "spec", default={})
    return get(obj, "spec", "template", "spec", default={})


def pod_labels(obj):
    if obj["kind"] == "CronJob":
        return get(obj, "spec", "jobTemplate", "spec", "template", "metadata", "labels", default={})
    return get(obj, "spec", "template", "metadata", "labels", default={})


def containers(spec):
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def port_number(container, port):
    """A port by number or by the name the container gives it."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def http_probe(container, probe):
    """(path, port) of an HTTP probe."""
    return get(container, probe, "httpGet", "path"), port_number(container, get(container, probe, "httpGet", "port"))


def writable(spec, container, path):
    """Whether `path` is on an emptyDir mount of the container."""
    empty = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    return any(m["name"] in empty and (path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/"))
               for m in container.get("volumeMounts") or [])


def well_formed(docs):
    return bool(docs) and all(
        isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
        and isinstance(d.get("metadata"), dict) and d["metadata"].get("name")
        for d in docs
    )


class Manifests:
    """Every object under a directory, by file and by kind. KEDA objects (a CRD, so
    no schema) are kept in files of their own, apart from those a schema checks."""

    def __init__(self):
        self.files = []
        self.objects = []  # (file, object)
        self.schema_files = []
        self.crd_files = []
        self.by_kind = {}

    @classmethod
    def load(cls, directory, report):
        manifests = cls()
        manifests.files = sorted(set(glob.glob(f"{directory}/**/*.yaml", recursive=True)
                                     + glob.glob(f"{directory}/**/*.yml", recursive=True)))
        report.check(manifests.files, f"{directory}/ holds manifests")
        for f in manifests.files:
            try:
                with open(f) as fh:
                    docs = [d for d in yaml.safe_load_all(fh) if d is not None]
            except yaml.YAMLError as e:
                report.check(False, f"{f} parses as YAML", " ".join(str(e).split()))
                continue
            if not report.check(well_formed(docs), f"{f}: {len(docs)} object(s), each with apiVersion, kind, metadata.name"):
                continue
            keda = [d for d in docs if str(d["apiVersion"]).startswith("keda.sh/")]
            if keda:
                report.check(len(keda) == len(docs), f"{f}: KEDA objects alone in their file (checked apart from the schemas)")
                manifests.crd_files.append(f)
            else:
                manifests.schema_files.append(f)
            manifests.objects += [(f, d) for d in docs]
        for _, o in manifests.objects:
            manifests.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        return manifests

    def named(self, kind, name):
        return self.by_kind.get(kind, {}).get(name)

    def of_kind(self, kind):
        return self.by_kind.get(kind, {})

    def secret_keys(self, name):
        s = self.named("Secret", name)
        return None if s is None else set(s.get("data") or {}) | set(s.get("stringData") or {})

    def configmap_keys(self, name):
        cm = self.named("ConfigMap", name)
        return None if cm is None else set(cm.get("data") or {})

    def env_of(self, container):
        """Plain values a container sees: envFrom ConfigMaps, then env values; a value
        from a Secret or a field is set, but unknown here (None)."""
        env = {}
        for src in container.get("envFrom") or []:
            cm = self.named("ConfigMap", get(src, "configMapRef", "name"))
            if cm:
                env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "valueFrom" in e:
                env[e["name"]] = None
        return env
