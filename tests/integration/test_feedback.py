"""Accuracy from ground truth (issue #9, item 4): every prediction has an id
(the v2 `id`, X-Request-Id, or one the server gives and returns); a version
with `monitoring: feedback:` keeps its predictions in the registry store, joins
the truths sent to POST /v2/models/{m}/feedback, and reports rolling metrics
at GET /v2/models/{m}/versions/{v}/accuracy and in /metrics that agree with
scikit-learn's on the same predictions, next to the registered metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from berth_server import BerthServer, berth_binary
from models import IRIS_MODEL, ModelRepository, TrainedModel, export_model, model_config
from test_registry_postgres import Postgres, postgres  # noqa: F401 (the fixture)
from train_models import BREAST_CANCER_RF, DIABETES_GBR
from v2 import V2Client, assert_error

BINARY: Final = BREAST_CANCER_RF.name
MULTICLASS: Final = IRIS_MODEL
REGRESSION: Final = DIABETES_GBR.name
SHORT: Final = "iris_short_retention"  # retention of about a second
PLAIN: Final = "iris_plain"  # no monitoring.feedback
HEX_ID: Final = re.compile(r"^[0-9a-f]{32}$")


def write_model(root: Path, model: TrainedModel, name: str, feedback: dict[str, Any] | None) -> None:
    model_dir = export_model(model, root, version=1, config=model_config(model, name=name))
    config = model_config(model, name=name).as_dict()
    if feedback is not None:
        config["monitoring"] = {"feedback": feedback}
    (model_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def served(model_repository: ModelRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("feedback_repo")
    write_model(root, model_repository.model(BINARY), BINARY, {"window_count": 1000})
    write_model(root, model_repository.model(MULTICLASS), MULTICLASS, {})
    write_model(root, model_repository.model(REGRESSION), REGRESSION, {"retention_hours": 24})
    write_model(root, model_repository.model(MULTICLASS), SHORT, {"retention_hours": 0.0003})
    write_model(root, model_repository.model(MULTICLASS), PLAIN, None)
    log = tmp_path_factory.mktemp("feedback_log") / "berth.log"
    with BerthServer.start(berth_binary(), root, log) as server:
        yield server


@pytest.fixture
def client(served: BerthServer) -> Iterator[V2Client]:
    with V2Client(served.base_url) as c:
        yield c


def registered_metrics(model_repository: ModelRepository, name: str) -> dict[str, float]:
    metrics: dict[str, float] = model_repository.model(name).metadata()["metrics"]
    return metrics


def rest_infer(
    client: V2Client, model: TrainedModel, name: str, X: np.ndarray, *, body_id: str | None = None,
    header_id: str | None = None,
) -> tuple[str, dict[str, np.ndarray]]:
    """One v2 JSON request; returns the prediction's id and the outputs."""
    body = model.infer_request(X, **({"id": body_id} if body_id is not None else {}))
    headers = {"X-Request-Id": header_id} if header_id is not None else {}
    response = client.session.post(f"{client.base_url}/v2/models/{name}/infer", json=body, headers=headers)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["id"] == response.headers["X-Request-Id"]
    outputs = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in payload["outputs"]}
    return payload["id"], outputs


