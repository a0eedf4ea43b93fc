"""The Helm chart deploy/helm/berth (issue #11, item 2).

`helm lint` and `helm template` with the default values and with
values-production.yaml; every rendered manifest decoded strictly against the
Kubernetes API types (deploy/validate, k8s.io/api; the ServiceMonitor against
prometheus-operator's types), and a misspelt manifest refused. helm and the
validator come from the Go module proxy (scripts/deploy_tools.sh).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from berth_server import REPO_ROOT
from deploy_tools import VALIDATE_MODULE, DeployTools, deploy_tools

CHART: Final = REPO_ROOT / "deploy" / "helm" / "berth"
PRODUCTION: Final = CHART / "values-production.yaml"
VALUE_SETS: Final = {"default": [], "production": ["-f", str(PRODUCTION)]}


@pytest.fixture(scope="module")
def tools() -> DeployTools:
    return deploy_tools()


def helm(tools: DeployTools, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.helm), *args], capture_output=True, text=True, check=False, timeout=120)


def render(tools: DeployTools, tmp_path: Path, name: str, *args: str) -> tuple[Path, list[dict[str, Any]]]:
    done = helm(tools, "template", "berth", str(CHART), *args)
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"{name}.yaml"
    path.write_text(done.stdout)
    return path, [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_chart_lints(tools: DeployTools, values: str) -> None:
    done = helm(tools, "lint", "--strict", str(CHART), *VALUE_SETS[values])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_manifests_decode_strictly(tools: DeployTools, tmp_path: Path, values: str) -> None:
    path, docs = render(tools, tmp_path, values, *VALUE_SETS[values])
    checked = tools.check(path)
    assert checked.returncode == 0, checked.stderr
    assert f"{len(docs)} manifests checked, 0 invalid" in checked.stdout


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def test_default_values_render_a_safe_deployment(tools: DeployTools, tmp_path: Path) -> None:
    _, docs = render(tools, tmp_path, "default")
    kinds = by_kind(docs)
    assert "ServiceMonitor" not in kinds and "HorizontalPodAutoscaler" not in kinds
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "/bin/sleep"
    grace_ms = int(next(a for a in container["args"] if a.startswith("--shutdown-grace-ms=")).split("=")[1])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] * 1000 > grace_ms + pre_stop * 1000
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"]
    ports = {p["name"]: p for p in kinds["Service"]["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_production_values_render_autoscaling_monitoring_and_secrets(tools: DeployTools, tmp_path: Path) -> None:
    _, docs = render(tools, tmp_path, "production", "-f", str(PRODUCTION))
    kinds = by_kind(docs)
    metrics = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert {m["type"] for m in metrics} == {"Resource", "Pods"}
    pods_metric = next(m for m in metrics if m["type"] == "Pods")
    assert pods_metric["pods"]["metric"]["name"] == "berth_inference_requests_in_flight"
    assert kinds["ServiceMonitor"]["apiVersion"] == "monitoring.coreos.com/v1"
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--registry=$(BERTH_REGISTRY_URL)" in container["args"]
    url = next(e for e in container["env"] if e["name"] == "BERTH_REGISTRY_URL")
    assert url["valueFrom"]["secretKeyRef"]["name"] == "berth-registry"
    assert "--tls-cert=/etc/berth/tls/tls.crt" in container["args"]
    assert "--require-auth" in container["args"]
    volumes = {v["name"]: v for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "berth-tls"
    assert set(volumes) == {"models", "tmp", "tls"}, "a Secret mounted that nothing reads"
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scheme"] == "https"
    endpoint = kinds["ServiceMonitor"]["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "berth-tls", "key": "ca.crt"}
    assert endpoint["tlsConfig"]["serverName"] == "berth.default.svc"
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "berth-metrics-key", "key": "token"}}


def test_chart_creates_secrets_from_values(tools: DeployTools, tmp_path: Path) -> None:
    path, docs = render(
        tools, tmp_path, "secrets",
        "--set", "registry.type=postgresql", "--set", "registry.postgresql.url=postgresql://u:p@db:5432/berth",
        "--set", "tls.enabled=true", "--set", "tls.cert=CERT", "--set", "tls.key=KEY",
    )  # fmt: skip
    secrets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Secret"}
    assert secrets["berth-registry"]["stringData"]["url"] == "postgresql://u:p@db:5432/berth"
    assert secrets["berth-tls"]["type"] == "kubernetes.io/tls"
    assert set(secrets) == {"berth-registry", "berth-tls"}
    assert tools.check(path).returncode == 0


MTLS: Final = ("--set", "tls.enabled=true", "--set", "tls.existingSecret=berth-tls", "--set", "tls.clientAuth=true")


def test_mtls_probes_present_a_client_certificate(tools: DeployTools, tmp_path: Path) -> None:
    """The kubelet's HTTPS probes present no certificate, and Berth's mTLS
    handshake needs one on every connection: the probes are curl in the pod
    with the probe Secret's certificate (run against a real mTLS server in
    test_tls.py)."""
    path, docs = render(tools, tmp_path, "mtls", *MTLS, "--set", "tls.probeClientSecret=berth-probe")
    checked = tools.check(path)
    assert checked.returncode == 0, checked.stderr
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--tls-client-ca=/etc/berth/tls/ca.crt" in container["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "httpGet" not in container[probe], probe
        command = container[probe]["exec"]["command"]
        assert command[0] == "curl" and "/etc/berth/probe-tls/tls.crt" in command, command
    assert container["readinessProbe"]["exec"]["command"][-1] == "https://127.0.0.1:8000/v2/health/ready"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["probe-tls"]["secret"]["secretName"] == "berth-probe"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["probe-tls"] == {"name": "probe-tls", "mountPath": "/etc/berth/probe-tls", "readOnly": True}


def test_tls_without_client_auth_keeps_the_kubelets_https_probes(tools: DeployTools, tmp_path: Path) -> None:
    _, docs = render(tools, tmp_path, "tls", "--set", "tls.enabled=true", "--set", "tls.existingSecret=berth-tls")
    container = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_require_auth_and_a_service_monitor_over_mtls(tools: DeployTools, tmp_path: Path) -> None:
    path, docs = render(
        tools, tmp_path, "monitor", *MTLS, "--set", "tls.probeClientSecret=berth-probe",
        "--set", "registry.type=postgresql", "--set", "registry.postgresql.existingSecret=berth-registry",
        "--set", "server.requireAuth=true", "--set", "serviceMonitor.enabled=true",
        "--set", "serviceMonitor.authorization.secret=metrics-key",
        "--set", "serviceMonitor.tlsConfig.clientCertSecret=prometheus-client",
        "--set", "serviceMonitor.tlsConfig.serverName=berth.example",
        "--namespace", "ml",
    )  # fmt: skip
    checked = tools.check(path)
    assert checked.returncode == 0, checked.stderr
    kinds = by_kind(docs)
    assert "--require-auth" in kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    endpoint = kinds["ServiceMonitor"]["spec"]["endpoints"][0]
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "berth-tls", "key": "ca.crt"}},
        "serverName": "berth.example",
        "cert": {"secret": {"name": "prometheus-client", "key": "tls.crt"}},
        "keySecret": {"name": "prometheus-client", "key": "tls.key"},
    }
    assert endpoint["authorization"]["credentials"] == {"name": "metrics-key", "key": "token"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (MTLS, "tls.clientAuth needs tls.probeClientSecret"),
        (("--set", "server.requireAuth=true", "--set", "serviceMonitor.enabled=true"),
         "needs serviceMonitor.authorization.secret"),
        (("--set", "server.requireAuth=true", "--set", "registry.type=none"), "server.requireAuth needs a registry"),
        ((*MTLS, "--set", "tls.probeClientSecret=p", "--set", "serviceMonitor.enabled=true"),
         "needs serviceMonitor.tlsConfig.clientCertSecret"),
    ],
)  # fmt: skip
def test_combinations_that_could_never_serve_or_scrape_are_refused(
    tools: DeployTools, values: tuple[str, ...], message: str
) -> None:
    done = helm(tools, "template", "berth", str(CHART), *values)
    assert done.returncode != 0
    assert message in done.stderr


def test_a_grace_period_shorter_than_the_drain_is_refused(tools: DeployTools) -> None:
    done = helm(tools, "template", "berth", str(CHART), "--set", "terminationGracePeriodSeconds=10")
    assert done.returncode != 0
    assert "terminationGracePeriodSeconds (10) must exceed" in done.stderr


def test_every_value_is_documented() -> None:
    """Each value of values.yaml has a `# --` comment: its own, or (for the
    fields of a Kubernetes object given whole, like `resources`) its parent's.
    A group of documented values needs none."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    ancestors: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:- )?([A-Za-z][\w]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --"):
            j -= 1
        documented = (j >= 0 and lines[j].strip().startswith("# --")) or any(d for _, d in ancestors)
        rest = line.split(":", 1)[1].split("#")[0].strip()
        is_group = rest == "" and i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent
        if not documented and not is_group:
            undocumented.append(match.group(2))
        ancestors.append((indent, documented))
    assert not undocumented, f"values without a '# --' comment: {undocumented}"


def test_a_misspelt_manifest_is_refused(tools: DeployTools, tmp_path: Path) -> None:
    path, _ = render(tools, tmp_path, "default")
    text = path.read_text()
    for good, bad in [("readinessProbe:", "readinesProbe:"), ("appProtocol: grpc", "appProtocl: grpc"),
                      ("maxUnavailable: 1\n  selector", "maxUnavailble: 1\n  selector")]:  # fmt: skip
        assert good in text
        broken = tmp_path / "broken.yaml"
        broken.write_text(text.replace(good, bad, 1))
        checked = tools.check(broken)
        assert checked.returncode == 1, f"{bad} was accepted"
        assert f'unknown field "{bad.split(":")[0]}"' in checked.stderr


def test_validator_unit_tests() -> None:
    """deploy/validate's own Go tests (negative cases for built-in kinds and CRDs)."""
    tools = deploy_tools()
    done = subprocess.run(
        ["go", "test", "./..."], cwd=VALIDATE_MODULE, capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "BERTH_KSERVE_CRDS": str(tools.kserve_crds)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
