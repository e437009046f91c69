#!/usr/bin/env bash
# Validates the deployment files statically (scripts/validate_deploy: k8s/ against the
# Kubernetes schemas and against each other, docker-compose.yml, Dockerfile.*), after
# linting its checks with ruff and running their own unit tests. Settings a manifest
# leaves unset are taken from kafka-worker itself (`kafka-worker config --defaults`):
# the binary $KAFKA_WORKER names, else the one `cargo run` builds.
# Idempotent: installs PyYAML, kubernetes-validate and ruff only when missing. Prints
# every check; exits non-zero if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Kubernetes version the manifests are validated against (supported by the pinned tool).
K8S_VERSION=1.33.0
# Installed when missing.
KUBERNETES_VALIDATE_VERSION=1.37.0
RUFF_VERSION=0.17.6

pip_install() {
  echo "installing: $*" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
}
python3 -c 'import yaml' 2>/dev/null || pip_install PyYAML
python3 -c 'import kubernetes_validate' 2>/dev/null ||
  pip_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
python3 -m ruff --version 2>/dev/null | grep -qx "ruff $RUFF_VERSION" || pip_install "ruff==$RUFF_VERSION"

python3 -m ruff check --quiet scripts/validate_deploy
(cd scripts && python3 -m unittest discover --quiet -s validate_deploy/tests -t .)

defaults="$(mktemp)"
trap 'rm -f "$defaults"' EXIT
if [[ -n "${KAFKA_WORKER:-}" ]]; then
  "$KAFKA_WORKER" config --defaults > "$defaults"
else
  cargo run --quiet --bin kafka-worker -- config --defaults > "$defaults"
fi
PYTHONPATH=scripts python3 -m validate_deploy --defaults "$defaults" --k8s-version "$K8S_VERSION"
