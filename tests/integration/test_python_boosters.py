"""XGBoost and LightGBM through onnxmltools, alone and inside scikit-learn pipelines, with their known traps."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from berth.cli import main as berth_py
from python_models import breast_cancer, diabetes, iris, write_csv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")


def imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_path: Path, sample: Path, target: str | None = "target"
) -> dict[str, object]:
    args = [
        "import",
        str(model_path),
        "--name",
        "b",
        "--repository",
        str(tmp_path / "repo"),
        "--sample-data",
        str(sample),
    ]
    code = berth_py(args + (["--target", target] if target else []))
    out, err = capsys.readouterr()
    assert code == 0, err
    version = out.strip().splitlines()[-1]
    metadata: dict[str, object] = json.loads((tmp_path / "repo" / "b" / version / "metadata.json").read_text())
    assert metadata["parity"]["passed"] is True, metadata["parity"]  # type: ignore[index]
    return metadata


def test_xgboost_regressor_with_base_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """onnxruntime#11892: a base_score that is not 0.5 must reach the ONNX graph."""
    X, y = diabetes()
    model = xgboost.XGBRegressor(n_estimators=30, max_depth=3, base_score=float(y.mean())).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    metadata = imported(tmp_path, capsys, tmp_path / "m.joblib", write_csv(tmp_path / "d.csv", X, y))
    assert metadata["framework"] == "xgboost"
    model.save_model(tmp_path / "m.json")  # the native JSON format, no pickle
    assert (
        imported(tmp_path, capsys, tmp_path / "m.json", tmp_path / "d.csv")["lineage"]["source_format"]
        == "xgboost-json"
    )  # type: ignore[index]


def test_xgboost_classifier_in_a_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = breast_cancer()
    model = make_pipeline(StandardScaler(), xgboost.XGBClassifier(n_estimators=20, max_depth=3)).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    imported(tmp_path, capsys, tmp_path / "m.joblib", write_csv(tmp_path / "d.csv", X, y))


@pytest.mark.parametrize("data", [iris, breast_cancer])
def test_lightgbm_classifier(data: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """onnxmltools#728: LightGBM classifiers (binary and multiclass) keep their probabilities."""
    X, y = data()  # type: ignore[operator]
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    metadata = imported(tmp_path, capsys, tmp_path / "m.joblib", write_csv(tmp_path / "d.csv", X, y))
    assert metadata["class_labels"] == sorted(set(y.tolist()))


def test_lightgbm_regressor_in_a_pipeline_and_native_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = diabetes()
    model = make_pipeline(StandardScaler(), lightgbm.LGBMRegressor(n_estimators=20, verbose=-1)).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    imported(tmp_path, capsys, tmp_path / "m.joblib", write_csv(tmp_path / "d.csv", X, y))
    model.steps[-1][1].booster_.save_model(tmp_path / "m.txt")
    write_csv(tmp_path / "scaled.csv", X, y)
    imported(tmp_path, capsys, tmp_path / "m.txt", tmp_path / "scaled.csv")


def test_mlflow_xgboost_flavor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MLflow's xgboost flavor keeps a native model file (UBJSON as model.xgb): no pickle involved."""
    X, y = iris()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X.to_numpy(), y)
    directory = tmp_path / "mlflow_model"
    directory.mkdir()
    model.get_booster().save_model(directory / "model.xgb")
    (directory / "MLmodel").write_text(
        "flavors:\n  python_function: {loader_module: mlflow.xgboost, data: model.xgb}\n"
        "  xgboost: {data: model.xgb, model_class: xgboost.sklearn.XGBClassifier, model_format: xgb}\n"
    )
    metadata = imported(tmp_path, capsys, directory, write_csv(tmp_path / "d.csv", X, y))
    assert metadata["lineage"]["source_format"] == "mlflow:xgboost/xgboost-ubj"  # type: ignore[index]
    assert metadata["class_labels"] == [0, 1, 2]


def test_mlflow_lightgbm_flavor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = diabetes()
    booster = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y).booster_
    directory = tmp_path / "mlflow_model"
    directory.mkdir()
    booster.save_model(directory / "model.lgb")
    (directory / "MLmodel").write_text("flavors:\n  lightgbm: {data: model.lgb, model_class: lightgbm.basic.Booster}\n")
    metadata = imported(tmp_path, capsys, directory, write_csv(tmp_path / "d.csv", X, y))
    assert metadata["lineage"]["source_format"] == "mlflow:lightgbm/lightgbm-text"  # type: ignore[index]
    assert metadata["task"] == "regression"
