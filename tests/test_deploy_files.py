"""The cluster files under docker/, checked statically (these machines have a Docker client, no engine):
the Dockerfile by hadolint, the compose file by the compose specification's schema, the KubeRay
manifests by a schema of the fields we use (tests/schemas/kuberay-subset.json), and the security rules
of docs/cluster.md by reading the files: loopback ports, token auth on, no credentials."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

BIN = Path(sys.executable).parent
DOCKER = REPO / "docker"
KUBERAY = sorted((DOCKER / "kuberay").glob("*.yaml"))
SCHEMA = REPO / "tests" / "schemas" / "kuberay-subset.json"
SECRETS = ("RAY_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD",
           "MINIO_ROOT_USER")


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_dockerfile_passes_hadolint_and_hadolint_does_catch_mistakes(tmp_path):
    run = tool("hadolint", "--failure-threshold", "info", str(DOCKER / "Dockerfile"))
    assert run.returncode == 0, run.stdout + run.stderr
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    assert tool("hadolint", str(sloppy)).returncode != 0  # the linter really runs


def test_dockerfile_installs_with_the_ci_command_as_a_non_root_user_on_rays_image():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG RAY_IMAGE=rayproject/ray:2\.60\.0-py311-cpu$", text, re.M)
    assert re.search(r"^RUN bash scripts/install\.sh python ", text, re.M)  # as scripts/setup.sh (.ci/run)
    assert "scripts/install.sh" in (REPO / "scripts" / "setup.sh").read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert not re.search(r"(TOKEN|SECRET|PASSWORD)\s*=", text)  # no secret baked into a layer


def test_compose_file_follows_the_compose_specification_and_the_check_can_fail(tmp_path):
    ok = tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  ray-head:\n    imagee: x\n")  # a misspelled key
    assert tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken)).returncode != 0


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_declares_the_team_cluster_with_health_checks_restarts_and_volumes():
    services = compose()["services"]
    assert {"ray-head", "ray-worker", "ray-worker-gpu", "mlflow", "postgres", "s3"} <= set(services)
    assert services["ray-worker-gpu"]["profiles"] == ["gpu"]
    for name in ("ray-head", "mlflow", "postgres", "s3"):
        assert "healthcheck" in services[name], name
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always", "no"), name
    assert "--backend-store-uri" in services["mlflow"]["command"]
    assert "postgresql" in services["mlflow"]["command"] and "s3://" in services["mlflow"]["command"]
    assert set(compose()["volumes"]) == {"postgres-data", "s3-data"}
    storage = services["ray-head"]["environment"]["RLLIB_SPARSE_STORAGE"]
    assert storage.startswith("s3://")  # Tune's shared storage for checkpoints across nodes


def test_compose_publishes_only_on_loopback_by_default_and_keeps_ray_token_auth_on():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            host = str(port).rsplit(":", 2)[0]
            assert host in ("${BIND_ADDRESS:-127.0.0.1}", "127.0.0.1"), f"{name} publishes {port}"
        if name.startswith("ray-"):
            env = service["environment"]
            assert env["RAY_AUTH_MODE"] == "token", name
            assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name  # required, from the environment


def test_no_credentials_in_the_deploy_files():
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key in SECRETS:
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(value)), f"{name}.{key} is not read from the environment"
    for line in (DOCKER / "cluster.env.example").read_text().splitlines():
        if not line.startswith("#") and "=" in line:
            assert line.split("=", 1)[1] == "", f"a value in the example env file: {line}"
    assert "/docker/.env" in (REPO / ".gitignore").read_text()
    for path in KUBERAY:
        for doc in yaml.safe_load_all(path.read_text()):
            for env in _containers_env(doc):
                for var in env:
                    if var["name"] in SECRETS:
                        assert "secretKeyRef" in var.get("valueFrom", {}), f"{path.name}: {var['name']}"


def _containers_env(doc: dict):
    spec = doc["spec"]
    templates = []
    cluster = spec if doc["kind"] == "RayCluster" else spec.get("rayClusterSpec")
    if cluster:
        templates += [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster.get("workerGroupSpecs", []))]
    if "submitterPodTemplate" in spec:
        templates.append(spec["submitterPodTemplate"])
    return [container.get("env", []) for t in templates for container in t["spec"]["containers"]]


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifests_match_the_api_subset_we_use(path):
    run = tool("check-jsonschema", "--schemafile", str(SCHEMA), str(path))
    assert run.returncode == 0, run.stdout + run.stderr


def test_kuberay_schema_refuses_what_kuberay_refuses(tmp_path):
    cluster = yaml.safe_load((DOCKER / "kuberay" / "raycluster.yaml").read_text())
    mistakes = {
        "non-string ray start param": lambda d: d["spec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
        "old api version": lambda d: d.update({"apiVersion": "ray.io/v1alpha1"}),
        "misspelled field": lambda d: d["spec"]["workerGroupSpecs"][0].update({"replica": 2}),
        "worker group without a name": lambda d: d["spec"]["workerGroupSpecs"][0].pop("groupName"),
    }
    for what, change in mistakes.items():
        doc = yaml.safe_load(yaml.safe_dump(cluster))
        change(doc)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(doc))
        assert tool("check-jsonschema", "--schemafile", str(SCHEMA), str(path)).returncode != 0, what


def test_kuberay_cluster_keeps_token_auth_and_sane_worker_groups():
    for path in KUBERAY:
        for doc in yaml.safe_load_all(path.read_text()):
            for env in _containers_env(doc):
                names = {var["name"]: var for var in env}
                assert names["RAY_AUTH_MODE"]["value"] == "token", path.name
                assert "RAY_AUTH_TOKEN" in names, path.name
            if doc["kind"] == "RayCluster":
                assert doc["spec"]["headGroupSpec"]["serviceType"] == "ClusterIP"
                groups = doc["spec"]["workerGroupSpecs"]
                assert {g["groupName"] for g in groups} == {"cpu", "gpu"}
                for group in groups:
                    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
                gpu = next(g for g in groups if g["groupName"] == "gpu")
                assert "nvidia.com/gpu" in gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
            else:
                assert "rllib-sparse sweep" in doc["spec"]["entrypoint"]
