"""Data and prediction drift (issue #9, item 3): a version's window of sampled
requests against its baseline profile, figures checked against scipy and a
PSI computed here on the same windows, at GET /v2/models/{m}/versions/{v}/drift
and in /metrics; baselines from the version's metadata, from a file or from
the window (`berth models baseline`), kept in the registry store."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from train_models import TrainedModel, export_model
from v2 import V2Client, assert_error

MODEL: Final = "drifty"
FEATURES: Final = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SHIFTED: Final = 2  # petal_length moves by 3 cm in the shifted window
WINDOW: Final = 150  # monitoring.window_count: exactly the dataset's rows
MIN_WINDOW: Final = 50
# The baseline's distribution, as the server reads it: linear between its
# 101 quantiles (docs/monitoring.md), sampled finely enough for scipy.
DENSE: Final = np.linspace(0.0, 1.0, 200_001)


def iris(model_repository: ModelRepository) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, 1)


def numeric_profile(name: str, column: int, values: np.ndarray) -> dict[str, Any]:
    """A numeric feature in the "berth-baseline/1" format, as the Python SDK writes it."""
    bins = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
    counts, _ = np.histogram(values, bins)
    return {
        "name": name,
        "input": "X",
        "column": column,
        "kind": "numeric",
        "count": int(values.size),
        "missing": 0,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": np.quantile(values, np.linspace(0, 1, 101)).tolist(),
        "bins": bins.tolist(),
        "counts": counts.tolist(),
    }


def baseline(model: TrainedModel) -> dict[str, Any]:
    X = model.dataset.X_train.astype(np.float32).astype(np.float64)
    labels = Counter(str(int(v)) for v in model.estimator.predict(model.dataset.X_train))
    return {
        "format": "berth-baseline/1",
        "rows": int(X.shape[0]),
        "features": [numeric_profile(name, j, X[:, j]) for j, name in enumerate(FEATURES)],
        "prediction": {
            "output": "label",
            "kind": "categorical",
            "count": sum(labels.values()),
            "missing": 0,
            "frequencies": dict(labels),
        },
    }


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    model = iris(model_repository)
    config = model_config(model, name=MODEL, version_policy={"all": True}).as_dict()
    config["monitoring"] = {
        "sample_rate": 1.0,
        "window_count": WINDOW,
        "window_seconds": 0,
        "min_window": MIN_WINDOW,
    }
    model_dir = export_model(model, root, version=1, config=model_config(model, name=MODEL))
    (model_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[BerthServer]:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server:
        yield server


def push_with_baseline(client: V2Client, repo: Path, profile: Any) -> int:
    artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
    head = json.dumps({"description": "iris with a training profile", "baseline": profile}).encode()
    response = client.session.post(
        f"{client.base_url}/v2/registry/models/{MODEL}/versions",
        data=head + artifact,
        headers={"Content-Type": "application/octet-stream", "Berth-Metadata-Length": str(len(head))},
    )
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


def send(client: V2Client, version: int, X: np.ndarray, batch: int = 10) -> list[int]:
    """Sends X's rows in requests of `batch` rows; returns the predicted labels."""
    labels: list[int] = []
    for start in range(0, X.shape[0], batch):
        rows = X[start : start + batch].astype(np.float32)
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}]}
        response = client.post(f"/v2/models/{MODEL}/versions/{version}/infer", body)
        assert response.status_code == 200, response.text
        (label,) = [o for o in response.json()["outputs"] if o["name"] == "label"]
        labels.extend(label["data"])
    return labels


