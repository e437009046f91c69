"""Static checks of the deployment files (k8s/, docker-compose.yml, Dockerfile.*): no
Docker engine or Kubernetes cluster runs where this runs, so nothing is built, started
or applied. Run as `python3 -m validate_deploy --defaults FILE` from scripts/, or with
scripts/validate-deploy.sh, which installs what it needs first."""
