"""The deployment files: Kubernetes manifests valid against the Kubernetes schemas (offline,
``kubernetes-validate``), their gateway configuration loadable, compose wired as documented."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config.loader import load_config
from tests.support.config import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
"""The oldest release still commonly run by provinces' platforms, and a recent one."""


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc
    ]


def kind(name: str) -> dict[str, Any]:
    (found,) = [doc for doc in manifests() if doc["kind"] == name]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(version: str) -> None:
    kinds = set()
    for doc in manifests():
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error
        kinds.add(doc["kind"])
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"}
    listed = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])


def test_the_deployment_probes_health_and_shuts_down_gracefully() -> None:
    deployment = kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"secretRef": {"name": "lgsp-gateway"}} in container["envFrom"]
    config = yaml.safe_load(kind("ConfigMap")["data"]["gateway.yaml"])
    grace = int(config["server"]["shutdown_grace"].removesuffix("s"))
    assert grace + 5 + 5 < pod["terminationGracePeriodSeconds"]  # + deliveries + preStop
    pdb = kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert deployment["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_the_configmap_configuration_loads_with_the_images_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "config" / "routes", tmp_path / "routes")
    (tmp_path / "gateway.yaml").write_text(kind("ConfigMap")["data"]["gateway.yaml"])
    for name, value in kind("Secret")["stringData"].items():
        monkeypatch.setenv(name, value)
    loaded = load_config(str(tmp_path / "gateway.yaml"))
    assert loaded.config.server.metrics_listen == "0.0.0.0:9464"
    assert loaded.config.mocks == {}
    needed = set(re.findall(r"\$\{(\w+)\}", kind("ConfigMap")["data"]["gateway.yaml"]))
    assert needed <= set(kind("Secret")["stringData"])


def test_compose_runs_two_replicas_behind_nginx_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [name for name in services if name.startswith("gateway-")]
    assert len(replicas) == 2
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    for name in replicas:
        assert f"server {name}:8080" in nginx
        assert services[name]["env_file"] == ["gateway.env"]
        assert services["nginx"]["depends_on"][name] == {"condition": "service_healthy"}
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"]
    example = (ROOT / "deploy" / "gateway.env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example and "LGSP_ADMIN_KEY_HASH=" in example


def test_the_image_checks_its_health_without_curl() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (check,) = [
        line for line in dockerfile.splitlines() if line.strip().startswith('CMD ["python"')
    ]
    assert "urllib.request" in check and "/health/live" in check