def drift(client: V2Client, version: int | str) -> dict[str, Any]:
    response = client.get(f"/v2/models/{MODEL}/versions/{version}/drift")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reference_psi(window: np.ndarray, feature: dict[str, Any]) -> float:
    """PSI over the baseline's bins, the outer ones open, proportions floored at 1e-4."""
    edges = np.asarray(feature["bins"], dtype=np.float64)
    inner = np.concatenate(([-np.inf], edges[1:-1], [np.inf]))
    actual, _ = np.histogram(window, inner)
    a = np.maximum(actual / actual.sum(), 1e-4)
    expected = np.asarray(feature["counts"], dtype=np.float64)
    e = np.maximum(expected / expected.sum(), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def check_against_scipy(report: dict[str, Any], profile: dict[str, Any], X: np.ndarray, labels: list[int]) -> None:
    assert report["window"]["count"] == X.shape[0]
    for j, (got, feature) in enumerate(zip(report["features"], profile["features"], strict=True)):
        window = X[:, j].astype(np.float32).astype(np.float64)
        dense = np.interp(DENSE, np.linspace(0, 1, 101), feature["quantiles"])
        assert got["name"] == feature["name"] and got["status"] == "ok"
        assert got["count"] == window.size
        assert got["psi"] == pytest.approx(reference_psi(window, feature), rel=1e-9, abs=1e-12)
        assert got["ks"] == pytest.approx(ks_2samp(window, dense).statistic, abs=1e-4)
        raw = wasserstein_distance(window, dense)
        assert got["wasserstein_raw"] == pytest.approx(raw, rel=1e-3, abs=1e-6)
        assert got["wasserstein"] == pytest.approx(raw / feature["std"], rel=1e-3, abs=1e-6)
        # The quantiles summarise the training sample closely: the same
        # figure against the raw sample is near.
        assert got["mean"] == pytest.approx(window.mean(), rel=1e-9)
    prediction = report["prediction"]
    frequencies = profile["prediction"]["frequencies"]
    seen = Counter(str(v) for v in labels)
    categories = sorted(set(frequencies) | set(seen))
    expected_js = jensenshannon([seen[c] for c in categories], [frequencies.get(c, 0) for c in categories])
    assert prediction["js"] == pytest.approx(float(expected_js), abs=1e-9)


def test_drift_against_a_metadata_baseline_agrees_with_scipy(
    served: BerthServer, repo: Path, model_repository: ModelRepository
) -> None:
    model = iris(model_repository)
    profile = baseline(model)
    X = np.concatenate([model.dataset.X_train, model.dataset.X_test])[:WINDOW]
    with V2Client(served.base_url) as client:
        version = push_with_baseline(client, repo, profile)

        # Below min_window: too small, never drift.
        labels = send(client, version, X[:20])
        report = drift(client, version)
        assert report["status"] == "too_small" and report["baseline"] == "metadata"
        assert report["window"]["count"] == 20 and report["drift"] is False
        assert all(f["status"] == "too_small" and f["drift"] is False for f in report["features"])

        labels += send(client, version, X[20:])
        report = drift(client, version)
        assert report["status"] == "ok"
        assert report["window"]["start"] <= report["window"]["end"]
        check_against_scipy(report, profile, X, labels)
        assert [f["drift"] for f in report["features"]] == [False] * 4, report

        shifted = X.copy()
        shifted[:, SHIFTED] += 3.0
        shifted_labels = send(client, version, shifted)
        report = drift(client, version)
        check_against_scipy(report, profile, shifted, shifted_labels)
        flags = [f["drift"] for f in report["features"]]
        assert flags == [j == SHIFTED for j in range(4)], report
        assert report["features"][SHIFTED]["psi"] >= 0.2
        assert report["drift"] is True

        # The same figures in /metrics, which Prometheus's parser reads.
        text = client.get("/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        psi = {
            s.labels["feature"]: s.value
            for s in families["berth_drift_psi"].samples
            if s.labels["model"] == MODEL and s.labels["version"] == str(version)
        }
        assert set(psi) == set(FEATURES)
        assert psi["petal_length"] == pytest.approx(report["features"][SHIFTED]["psi"], rel=1e-6)
        detected = {
            s.labels["feature"]: s.value
            for s in families["berth_drift_detected"].samples
            if s.labels["model"] == MODEL and s.labels["version"] == str(version)
        }
        assert detected == {**dict.fromkeys(FEATURES, 0.0), "petal_length": 1.0, "label": detected["label"]}
        rows = [
            s.value
            for s in families["berth_drift_window_rows"].samples
            if s.labels == {"model": MODEL, "version": str(version)}
        ]
        assert rows == [WINDOW]
        requests = [
            s.value
            for s in families["berth_inference_requests_success"].samples
            if s.labels == {"model": MODEL, "version": str(version)} and s.name.endswith("_total")
        ]
        assert requests == [2 * WINDOW / 10]


def test_a_version_without_baseline_and_bad_input(served: BerthServer, repo: Path) -> None:
    with V2Client(served.base_url) as client:
        report = drift(client, 1)
        assert report["status"] == "no_baseline" and report["baseline"] is None
        assert report["features"] == [] and report["drift"] is False
        assert_error(client.get(f"/v2/models/{MODEL}/versions/9/drift"), 404)
        assert_error(client.get("/v2/models/no_such_model/drift"), 404)
        assert_error(client.get(f"/v2/models/{MODEL}/versions/1/baseline"), 404)
        # A malformed profile is refused naming the field; nothing is stored.
        bad = {"format": "berth-baseline/1", "features": [{"name": "x", "input": "X", "kind": "numeric", "count": 1}]}
        response = client.post(f"/v2/models/{MODEL}/versions/1/baseline", {"profile": bad})
        assert_error(response, 400)
        assert "features[0].mean" in response.json()["error"]
        for body in ({}, {"from_window": True, "profile": {}}, {"from_window": "yes"}, {"nope": 1}):
            assert_error(client.post(f"/v2/models/{MODEL}/versions/1/baseline", body), 400)
        # No sampled request yet: nothing to profile.
        assert_error(client.post(f"/v2/models/{MODEL}/versions/1/baseline", {"from_window": True}), 400)
        assert drift(client, 1)["status"] == "no_baseline"


def run_cli(served: BerthServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(berth_binary()), "models", "baseline", "--url", served.base_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_sets_a_baseline_from_the_window_or_a_file_and_it_survives_a_restart(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    model = iris(model_repository)
    X = np.concatenate([model.dataset.X_train, model.dataset.X_test])[:WINDOW]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as served, V2Client(served.base_url) as client:
        send(client, 1, X)
        done = run_cli(served, f"{MODEL}:1", "--from-window", "--reason", "reference week")
        assert done.returncode == 0, done.stderr
        shown = client.get(f"/v2/models/{MODEL}/versions/1/baseline").json()
        assert shown["source"] == "store"
        profile = shown["profile"]
        # The server profiles its window in the documented format, with the
        # input's columns as features (no baseline named them).
        assert [f["name"] for f in profile["features"]] == ["X[0]", "X[1]", "X[2]", "X[3]"]
        window = X[:, 2].astype(np.float32).astype(np.float64)
        assert profile["features"][2]["quantiles"] == pytest.approx(np.quantile(window, np.linspace(0, 1, 101)).tolist())
        assert profile["features"][2]["counts"] == np.histogram(window, profile["features"][2]["bins"])[0].tolist()
        assert profile["prediction"]["output"] == "label" and profile["prediction"]["kind"] == "categorical"
        # The window starts over against the new baseline.
        report = drift(client, 1)
        assert report["baseline"] == "store" and report["window"]["count"] == 0
        send(client, 1, X)
        report = drift(client, 1)
        assert report["status"] == "ok" and report["drift"] is False
        assert all(f["psi"] == pytest.approx(0, abs=1e-12) for f in report["features"])
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()
        assert history["history"][-1]["action"] == "baseline"

        bad = tmp_path / "bad.json"
        bad.write_text('{"format": "berth-baseline/2", "features": []}')
        done = run_cli(served, MODEL + ":1", "--file", str(bad))
        assert done.returncode == 1 and "format" in done.stderr
        done = run_cli(served, MODEL + ":1", "--file", str(tmp_path / "missing.json"))
        assert done.returncode == 1 and "cannot read" in done.stderr
        assert run_cli(served, MODEL + ":1").returncode == 2  # no source

        good = tmp_path / "profile.json"
        good.write_text(json.dumps(baseline(model)))
        done = run_cli(served, MODEL + ":1", "--file", str(good))
        assert done.returncode == 0, done.stderr
        assert [f["name"] for f in client.get(f"/v2/models/{MODEL}/versions/1/baseline").json()["profile"]["features"]] == list(FEATURES)

    with BerthServer.start(berth_binary(), repo, tmp_path / "berth2.log") as served, V2Client(served.base_url) as client:
        assert drift(client, 1)["baseline"] == "store"
        assert drift(client, 1)["status"] == "too_small"
        done = run_cli(served, MODEL + ":1", "--clear")
        assert done.returncode == 0, done.stderr
        assert drift(client, 1)["status"] == "no_baseline"
