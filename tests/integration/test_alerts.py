"""Alerts (issue #9, item 5): rules over a model version's metrics, evaluated
on the server's alert thread, fired once and resolved once to a log line,
the berth_alert_* series and a webhook (a receiver run by this test), and
listed at GET /v2/alerts. A malformed rule refuses the file or the model's
config with an error naming the field."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from berth_server import HOST, REPO_ROOT, BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository, model_config
from train_models import export_model

MODEL: Final = "alerted"
INTERVAL_MS: Final = 100  # --alert-interval-ms: the test waits a few of these, never a fixed time
WAIT_S: Final = 20.0  # the most any condition is waited for


class Receiver:
    """A local webhook receiver: records every POST's JSON body; answers `statuses` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.statuses = list(statuses or [])
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.attempts += 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status == 200:
                        assert self.path == "/hook"
                        assert self.headers["Content-Type"] == "application/json"
                        receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_repo(model_repository: ModelRepository, root: Path, alerts: list[dict[str, Any]] | None = None) -> Path:
    model = model_repository.model(IRIS_MODEL)
    config = model_config(model, name=MODEL)
    model_dir = export_model(model, root, version=1, config=config)
    if alerts is not None:
        as_dict = config.as_dict()
        as_dict["alerts"] = alerts
        (model_dir / "config.yaml").write_text(yaml.safe_dump(as_dict, sort_keys=False))
    return root


