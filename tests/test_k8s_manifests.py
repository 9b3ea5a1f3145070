"""deploy/k8s: every manifest is valid against the Kubernetes API schemas (offline, with the
schemas that the PyPI package kubernetes-validate ships), and the pieces fit together (probes,
selectors, names, volumes, the GPU variant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate (see .ci/run)")

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
FILES = sorted(K8S.rglob("*.yaml"))
# The oldest Kubernetes release still maintained upstream when these were written, and the
# newest the installed validator knows.
KUBERNETES_VERSIONS = ["1.30.0", "latest"]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _find(kind: str, name: str, path: Path | None = None) -> dict[str, Any]:
    for file in [path] if path else FILES:
        for doc in _documents(file):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name}")


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_the_manifests_are_there() -> None:
    kinds = {(doc["kind"], path.parent.name) for path in FILES for doc in _documents(path)}
    assert {
        ("Deployment", "k8s"),
        ("Service", "k8s"),
        ("HorizontalPodAutoscaler", "k8s"),
        ("PodDisruptionBudget", "k8s"),
        ("PersistentVolumeClaim", "k8s"),
        ("Job", "retrain"),
        ("Deployment", "gpu"),
    } <= kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (.ci/run installs it)"
    )
    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    documents = _documents(path)
    assert documents
    for doc in documents:
        # strict: unknown fields (typos such as `readinesProbe`) are errors too
        kubernetes_validate.validate(doc, wanted, strict=True)


def test_the_validator_rejects_a_typo_and_a_wrong_type() -> None:
    """The schema check is not vacuous: broken copies of the Deployment fail it."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    latest = kubernetes_validate.latest_version()
    typo = _find("Deployment", "envi-mt", K8S / "deployment.yaml")
    container = _container(typo)
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, latest, strict=True)
    wrong_type = _find("Deployment", "envi-mt", K8S / "deployment.yaml")
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, latest, strict=True)


@pytest.mark.parametrize("path", [K8S / "deployment.yaml", K8S / "gpu" / "deployment.yaml"])
def test_deployment_probes_port_and_model_volume(path: Path) -> None:
    deployment = _find("Deployment", "envi-mt", path)
    container = _container(deployment)
    env = _env(container)
    port = int(env["MT_PORT"])
    assert env["MT_HOST"] == "0.0.0.0"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    # the model comes from the models volume (the PVC), not from the image
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["MT_MODEL_DIR"].startswith(mounts["models"] + "/")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert _find("PersistentVolumeClaim", claim)
    # graceful shutdown outlasts the service's default MT_SHUTDOWN_TIMEOUT_S (30 s)
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30


def test_service_hpa_and_pdb_select_the_deployments_pods() -> None:
    deployment = _find("Deployment", "envi-mt", K8S / "deployment.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for name in ("envi-mt", "envi-mt-replicas"):
        service = _find("Service", name)
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert _find("Service", "envi-mt-replicas")["spec"]["clusterIP"] == "None"
    hpa = _find("HorizontalPodAutoscaler", "envi-mt")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "envi-mt",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = _find("PodDisruptionBudget", "envi-mt")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can proceed


def test_gpu_variant_replaces_the_cpu_deployment_with_one_gpu_per_pod() -> None:
    cpu = _find("Deployment", "envi-mt", K8S / "deployment.yaml")
    gpu = _find("Deployment", "envi-mt", K8S / "gpu" / "deployment.yaml")
    assert gpu["spec"]["selector"] == cpu["spec"]["selector"]
    container = _container(gpu)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert _env(container)["MT_DEVICE"] == "cuda"
    assert _env(_container(cpu))["MT_DEVICE"] == "cpu"
    pod = gpu["spec"]["template"]["spec"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["nodeSelector"]


def test_retrain_job_shares_the_models_volume_and_reloads_every_replica() -> None:
    job = _find("Job", "envi-mt-retrain")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["command"][-1].endswith("retrain-and-reload.sh")
    env = _env(container)
    assert _find("Service", env["MT_RELOAD_HOST"])["spec"]["clusterIP"] == "None"
    deployment = _find("Deployment", "envi-mt", K8S / "deployment.yaml")
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    serving = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert claims["models"] == serving["persistentVolumeClaim"]["claimName"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models"  # the same path as in the translators
    assert mounts["data"]["readOnly"] is True