def post_feedback(client: V2Client, name: str, items: list[dict[str, Any]], version: int | None = None) -> dict[str, Any]:
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "") + "/feedback"
    response = client.post(path, {"feedback": items})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def accuracy(client: V2Client, name: str) -> dict[str, Any]:
    response = client.get(f"/v2/models/{name}/versions/1/accuracy")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def scrape(client: V2Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_ids_are_given_honoured_and_returned(served: BerthServer, client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MULTICLASS)
    X = model.dataset.X_test[:2]
    generated, _ = rest_infer(client, model, PLAIN, X)
    assert HEX_ID.match(generated), generated
    again, _ = rest_infer(client, model, PLAIN, X)
    assert again != generated
    assert rest_infer(client, model, PLAIN, X, header_id="from-header-1")[0] == "from-header-1"
    # The body's id wins over the header's.
    assert rest_infer(client, model, PLAIN, X, body_id="from-body", header_id="from-header-2")[0] == "from-body"
    # An unusable header id (too long) is replaced by a new one.
    assert HEX_ID.match(rest_infer(client, model, PLAIN, X, header_id="x" * 200)[0])

    # The row doors carry no id field: the header in, the header out.
    rows = X.astype(np.float32).tolist()
    for path, body in (
        (f"/v1/models/{PLAIN}:predict", {"instances": rows}),
        (f"/v2/models/{PLAIN}/infer_rows", {"instances": [{"X": row} for row in rows]}),
    ):
        r = client.session.post(client.base_url + path, json=body, headers={"X-Request-Id": "rows-7"})
        assert r.status_code == 200, r.text
        assert r.headers["X-Request-Id"] == "rows-7"
        r = client.session.post(client.base_url + path, json=body)
        assert HEX_ID.match(r.headers["X-Request-Id"])

    triton = grpcclient.InferenceServerClient(url=served.grpc_address())
    try:
        inputs = [grpcclient.InferInput("X", list(X.shape), "FP32")]
        inputs[0].set_data_from_numpy(X.astype(np.float32))
        assert HEX_ID.match(triton.infer(PLAIN, inputs).get_response().id)
        assert triton.infer(PLAIN, inputs, request_id="grpc-id").get_response().id == "grpc-id"
        assert triton.infer(PLAIN, inputs, headers={"x-request-id": "grpc-meta"}).get_response().id == "grpc-meta"
    finally:
        triton.close()


def test_binary_feedback_agrees_with_scikit_learn(
    served: BerthServer, client: V2Client, model_repository: ModelRepository
) -> None:
    model = model_repository.model(BINARY)
    X, y = model.dataset.X_test, model.dataset.y_test
    predicted: list[int] = []
    scores: list[float] = []
    items: list[dict[str, Any]] = []

    def add(request_id: str, labels: np.ndarray, probabilities: np.ndarray, truth: np.ndarray) -> None:
        for row, (label, p, t) in enumerate(zip(labels.ravel(), probabilities, truth, strict=True)):
            predicted.append(int(label))
            # As the server holds it: FP32 (JSON's shortest text of it reads back as a double
            # that differs from gRPC's raw float, and a forest's probabilities tie a lot).
            scores.append(float(np.float32(p[1])))
            items.append({"id": request_id, "row": row, "label": int(t)})

    # REST JSON, batches of 10 rows: ids given in the body, or generated.
    split = 60
    for start in range(0, split, 10):
        body_id = f"bc-{start}" if start % 20 == 0 else None
        request_id, outputs = rest_infer(client, model, BINARY, X[start : start + 10], body_id=body_id)
        add(request_id, outputs["label"], outputs["probabilities"], y[start : start + 10])
    # gRPC through tritonclient, one row a request, the id generated.
    triton = grpcclient.InferenceServerClient(url=served.grpc_address())
    try:
        for i in range(split, X.shape[0]):
            inputs = [grpcclient.InferInput("X", [1, X.shape[1]], "FP64")]
            inputs[0].set_data_from_numpy(X[i : i + 1].astype(np.float64))
            result = triton.infer(BINARY, inputs)
            add(result.get_response().id, result.as_numpy("label"), result.as_numpy("probabilities"), y[i : i + 1])
    finally:
        triton.close()

    answer = post_feedback(client, BINARY, items)
    assert answer == {"model_name": BINARY, "joined": len(items), "unknown": 0, "duplicate": 0, "late": 0}

    report = accuracy(client, BINARY)
    assert report["task"] == "classification"
    assert report["window"]["count"] == len(items) and report["window"]["limit"] == 1000
    assert report["window"]["start"] is not None and report["window"]["end"] is not None
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, predicted), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, predicted), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, predicted), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    registered = registered_metrics(model_repository, BINARY)
    assert report["registered"] == pytest.approx(registered)
    for name in ("accuracy", "roc_auc"):
        assert report["drop"][name] == pytest.approx(registered[name] - m[name], abs=1e-12)

    # Duplicates (again, and twice in one request) and unknown ids are counted, not joined.
    again = post_feedback(client, BINARY, [items[0], {"id": "no-such-id", "label": 1}, items[1], items[1]])
    assert again == {"model_name": BINARY, "joined": 0, "unknown": 1, "duplicate": 3, "late": 0}
    assert accuracy(client, BINARY)["window"]["count"] == len(items)

    series = scrape(client)
    labels = (("metric", "accuracy"), ("model", BINARY), ("version", "1"))
    assert series[("berth_model_accuracy", labels)] == pytest.approx(m["accuracy"], abs=1e-12)
    assert series[("berth_model_accuracy_drop", labels)] == pytest.approx(report["drop"]["accuracy"], abs=1e-12)
    assert series[("berth_model_accuracy_registered", labels)] == pytest.approx(registered["accuracy"])
    assert series[("berth_feedback_window_rows", (("model", BINARY), ("version", "1")))] == len(items)
    outcome = lambda o: series[("berth_feedback_total", (("model", BINARY), ("outcome", o)))]  # noqa: E731
    assert (outcome("joined"), outcome("unknown"), outcome("duplicate"), outcome("late")) == (len(items), 1, 3, 0)


