"""`berth-py evaluate` against a running build/berth: which version a score belongs to.

The holdout goes through the server in batches; an alias is resolved to its
version through the registry first, so every batch reaches that one version
and the score is stored with it. An alias that splits its traffic is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import requests
from berth.cli import main as berth_py
from berth.evaluation import BATCH_ROWS, evaluate
from berth_server import BerthServer, berth_binary
from python_models import diabetes, write_csv
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("python_evaluate")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


@pytest.fixture(scope="module")
def ridges(server: BerthServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Ridge], Path]:
    """Two versions of `ridge` on diabetes, far apart in error, and a holdout spanning several batches."""
    root = tmp_path_factory.mktemp("ridges")
    X, y = diabetes()
    models = [Ridge(alpha=0.01).fit(X, y), Ridge(alpha=10.0).fit(X, y)]
    for i, model in enumerate(models, start=1):
        joblib.dump(model, root / f"v{i}.joblib")
        assert berth_py(["import", str(root / f"v{i}.joblib"), "--name", "ridge", "--url", server.base_url]) == 0
    assert len(X) > BATCH_ROWS  # the score needs two batches or more to be able to mix versions
    return models, write_csv(root / "holdout.csv", X, y, target="progression")


def registry(server: BerthServer, action: str, body: dict[str, Any]) -> None:
    answer = requests.post(f"{server.base_url}/v2/registry/models/ridge/{action}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text


def stored(server: BerthServer) -> dict[int, list[dict[str, Any]]]:
    model = requests.get(f"{server.base_url}/v2/registry/models/ridge", timeout=10).json()
    return {v["version"]: [e["evaluation"] for e in v["evaluations"]] for v in model["versions"]}


def expected(model: Ridge) -> dict[str, float]:
    X, y = diabetes()
    predicted = model.predict(X)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)),
    }


def run_evaluate(capsys: pytest.CaptureFixture[str], server: BerthServer, ref: str, holdout: Path) -> tuple[int, str]:
    code = berth_py(["evaluate", "--url", server.base_url, ref, "--data", str(holdout), "--target", "progression",
                     "--json", "--store"])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out if code == 0 else err


def test_regression_metrics_through_an_alias_are_stored_with_its_version(
    server: BerthServer, ridges: tuple[list[Ridge], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    models, holdout = ridges
    registry(server, "promote", {"version": 1, "alias": "production"})
    before = stored(server)
    code, out = run_evaluate(capsys, server, "ridge@production", holdout)
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["version"] == "1" and "stored with ridge version 1" in out
    for key, value in expected(models[0]).items():
        assert result["metrics"][key] == pytest.approx(value, rel=1e-5), key
    after = stored(server)
    assert [e["metrics"] for e in after[1][len(before[1]) :]] == [result["metrics"]]
    assert after[2] == before[2]

    # The default (production, one version) resolves the same way.
    code, out = run_evaluate(capsys, server, "ridge", holdout)
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["version"] == "1"


def test_a_promotion_during_the_run_does_not_mix_versions(
    server: BerthServer, ridges: tuple[list[Ridge], Path]
) -> None:
    models, holdout = ridges
    registry(server, "promote", {"version": 1, "alias": "production"})
    registry(server, "promote", {"version": 1, "alias": "staging"})  # keeps 1 loaded once production moves

    def promote_after_the_first_batch(starts: Any, total: int) -> Iterator[int]:
        for i, start in enumerate(starts):
            if i == 1:
                registry(server, "promote", {"version": 2, "alias": "production"})
            yield start

    result = evaluate(server.base_url, "ridge@production", holdout, "progression", batches=promote_after_the_first_batch)
    assert result.version == "1"
    assert result.metrics["rmse"] == pytest.approx(expected(models[0])["rmse"], rel=1e-5)
    registry(server, "promote", {"version": 1, "alias": "production"})


def test_a_split_alias_is_refused_naming_its_versions(
    server: BerthServer, ridges: tuple[list[Ridge], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, holdout = ridges
    registry(server, "split", {"versions": {"1": 50, "2": 50}, "alias": "production"})
    try:
        before = stored(server)
        for ref in ("ridge@production", "ridge"):
            code, err = run_evaluate(capsys, server, ref, holdout)
            assert code == 2, err
            assert "splits its traffic over versions 1 (50%) and 2 (50%)" in err, err
            assert "ridge:1 and ridge:2" in err, err
        assert stored(server) == before  # nothing stored
    finally:
        registry(server, "promote", {"version": 1, "alias": "production"})

    code, err = run_evaluate(capsys, server, "ridge@canary", holdout)
    assert code == 2 and "no alias 'canary'" in err, err
    # A version number needs no alias: each version of a split scores on its own.
    code, out = run_evaluate(capsys, server, "ridge:2", holdout)
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["version"] == "2", out
