"""A DataFrame's columns reach a one-input model in the order the version was trained on, over REST
and gRPC alike: the server reports the version's recorded feature names in its configuration
(GET /v2/models/{m}/config, gRPC ModelConfig: parameters.feature_names), and berth.Client orders the
frame by them. Where the server cannot say (no registry store), a frame of several columns is refused
with the reason instead of being sent in its own order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
import requests
import tritonclient.grpc as grpcclient
from sklearn.linear_model import LogisticRegression

import berth
from berth_server import BerthServer, berth_binary
from python_models import iris

MODEL = "iris_order"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogisticRegression]:
    d = tmp_path_factory.mktemp("feature_order")
    X, y = iris()
    model = LogisticRegression(max_iter=1000).fit(X, y)
    joblib.dump(model, d / "m.joblib")
    berth.import_model(d / "m.joblib", name=MODEL, repository=d / "repo")
    return d / "repo", model


def _serve(repository: Path, log: Path, *args: str) -> BerthServer:
    return BerthServer.start(berth_binary(), repository, log, extra_args=list(args))


@pytest.fixture(scope="module")
def served(trained: tuple[Path, LogisticRegression], tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    with _serve(trained[0], tmp_path_factory.mktemp("served") / "berth.log") as server:
        yield server


@pytest.fixture(scope="module")
def unregistered(
    trained: tuple[Path, LogisticRegression], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    with _serve(trained[0], tmp_path_factory.mktemp("unregistered") / "berth.log", "--registry", "none") as server:
        yield server


def _urls(server: BerthServer) -> dict[str, str]:
    return {"rest": server.base_url, "grpc": f"grpc://{server.grpc_address()}"}


def test_reversed_columns_give_the_same_labels_over_grpc_as_over_rest(
    served: BerthServer, trained: tuple[Path, LogisticRegression]
) -> None:
    X, _ = iris()
    expected = trained[1].predict(X).tolist()
    reversed_frame = X[X.columns[::-1]]
    # The reversal matters: the same values in the frame's own order answer otherwise.
    with berth.Client(_urls(served)["rest"]) as raw:
        assert raw.predict(MODEL, reversed_frame.to_numpy()).labels.tolist() != expected  # type: ignore[union-attr]
    for door, url in _urls(served).items():
        with berth.Client(url) as client:
            assert client.predict(MODEL, reversed_frame).labels.tolist() == expected, door  # type: ignore[union-attr]
            rows = reversed_frame.iloc[:20].to_dict(orient="records")
            assert client.predict(MODEL, rows).labels.tolist() == expected[:20], door  # type: ignore[union-attr]
            with pytest.raises(berth.BerthError, match="the data lacks petal_width_cm"):
                client.predict(MODEL, reversed_frame.drop(columns=["petal_width_cm"]))

    async def predict() -> list[int]:
        async with berth.AsyncClient(served.base_url) as client:
            return (await client.predict(MODEL, reversed_frame)).labels.tolist()  # type: ignore[union-attr]

    assert asyncio.run(predict()) == expected


def test_both_doors_report_the_recorded_feature_names(served: BerthServer) -> None:
    X, _ = iris()
    rest = requests.get(f"{served.base_url}/v2/models/{MODEL}/config", timeout=10).json()
    assert json.loads(rest["parameters"]["feature_names"]["string_value"]) == list(X.columns)
    client = grpcclient.InferenceServerClient(served.grpc_address())
    try:
        config = client.get_model_config(MODEL, as_json=True)["config"]
    finally:
        client.close()
    assert json.loads(config["parameters"]["feature_names"]["string_value"]) == list(X.columns)


def test_without_a_registry_a_frame_is_refused_rather_than_guessed(
    unregistered: BerthServer, trained: tuple[Path, LogisticRegression]
) -> None:
    X, _ = iris()
    expected = trained[1].predict(X).tolist()
    config = requests.get(f"{unregistered.base_url}/v2/models/{MODEL}/config", timeout=10).json()
    assert "feature_names" not in config.get("parameters", {})
    for door, url in _urls(unregistered).items():
        with berth.Client(url) as client:
            with pytest.raises(berth.BerthError, match="cannot check the column order of the DataFrame"):
                client.predict(MODEL, X[X.columns[::-1]])
            with pytest.raises(berth.BerthError, match="does not report the feature names"):
                client.predict(MODEL, X.iloc[:3].to_dict(orient="records"))
            # A numpy array says its own order: served as ever.
            assert client.predict(MODEL, X.to_numpy()).labels.tolist() == expected, door  # type: ignore[union-attr]
