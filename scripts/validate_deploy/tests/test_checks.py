"""The checks themselves, on small made-up deployments: each must fail what it exists
to catch, not only pass the repository's files."""

import contextlib
import io
import os
import tempfile
import textwrap
import unittest

from validate_deploy import compose, dockerfiles, k8s
from validate_deploy.manifests import Manifests
from validate_deploy.report import Report

DEFAULTS = {"SHUTDOWN_GRACE_SECONDS": 25, "METRICS_PORT": 9090, "CONSOLE_PORT": 8081}


def quiet_report():
    """A report whose lines are swallowed; its failures are what the tests read."""
    report = Report()
    report.check = _silenced(report.check)
    return report


def _silenced(check):
    def silenced(*args, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            return check(*args, **kwargs)
    return silenced


class InDirectory(unittest.TestCase):
    """Each test writes its files into a fresh directory and runs there."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.previous = os.getcwd()
        os.chdir(self.dir.name)

    def tearDown(self):
        os.chdir(self.previous)
        self.dir.cleanup()

    def write(self, path, text):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as fh:
            fh.write(textwrap.dedent(text))


WORKER = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: kafka-worker}}
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: {grace}
          containers:
            - name: worker
              ports: [{{containerPort: 9090}}]
              env: [{{name: KAFKA_BROKERS, value: "k:9092"}}]
              envFrom: [{{configMapRef: {{name: worker-env}}}}]
              readinessProbe: {{httpGet: {{path: /ready, port: 9090}}}}
              livenessProbe: {{httpGet: {{path: /health, port: 9090}}}}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {{name: worker-env}}
    data: {{KAFKA_TOPIC: jobs, API_TOKEN_FROM: ""}}
"""


class WorkerGrace(InDirectory):
    def test_a_grace_period_shorter_than_the_binary_s_default_fails(self):
        self.write("k8s/worker.yaml", WORKER.format(grace=20))
        report = quiet_report()
        k8s.check_worker(report, Manifests.load("k8s", report), DEFAULTS)
        grace = [f for f in report.failures if "terminationGracePeriodSeconds" in f]
        self.assertEqual(len(grace), 1, report.failures)
        self.assertIn("SHUTDOWN_GRACE_SECONDS 25 (kafka-worker's default)", grace[0])

    def test_a_longer_grace_period_passes_and_the_configmap_is_seen(self):
        self.write("k8s/worker.yaml", WORKER.format(grace=30))
        report = quiet_report()
        manifests = Manifests.load("k8s", report)
        env = k8s.check_worker(report, manifests, DEFAULTS)
        self.assertFalse([f for f in report.failures if "terminationGracePeriodSeconds" in f], report.failures)
        self.assertEqual(env["KAFKA_TOPIC"], "jobs")
        self.assertEqual(env["KAFKA_BROKERS"], "k:9092")
        missing = [f for f in report.failures if "set: missing" in f]
        self.assertEqual(len(missing), 1, report.failures)
        self.assertIn("MCP_SERVER_URL", missing[0])


class Manifest(InDirectory):
    def test_a_missing_secret_key_and_a_namespace_are_named(self):
        self.write("k8s/app.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: app, namespace: prod}
            spec:
              template:
                spec:
                  containers:
                    - name: app
                      env:
                        - name: TOKEN
                          valueFrom: {secretKeyRef: {name: keys, key: token}}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: keys}
            stringData: {other: x}
        """)
        report = quiet_report()
        manifests = Manifests.load("k8s", report)
        self.assertEqual(k8s.missing_references(manifests, manifests.named("Deployment", "app")["spec"]["template"]["spec"]),
                         ["Secret keys key token"])
        gaps = k8s.hardening_gaps(manifests.named("Deployment", "app")["spec"]["template"]["spec"])
        self.assertIn("app may run as root", gaps)

    def test_a_file_that_is_not_yaml_fails_its_check(self):
        self.write("k8s/broken.yaml", "kind: [unclosed\n")
        report = quiet_report()
        Manifests.load("k8s", report)
        self.assertTrue(any("broken.yaml parses as YAML" in f for f in report.failures), report.failures)


class Compose(InDirectory):
    def test_a_published_worker_port_and_a_short_stop_grace_fail(self):
        report = quiet_report()
        services = {"kafka-worker": {"ports": ["9090:9090"], "stop_grace_period": "20s"}}
        compose.check_worker(report, services, DEFAULTS)
        self.assertEqual(len(report.failures), 2, report.failures)
        self.assertIn("SHUTDOWN_GRACE_SECONDS 25", report.failures[1])

    def test_a_list_environment_reads_as_a_map(self):
        env = compose.environment({"environment": ["A=1", "B"]})
        self.assertEqual(env, {"A": "1", "B": None})


class Dockerfiles(InDirectory):
    def test_instructions_join_continuations_and_drop_comments(self):
        self.write("Dockerfile.x", """
            FROM rust AS build
            # a comment
            RUN cargo build \\
              # inside a continuation
              --release
            COPY --from=build /src/target/x /usr/local/bin/x
        """)
        self.assertEqual(dockerfiles.instructions("Dockerfile.x"), [
            ("FROM", "rust AS build"),
            ("RUN", "cargo build    --release"),
            ("COPY", "--from=build /src/target/x /usr/local/bin/x"),
        ])

    def test_sources_and_stages_of_a_copy(self):
        self.assertEqual(dockerfiles.copy_sources("--chown=1:1 a b /dst/"), (["a", "b"], None))
        self.assertEqual(dockerfiles.copy_sources("--from=build /x /y"), (["/x"], "build"))
        self.assertEqual(dockerfiles.copy_sources('["a b", "/dst"]'), (["a b"], None))

    def test_dockerignore_patterns_exclude_parents_and_any_depth(self):
        self.assertEqual(dockerfiles.ignored_by("target/release/x", ["target"]), "target")
        self.assertEqual(dockerfiles.ignored_by("tests/node/node_modules", ["**/node_modules"]), "**/node_modules")
        self.assertIsNone(dockerfiles.ignored_by("pkg/kafka", ["target", "**/node_modules"]))

    def test_a_root_final_stage_and_a_missing_source_fail(self):
        self.write("Dockerfile.worker", """
            FROM rust AS build
            COPY Cargo.toml ./
            FROM debian
            COPY --from=build /x /x
            USER root
            HEALTHCHECK CMD curl -f http://127.0.0.1:9090/health
        """)
        self.write(".dockerignore", "target\n")
        report = quiet_report()
        dockerfiles.check_one(report, "Dockerfile.worker", ".")
        self.assertEqual(len(report.failures), 2, report.failures)
        self.assertIn("missing ['Cargo.toml']", report.failures[0])
        self.assertIn("non-root USER (root)", report.failures[1])


class Summary(unittest.TestCase):
    def test_any_failure_fails_the_run(self):
        report = quiet_report()
        report.check(True, "fine")
        self.assertEqual(_run_summary(report), 0)
        report.check(False, "broken", "because")
        self.assertEqual(report.failures, ["broken: because"])
        self.assertEqual(_run_summary(report), 1)


def _run_summary(report):
    with contextlib.redirect_stdout(io.StringIO()):
        return report.summary()


if __name__ == "__main__":
    unittest.main()
