"""XGBoost and LightGBM served end to end: import --url into build/berth, predict over REST and gRPC.

Labels must be identical to the original booster's and probabilities/values
within 1e-5. The regressor keeps XGBoost's automatic base_score (XGBoost 2+
estimates it from the targets; onnxruntime#11892 lost a base_score that is
not 0.5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import berth
import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from berth.cli import main as berth_py
from berth_server import BerthServer, berth_binary
from python_models import breast_cancer, diabetes, iris, write_csv

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("python_boosters_served")
    (root / "models").mkdir()
    with BerthServer.start(berth_binary(), root / "models", root / "berth.log") as server:
        yield server


def _xgb_regressor_auto_base_score() -> Any:
    return xgboost.XGBRegressor(n_estimators=20, max_depth=3)  # no base_score: XGBoost estimates it


CASES: dict[str, tuple[Callable[[], tuple[pd.DataFrame, pd.Series]], Callable[[], Any]]] = {
    "lgbm_binary": (breast_cancer, lambda: lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1)),
    "lgbm_multiclass": (iris, lambda: lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1)),
    "xgb_binary": (breast_cancer, lambda: xgboost.XGBClassifier(n_estimators=20, max_depth=3)),
    "xgb_multiclass": (iris, lambda: xgboost.XGBClassifier(n_estimators=20, max_depth=3)),
    "xgb_regressor_auto_base_score": (diabetes, _xgb_regressor_auto_base_score),
}


def assert_matches(model: Any, X: pd.DataFrame, prediction: berth.Prediction) -> None:
    if hasattr(model, "predict_proba"):
        assert prediction.labels is not None and prediction.probabilities is not None
        np.testing.assert_array_equal(prediction.labels.reshape(-1), model.predict(X))
        np.testing.assert_allclose(prediction.probabilities, model.predict_proba(X), rtol=1e-5, atol=1e-5)
    else:
        assert prediction.values is not None
        np.testing.assert_allclose(prediction.values.reshape(-1), model.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_booster_served_over_rest_and_grpc(
    name: str, server: BerthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load, make = CASES[name]
    X, y = load()
    model = make().fit(X, y)
    if name == "xgb_regressor_auto_base_score":
        config = json.loads(model.get_booster().save_config())
        base_score = float(config["learner"]["learner_model_param"]["base_score"].strip("[]"))
        assert abs(base_score - 0.5) > 1.0  # estimated from the targets (diabetes: ~152), not the old default
    joblib.dump(model, tmp_path / "model.joblib")
    sample = write_csv(tmp_path / "train.csv", X, y)

    code = berth_py(["import", str(tmp_path / "model.joblib"), "--name", name, "--url", server.base_url,
                     "--sample-data", str(sample), "--target", "target"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    version = int(out.strip().splitlines()[-1])

    rest = berth.Client(server.base_url)
    grpc = berth.Client(f"grpc://{server.grpc_address()}")
    assert_matches(model, X, rest.predict(name, X, version=version))
    assert_matches(model, X, grpc.predict(name, X, version=version))
    assert_matches(model, X.head(7), rest.predict(name, X.head(7).to_dict("records")))
    assert_matches(model, X.head(9), grpc.predict(name, X.head(9).to_numpy()))

    registry = requests.get(f"{server.base_url}/v2/registry/models/{name}", timeout=10).json()
    metadata = next(v for v in registry["versions"] if v["version"] == version)["metadata"]
    assert metadata["framework"] in ("xgboost", "lightgbm")
    assert metadata["parity"]["passed"] is True
    assert metadata["scan"]["scanner"] == "berth-allowlist+fickling" and metadata["scan"]["findings"] == []
    if hasattr(model, "predict_proba"):
        assert metadata["class_labels"] == sorted(set(y.tolist()))