def write_alerts_file(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def infer(server: BerthServer, good: bool) -> int:
    rows = [[5.1, 3.5, 1.4, 0.2]] if good else [[5.1, 3.5, 1.4]]  # a missing feature: 400
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, len(rows[0])], "data": rows[0]}]}
    status: int = requests.post(f"{server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=5).status_code
    return status


def alerts(server: BerthServer) -> dict[str, Any]:
    response = requests.get(f"{server.base_url}/v2/alerts", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def instance(server: BerthServer, alert: str) -> dict[str, Any] | None:
    for a in alerts(server)["alerts"]:
        if a["alert"] == alert and a["model"] == MODEL and a["version"] == "1":
            return a  # type: ignore[no-any-return]
    return None


def wait_for(what: str, condition: Any, during: Any = None) -> Any:
    """Polls `condition` (running `during` between polls) until it returns a true value."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if during is not None:
            during()
        time.sleep(INTERVAL_MS / 1000)
    raise AssertionError(f"timed out waiting for {what}")


def alert_samples(server: BerthServer) -> dict[tuple[str, str], float]:
    text = requests.get(f"{server.base_url}/metrics", timeout=5).text
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("berth_alert_"):
                key = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[(s.name, key)] = s.value
    return out


def test_error_rate_fires_once_and_resolves_once(
    model_repository: ModelRepository, receiver: Receiver, tmp_path: Path
) -> None:
    repo = make_repo(
        model_repository,
        tmp_path / "repo",
        # The model's own rule, listed beside the file's; never fires here.
        alerts=[{"alert": "Busy", "metric": "in_flight", "op": ">", "threshold": 1000}],
    )
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        {
            "webhook": {"url": receiver.url, "timeout": "2s", "retries": 2},
            "rules": [
                {
                    "alert": "HighErrorRate",
                    "metric": "error_rate",
                    "op": ">",
                    "threshold": 0.01,
                    "window": "2s",
                    "for": "200ms",
                    "labels": {"severity": "page"},
                }
            ],
        },
    )
    extra = ["--alerts", str(alerts_file), "--alert-interval-ms", str(INTERVAL_MS)]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=extra) as server:
        listed = alerts(server)
        assert [(r["alert"], r["source"], r["model"]) for r in listed["rules"]] == [
            ("HighErrorRate", "file", None),
            ("Busy", "config", MODEL),
        ]
        rule = listed["rules"][0]
        assert (rule["metric"], rule["op"], rule["threshold"]) == ("error_rate", ">", 0.01)
        assert (rule["window_seconds"], rule["for_seconds"], rule["labels"]) == (2, 0.2, {"severity": "page"})

        # Healthy traffic: evaluated, inactive, nothing sent.
        wait_for(
            "an evaluation with a value",
            lambda: (i := instance(server, "HighErrorRate")) and i["value"] == 0,
            during=lambda: infer(server, good=True),
        )
        assert instance(server, "HighErrorRate")["state"] == "inactive"  # type: ignore[index]
        assert receiver.received() == []

        # Some bad requests among the good ones: over 1% for 200 ms, one firing notification.
        for _ in range(5):
            assert infer(server, good=False) == 400
        (fired,) = wait_for("the firing POST", receiver.received)
        assert fired["status"] == "firing"
        assert fired["version"] == "4"
        (alert,) = fired["alerts"]
        assert alert["status"] == "firing"
        assert alert["labels"] == {
            "alertname": "HighErrorRate",
            "model": MODEL,
            "version": "1",
            "metric": "error_rate",
            "severity": "page",
        }
        assert (alert["rule"], alert["model"], alert["version"]) == ("HighErrorRate", MODEL, "1")
        assert 0.01 < alert["value"] <= 1
        assert alert["threshold"] == 0.01
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        state = instance(server, "HighErrorRate")
        assert state is not None and state["state"] == "firing" and state["firings"] == 1
        assert state["active_since"] == alert["startsAt"]
        samples = alert_samples(server)
        labels = f"alert=HighErrorRate,model={MODEL},version=1"
        assert samples[("berth_alert_firing", labels)] == 1
        assert samples[("berth_alert_firings_total", labels)] == 1
        assert samples[("berth_alert_firing", f"alert=Busy,model={MODEL},version=1")] == 0
        assert "alert firing" in server.log() and "HighErrorRate" in server.log()

        # Healthy traffic until the failures leave the 2 s window: one resolved notification.
        wait_for("the resolved POST", lambda: len(receiver.received()) >= 2, during=lambda: infer(server, good=True))
        first, resolved = receiver.received()
        assert first == fired
        assert resolved["status"] == "resolved"
        (alert,) = resolved["alerts"]
        assert alert["status"] == "resolved"
        assert alert["value"] == 0
        assert alert["endsAt"] > alert["startsAt"] == fired["alerts"][0]["startsAt"]
        assert alert["fingerprint"] == fired["alerts"][0]["fingerprint"]
        # Said once: ten more evaluations of healthy traffic send nothing more.
        for _ in range(10):
            infer(server, good=True)
            time.sleep(INTERVAL_MS / 1000)
        assert len(receiver.received()) == 2
        state = instance(server, "HighErrorRate")
        assert state is not None and state["state"] == "inactive" and state["firings"] == 1
        assert alert_samples(server)[("berth_alert_firing", labels)] == 0
        assert alert_samples(server)[("berth_alert_webhook_total", "outcome=sent")] == 2
        assert "alert resolved" in server.log()


def test_a_failing_receiver_is_retried(model_repository: ModelRepository, tmp_path: Path) -> None:
    """The receiver answers 500 twice, then 200: the firing notification arrives once."""
    receiver = Receiver(statuses=[500, 500])
    try:
        repo = make_repo(model_repository, tmp_path / "repo")
        alerts_file = write_alerts_file(
            tmp_path / "alerts.yaml",
            {
                "webhook": {"url": receiver.url, "timeout": "2s", "retries": 3},
                "rules": [
                    {
                        "alert": "AnyTraffic",
                        "model": MODEL,
                        "metric": "request_rate",
                        "op": ">",
                        "threshold": 0,
                        "window": "1m",
                    }
                ],
            },
        )
        extra = ["--alerts", str(alerts_file), "--alert-interval-ms", str(INTERVAL_MS)]
        with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=extra) as server:
            (fired,) = wait_for("the firing POST", receiver.received, during=lambda: infer(server, good=True))
            assert fired["status"] == "firing"
            assert receiver.attempts == 3
            samples = alert_samples(server)
            assert samples[("berth_alert_webhook_total", "outcome=sent")] == 1
            assert samples[("berth_alert_webhook_total", "outcome=failed")] == 0
    finally:
        receiver.close()


def serve_fails(repo: Path, *args: str) -> str:
    """Runs the server expecting it to refuse to start; returns its output."""
    command = [
        str(berth_binary()), "serve", "--model-repository", str(repo), "--http-port", "0", "--grpc-port", "-1", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout + done.stderr


RULE: Final = {"alert": "A", "metric": "error_rate", "op": ">", "threshold": 0.01, "window": "1m"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "error_ratio"}, "rules[0].metric 'error_ratio' is not a metric alerts know"),
        ({"op": "=>"}, "rules[0].op '=>' is not one of >, >=, <, <="),
        ({"window": "-1m"}, "rules[0].window '-1m' is not a duration"),
        ({"window": "0s"}, "rules[0].window must be above 0"),
        ({"color": "red"}, "unknown field 'color' in rules[0]"),
    ],
)
def test_a_malformed_alerts_file_refuses_to_start(
    model_repository: ModelRepository, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    repo = make_repo(model_repository, tmp_path / "repo")
    path = write_alerts_file(tmp_path / "alerts.yaml", {"rules": [{**RULE, **change}]})
    output = serve_fails(repo, "--alerts", str(path))
    assert message in output
    assert str(path) in output


def test_an_unusable_webhook_or_missing_file_refuses_to_start(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    repo = make_repo(model_repository, tmp_path / "repo")
    https = write_alerts_file(
        tmp_path / "alerts.yaml", {"webhook": {"url": "https://hooks.example.com/x", "ca_file": str(tmp_path / "no.pem")}}
    )
    assert "webhook.ca_file" in serve_fails(repo, "--alerts", str(https))
    assert "is not a readable file" in serve_fails(repo, "--alerts", str(tmp_path / "missing.yaml"))
    assert "--alert-interval-ms" in serve_fails(repo, "--alert-interval-ms", "0")


def test_a_malformed_rule_in_a_model_config_fails_that_model(
    model_repository: ModelRepository, tmp_path: Path
) -> None:
    repo = make_repo(model_repository, tmp_path / "repo", alerts=[{**RULE, "window": "-5m"}])
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        index = requests.post(f"{server.base_url}/v2/repository/index", timeout=5).json()
        (entry,) = [e for e in index if e["name"] == MODEL]
        assert entry["state"] == "UNAVAILABLE"
        assert "alerts[0].window '-5m' is not a duration" in entry["reason"]
        # The server keeps serving; the model's rules are not listed.
        assert alerts(server) == {"rules": [], "alerts": []}


def test_the_documented_examples_are_accepted(model_repository: ModelRepository, tmp_path: Path) -> None:
    """docs/monitoring.md's alerts file and model `alerts:` start a server that lists their rules."""
    section = (REPO_ROOT / "docs" / "monitoring.md").read_text().split("## Alerts", 1)[1]
    file_block, config_block = re.findall(r"```yaml\n(.*?)```", section, re.S)[:2]
    repo = make_repo(model_repository, tmp_path / "repo", alerts=yaml.safe_load(config_block)["alerts"])
    path = tmp_path / "alerts.yaml"
    path.write_text(file_block)
    extra = ["--alerts", str(path)]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=extra) as server:
        listed = [(r["alert"], r["source"], r["model"]) for r in alerts(server)["rules"]]
        assert listed == [
            ("BerthModelErrors", "file", None),
            ("BerthModelSlow", "file", "iris_logreg"),
            ("IrisDrift", "config", MODEL),
        ]


def test_live_accuracy_drop_fires_and_resolves(
    model_repository: ModelRepository, receiver: Receiver, tmp_path: Path
) -> None:
    """accuracy_drop reads the feedback monitor: wrong truths for a window of
    predictions fire the rule, right ones for the next window resolve it."""
    window = 10
    model = model_repository.model(IRIS_MODEL)
    config = model_config(model, name=MODEL).as_dict()
    config["monitoring"] = {"feedback": {"window_count": window}}
    config["alerts"] = [{"alert": "AccuracyDown", "metric": "accuracy_drop", "op": ">", "threshold": 0.05}]
    model_dir = export_model(model, tmp_path / "repo", version=1, config=model_config(model, name=MODEL))
    (model_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    alerts_file = write_alerts_file(tmp_path / "alerts.yaml", {"webhook": {"url": receiver.url}})
    extra = ["--alerts", str(alerts_file), "--alert-interval-ms", str(INTERVAL_MS)]
    with BerthServer.start(berth_binary(), tmp_path / "repo", tmp_path / "berth.log", extra_args=extra) as server:
        base = f"{server.base_url}/v2/models/{MODEL}"

        def predict_and_tell(right: bool) -> None:
            items = []
            for row in model.dataset.X_test[:window]:
                body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [float(v) for v in row]}]}
                answer = requests.post(f"{base}/infer", json=body, timeout=5).json()
                (label,) = next(o["data"] for o in answer["outputs"] if o["name"] == "label")
                items.append({"id": answer["id"], "label": label if right else (label + 1) % 3})
            told = requests.post(f"{base}/feedback", json={"feedback": items}, timeout=5)
            assert told.status_code == 200, told.text
            assert told.json()["joined"] == window

        registered = requests.get(f"{base}/versions/1/accuracy", timeout=5).json()["registered"]
        assert registered["accuracy"] > 0.05, registered
        predict_and_tell(right=False)
        (fired,) = wait_for("the firing POST", receiver.received)
        (alert,) = fired["alerts"]
        assert (alert["status"], alert["metric"], alert["model"]) == ("firing", "accuracy_drop", MODEL)
        assert alert["value"] == pytest.approx(registered["accuracy"])  # live accuracy 0
        predict_and_tell(right=True)
        wait_for("the resolved POST", lambda: len(receiver.received()) >= 2)
        resolved = receiver.received()[1]
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["value"] == pytest.approx(registered["accuracy"] - 1)
