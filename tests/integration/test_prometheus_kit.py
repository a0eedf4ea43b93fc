"""The monitoring kit (issue #9 item 7): deploy/prometheus's config and
alerting rules pass promtool, and a real Prometheus (Debian's package)
scraping a real Berth sees the series, evaluates every Grafana panel's query
and fires an alert rule."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import yaml

from berth_server import REPO_ROOT, BerthServer, berth_binary, free_port
from models import ModelRepository
from v2 import V2Client

KIT: Final = REPO_ROOT / "deploy" / "prometheus"
DASHBOARD: Final = REPO_ROOT / "deploy" / "grafana" / "berth-dashboard.json"
MODEL: Final = "iris_logreg"
OK_REQUESTS: Final = 30
BAD_REQUESTS: Final = 10

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus package (scripts/setup.sh installs it)")


def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (["check", "config", str(KIT / "prometheus.yml")], ["check", "rules", str(KIT / "alerts.yml")]):
        done = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(self, what: str, check: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            assert time.monotonic() < deadline, f"Prometheus never showed {what}"
            time.sleep(0.5)


@pytest.fixture
def stack(model_repository: ModelRepository, tmp_path: Path) -> Iterator[tuple[BerthServer, Prometheus]]:
    """Berth, and Prometheus scraping it every second with the kit's rules
    (their `for:` durations cut to 0s so that an alert fires in a test)."""
    with BerthServer.start(berth_binary(), model_repository.root, tmp_path / "berth.log", grpc_port=-1) as berth:
        config = yaml.safe_load((KIT / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["scrape_configs"][0]["static_configs"] = [{"targets": [berth.base_url.removeprefix("http://")]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        rules = re.sub(r"for: \d+m", "for: 0s", (KIT / "alerts.yml").read_text())
        (tmp_path / "alerts.yml").write_text(rules)
        port = free_port()
        process = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
        )  # fmt: skip
        try:
            prometheus = Prometheus(f"http://127.0.0.1:{port}")
            prometheus.wait_for("readiness", lambda: _ready(prometheus.url))
            yield berth, prometheus
        finally:
            process.terminate()
            process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def send_traffic(berth: BerthServer, model_repository: ModelRepository, ok: int, bad: int) -> None:
    model = model_repository.model(MODEL)
    good_body = model.infer_request(model.dataset.X_test[:1])
    bad_body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}
    with V2Client(berth.base_url) as client:
        for _ in range(ok):
            assert client.infer(MODEL, good_body).status_code == 200
        for _ in range(bad):
            assert client.infer(MODEL, bad_body).status_code == 400


def test_prometheus_sees_the_traffic_evaluates_the_dashboard_and_fires_an_alert(
    stack: tuple[BerthServer, Prometheus], model_repository: ModelRepository
) -> None:
    berth, prometheus = stack
    # One of each first, scraped before the rest: a rate needs two samples of
    # a series, and a failure series appears with its first failure.
    send_traffic(berth, model_repository, 1, 1)
    prometheus.wait_for(
        "the first failure",
        lambda: prometheus.query(f'berth_inference_requests_failure_total{{model="{MODEL}"}}'),
    )
    time.sleep(1.5)
    send_traffic(berth, model_repository, OK_REQUESTS - 1, BAD_REQUESTS - 1)
    # The counters as Prometheus scraped them: exactly the traffic sent.
    success = prometheus.wait_for(
        "the successful requests",
        lambda: [
            r for r in prometheus.query(f'berth_inference_requests_success_total{{model="{MODEL}"}}')
            if float(r["value"][1]) == OK_REQUESTS
        ],
    )
    assert success[0]["metric"]["version"] == "1"
    # Exactly the failures sent, once a scrape has seen them all.
    prometheus.wait_for(
        "the failed requests",
        lambda: [
            r for r in prometheus.query(f'sum(berth_inference_requests_failure_total{{model="{MODEL}"}})')
            if float(r["value"][1]) == BAD_REQUESTS
        ],
    )
    # 10 failures in 40: the error-rate rule (above 1%) fires for the model.
    firing = prometheus.wait_for(
        "BerthHighErrorRate firing",
        lambda: [
            a for a in requests.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            if a["labels"]["alertname"] == "BerthHighErrorRate" and a["state"] == "firing"
        ],
    )
    assert firing[0]["labels"]["model"] == MODEL and firing[0]["labels"]["severity"] == "page"
    # No other rule fires on a healthy server.
    others = {
        a["labels"]["alertname"]
        for a in requests.get(f"{prometheus.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        if a["labels"]["alertname"] != "BerthHighErrorRate"
    }
    assert others == set(), others
    # Every panel of the Grafana dashboard is a query Prometheus evaluates,
    # and those over request metrics find the model's series.
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "berth-overview"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$model", ".*").replace("$version", ".*").replace("$__rate_interval", "1m")
            result = prometheus.query(expr)
            if "berth_inference_requests_success_total" in expr or "berth_model_ready" in expr:
                assert result, (panel["title"], expr)