def test_multiclass_feedback_through_the_row_doors(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MULTICLASS)
    X, y = model.dataset.X_test, model.dataset.y_test
    predicted: list[int] = []
    items: list[dict[str, Any]] = []
    for start in range(0, X.shape[0], 8):
        rows = X[start : start + 8].astype(np.float32).tolist()
        request_id = f"iris-{start}"
        if start % 16 == 0:
            r = client.session.post(
                f"{client.base_url}/v1/models/{MULTICLASS}:predict", json={"instances": rows},
                headers={"X-Request-Id": request_id},
            )
            assert r.status_code == 200, r.text
            labels = [p["label"] for p in r.json()["predictions"]]
        else:
            r = client.session.post(
                f"{client.base_url}/v2/models/{MULTICLASS}/infer_rows",
                json={"instances": [{"X": row} for row in rows]},
                headers={"X-Request-Id": request_id},
            )
            assert r.status_code == 200, r.text
            labels = [p["label"] for p in r.json()["predictions"]]
        assert r.headers["X-Request-Id"] == request_id
        for row, label in enumerate(labels):
            predicted.append(int(label))
            # Classes as strings and as numbers are one class.
            truth = int(y[start + row])
            items.append({"id": request_id, "row": row, "label": str(truth) if row % 2 else truth})
    answer = post_feedback(client, MULTICLASS, items, version=1)
    assert answer["joined"] == len(items)
    m = accuracy(client, MULTICLASS)["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, predicted, average="macro"), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, predicted, average="macro"), abs=1e-12)
    assert "roc_auc" not in m


def test_regression_feedback(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(REGRESSION)
    X, y = model.dataset.X_test, model.dataset.y_test
    predicted: list[float] = []
    items: list[dict[str, Any]] = []
    for start in range(0, X.shape[0], 16):
        request_id, outputs = rest_infer(client, model, REGRESSION, X[start : start + 16])
        for row, value in enumerate(outputs["variable"].ravel()):
            predicted.append(float(np.float32(value)))  # the FP32 the server holds
            items.append({"id": request_id, "row": row, "value": float(y[start + row])})
    assert post_feedback(client, REGRESSION, items)["joined"] == len(items)
    report = accuracy(client, REGRESSION)
    assert report["task"] == "regression"
    m = report["metrics"]
    assert m["mae"] == pytest.approx(mean_absolute_error(y, predicted), rel=1e-12)
    assert m["rmse"] == pytest.approx(float(np.sqrt(mean_squared_error(y, predicted))), rel=1e-12)
    registered = registered_metrics(model_repository, REGRESSION)
    if "mae" in registered:
        assert report["drop"]["mae"] == pytest.approx(m["mae"] - registered["mae"], rel=1e-9)


def test_late_feedback_is_counted(client: V2Client, model_repository: ModelRepository) -> None:
    model = model_repository.model(MULTICLASS)
    request_id, outputs = rest_infer(client, model, SHORT, model.dataset.X_test[:3])
    time.sleep(1.5)  # past the 0.0003 h (1.08 s) retention
    answer = post_feedback(client, SHORT, [{"id": request_id, "row": r, "label": 0} for r in range(3)])
    assert answer == {"model_name": SHORT, "joined": 0, "unknown": 0, "duplicate": 0, "late": 3}
    assert accuracy(client, SHORT)["window"]["count"] == 0
    series = scrape(client)
    assert series[("berth_feedback_total", (("model", SHORT), ("outcome", "late")))] == 3


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "malformed JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"feedback": []}', "non-empty array"),
        (b'{"feedback": [{"label": 1}]}', "feedback[0].id"),
        (b'{"feedback": [{"id": "a"}]}', "exactly one of 'label'"),
        (b'{"feedback": [{"id": "a", "label": 1, "value": 2}]}', "exactly one of 'label'"),
        (b'{"feedback": [{"id": "a", "row": -1, "label": 1}]}', "feedback[0].row"),
        (b'{"feedback": [{"id": "a", "value": "x"}]}', "feedback[0].value must be a number"),
        (b'{"feedback": [{"id": "a", "label": [1]}]}', "feedback[0].label must be"),
        (b'{"feedback": [{"id": "a", "label": 1, "extra": 1}]}', "extra"),
        (b'{"feedback": [], "more": 1}', "more"),
    ],
)
def test_malformed_feedback_is_refused(client: V2Client, body: bytes, fragment: str) -> None:
    message = assert_error(client.post_raw(f"/v2/models/{BINARY}/feedback", body), 400)
    assert fragment in message


