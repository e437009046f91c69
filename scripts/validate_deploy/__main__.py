"""Runs every check from the repository root and exits non-zero if any failed."""

import argparse
import json
import sys

from . import compose, dockerfiles, k8s
from .manifests import Manifests
from .report import Report


def main():
    parser = argparse.ArgumentParser(prog="validate_deploy", description=__doc__)
    parser.add_argument("--defaults", required=True,
                        help="kafka-worker's default settings as JSON (`kafka-worker config --defaults`)")
    parser.add_argument("--k8s-version", required=True, help="the Kubernetes version to validate against")
    args = parser.parse_args()
    with open(args.defaults) as fh:
        defaults = json.load(fh)
    report = Report()
    report.section(f"k8s/ manifests (Kubernetes {args.k8s_version})")
    k8s.check_all(report, Manifests.load("k8s", report), defaults, args.k8s_version)
    report.section("docker-compose.yml")
    built = compose.check_all(report, "docker-compose.yml", defaults)
    report.section("Dockerfiles")
    dockerfiles.check_all(report, built)
    return report.summary()


sys.exit(main())