def test_unknown_models_versions_and_models_without_feedback(client: V2Client) -> None:
    item = {"feedback": [{"id": "a", "label": 1}]}
    assert_error(client.post("/v2/models/no_such_model/feedback", item), 404)
    assert_error(client.post(f"/v2/models/{BINARY}/versions/9/feedback", item), 404)
    assert_error(client.get("/v2/models/no_such_model/versions/1/accuracy"), 404)
    assert_error(client.get(f"/v2/models/{BINARY}/versions/9/accuracy"), 404)
    assert "monitoring.feedback" in assert_error(client.post(f"/v2/models/{PLAIN}/feedback", item), 400)
    assert "monitoring.feedback" in assert_error(client.get(f"/v2/models/{PLAIN}/accuracy"), 400)
    # The server keeps serving.
    assert client.get("/v2/health/ready").status_code == 200


def test_feedback_survives_a_restart(model_repository: ModelRepository, tmp_path: Path) -> None:
    """Predictions and joined truths are in the registry store, not only in memory."""
    model = model_repository.model(MULTICLASS)
    root = tmp_path / "repo"
    write_model(root, model, MULTICLASS, {})
    X, y = model.dataset.X_test[:20], model.dataset.y_test[:20]
    with BerthServer.start(berth_binary(), root, tmp_path / "a.log") as server, V2Client(server.base_url) as c:
        request_id, outputs = rest_infer(c, model, MULTICLASS, X)
        predicted = outputs["label"].ravel().tolist()
        half = [{"id": request_id, "row": r, "label": int(y[r])} for r in range(10)]
        assert post_feedback(c, MULTICLASS, half)["joined"] == 10
    with BerthServer.start(berth_binary(), root, tmp_path / "b.log") as server, V2Client(server.base_url) as c:
        assert accuracy(c, MULTICLASS)["window"]["count"] == 10
        rest = [{"id": request_id, "row": r, "label": int(y[r])} for r in range(20)]
        assert post_feedback(c, MULTICLASS, rest) == {
            "model_name": MULTICLASS, "joined": 10, "unknown": 0, "duplicate": 10, "late": 0,
        }
        report = accuracy(c, MULTICLASS)
        assert report["window"]["count"] == 20
        assert report["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-12)



def test_replicas_on_postgresql_join_each_others_predictions(
    postgres: Postgres, model_repository: ModelRepository, tmp_path: Path
) -> None:
    """With the PostgreSQL store the predictions one replica answered are joined
    with truths another receives: the table is the store's, not a replica's."""
    url = postgres.createdb()
    model = model_repository.model(MULTICLASS)
    write_model(tmp_path / "repo-a", model, MULTICLASS, {})
    X, y = model.dataset.X_test[:12], model.dataset.y_test[:12]

    def serve(name: str) -> BerthServer:
        return BerthServer.start(
            berth_binary(), tmp_path / f"repo-{name}", tmp_path / f"{name}.log", extra_args=["--registry", url]
        )

    with serve("a") as a, serve("b") as b, V2Client(a.base_url) as ca, V2Client(b.base_url) as cb:
        request_id, outputs = rest_infer(ca, model, MULTICLASS, X)
        predicted = outputs["label"].ravel().tolist()
        assert accuracy(ca, MULTICLASS)["window"]["count"] == 0  # A has read its window
        deadline = time.monotonic() + 10
        while cb.get(f"/v2/models/{MULTICLASS}/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        items = [{"id": request_id, "row": r, "label": int(y[r])} for r in range(12)]
        # A writes its predictions within a second; until then B finds none.
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = post_feedback(cb, MULTICLASS, items[:1])
            if answer["joined"] == 1:
                break
            time.sleep(0.2)
        assert answer["joined"] == 1, answer
        assert post_feedback(cb, MULTICLASS, items)["joined"] == 11
        report = accuracy(cb, MULTICLASS)
        assert report["window"]["count"] == 12
        assert report["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=1e-12)
        # A reads the truths B joined from the store (its window is re-read every 5 s).
        deadline = time.monotonic() + 10
        while accuracy(ca, MULTICLASS)["window"]["count"] != 12 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert accuracy(ca, MULTICLASS)["metrics"] == report["metrics"]
