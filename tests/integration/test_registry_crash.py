"""kill -9 during registry changes (issue #7): a push of a large artifact, a
deletion, promotions under inference load. After every restart the registry
is consistent: the server starts and is ready, every recorded version is
wholly present with its digest (or deleted, and gone), every version on disk
is recorded, no staging directory is left or served, every alias points at
a READY version, and every acknowledged change survived.

Real binary, real SQLite store (and a real PostgreSQL one for the pushes);
every random choice is seeded, so a failure
replays.
"""

from __future__ import annotations

import hashlib
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

from berth_server import BerthServer, berth_binary
from models import ModelRepository
from test_registry_reliability import (
    MOVES,
    alias_moves,
    assert_consistent,
    copy_of_store,
    infer_body,
    integrity,
    mover,
    postgres,  # noqa: F401 (the private PostgreSQL fixture, through store_args)
    store_args,
    write_repo,
)
from v2 import V2Client

BIG: Final = "big"
# Large enough that writing, hashing, syncing and trial-loading it takes a
# while, so that the signal lands in every phase of a push.
ARTIFACT_BYTES: Final = 24 << 20
PUSH_ROUNDS: Final = 20
LOAD_ROUNDS: Final = 10
REQUEST_TIMEOUT_S: Final = 30.0


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    """churn 1, 2 and 3 (test_registry_reliability's repository), beside which BIG is pushed."""
    return write_repo(model_repository, tmp_path / "repo")


def big_model() -> onnx.ModelProto:
    """X[-1, 4] -> Y = X, carrying an unused initializer of ARTIFACT_BYTES."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])
    ballast = numpy_helper.from_array(np.ones(ARTIFACT_BYTES // 4, dtype=np.float32), name="ballast")
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "big", [x], [y], [ballast])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def push(base_url: str, artifact: bytes) -> requests.Response:
    return requests.post(
        f"{base_url}/v2/registry/models/{BIG}/versions",
        data=artifact,
        headers={"Content-Type": "application/octet-stream"},
        timeout=REQUEST_TIMEOUT_S,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def assert_no_staging(repo: Path) -> None:
    """Nothing hidden is left but the store: no unfinished push or deletion."""
    hidden = [p.name for p in repo.iterdir() if p.name.startswith(".") and p.name != ".berth"]
    for model_dir in repo.iterdir():
        if model_dir.is_dir() and not model_dir.name.startswith("."):
            hidden += [f"{model_dir.name}/{p.name}" for p in model_dir.iterdir() if p.name.startswith(".")]
    assert hidden == [], hidden


def assert_big_consistent(client: V2Client, repo: Path, acknowledged: dict[int, str], deleted: set[int]) -> None:
    """Every recorded version of BIG is wholly present with its digest, or deleted and gone; nothing unrecorded."""
    response = client.get(f"/v2/registry/models/{BIG}")
    if response.status_code == 404:
        assert not acknowledged, ("acknowledged pushes are gone", acknowledged)
        assert not (repo / BIG).exists()
        return
    assert response.status_code == 200, response.text
    shown = response.json()
    recorded = {v["version"]: v for v in shown["versions"]}
    on_disk = {int(p.name) for p in (repo / BIG).iterdir() if p.name.isdigit()}
    for version, v in recorded.items():
        if v["state"] == "DELETED":
            assert version not in on_disk, (version, "a deleted version's files are still there")
            continue
        assert version in on_disk, (version, v["state"], "recorded but absent")
        assert sha256(repo / BIG / str(version) / "model.onnx") == v["digest"], version
    assert on_disk <= set(recorded), ("on disk but not recorded", on_disk - set(recorded))
    for version, digest in acknowledged.items():
        assert version in recorded, ("an acknowledged push is gone", version)
        assert recorded[version]["digest"] == digest, version
    for version in deleted:
        assert recorded[version]["state"] == "DELETED", ("an acknowledged deletion is undone", version)
    # The default version answers.
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [2, 4], "data": x.ravel().tolist()}]}
    answer = client.infer(BIG, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == x.ravel().tolist()


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_kill_9_during_pushes_and_deletions_leaves_a_consistent_registry(
    repo: Path, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(11)
    model = big_model()
    acknowledged: dict[int, str] = {}  # version -> digest, of pushes answered 200
    deleted: set[int] = set()  # versions whose deletion was answered 200
    args = store_args(store, request)
    rounds = PUSH_ROUNDS if store == "sqlite" else PUSH_ROUNDS // 2
    server = BerthServer.start(berth_binary(), repo, tmp_path / "round-0.log", extra_args=args)
    try:
        # How long a push takes here, so that the signals spread over all of it.
        push_s = 0.0
        for calibration in range(2):
            model.doc_string = f"calibration {calibration}"
            artifact = model.SerializeToString()
            started = time.monotonic()
            response = push(server.base_url, artifact)
            assert response.status_code == 200, response.text
            push_s = max(push_s, time.monotonic() - started)
            acknowledged[response.json()["version"]] = "sha256:" + hashlib.sha256(artifact).hexdigest()
        finished = 0  # rounds whose change was answered before the signal
        for round_number in range(1, rounds + 1):
            model.doc_string = f"round {round_number}"
            artifact = model.SerializeToString()
            deletable = sorted(set(acknowledged) - deleted)[:-1]  # never the newest: it serves
            action = "delete" if deletable and rng.random() < 0.25 else "push"
            target = rng.choice(deletable) if action == "delete" else 0
            answers: list[requests.Response] = []

            def act(action: str = action, target: int = target, artifact: bytes = artifact) -> None:
                try:
                    if action == "push":
                        answers.append(push(server.base_url, artifact))
                    else:
                        answers.append(
                            requests.delete(
                                f"{server.base_url}/v2/registry/models/{BIG}/versions/{target}",
                                timeout=REQUEST_TIMEOUT_S,
                            )
                        )
                except requests.RequestException:
                    pass  # cut off by the signal

            thread = threading.Thread(target=act)
            thread.start()
            time.sleep(rng.uniform(0.0, push_s * 1.5))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            thread.join()
            finished += len(answers)
            for answer in answers:
                assert answer.status_code == 200, (round_number, action, answer.text)
                if action == "push":
                    acknowledged[answer.json()["version"]] = "sha256:" + hashlib.sha256(artifact).hexdigest()
                else:
                    deleted.add(target)

            if store == "sqlite":
                assert integrity(copy_of_store(repo, tmp_path / f"crashed-{round_number}")) == "ok"
            server = BerthServer.start(
                berth_binary(), repo, tmp_path / f"round-{round_number}.log", extra_args=args
            )
            with V2Client(server.base_url) as client:
                assert client.get("/v2/health/ready").status_code == 200
                assert_no_staging(repo)
                assert_big_consistent(client, repo, acknowledged, deleted)
                # The model the pushes left alone is untouched.
                assert client.get("/v2/models/churn/ready").status_code == 200
        assert 0 < finished < rounds, f"{finished} of {rounds} changes finished: the signals missed"
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.log()


def infer_loop(base_url: str, body: Any, stop: threading.Event, failures: list[str]) -> None:
    """Infers until `stop` or until the server is gone; any answer but 200 is a failure."""
    with requests.Session() as session:
        while not stop.is_set():
            try:
                answer = session.post(f"{base_url}/v2/models/churn/infer", json=body, timeout=REQUEST_TIMEOUT_S)
            except requests.RequestException:
                return
            if answer.status_code != 200:
                failures.append(f"{answer.status_code} {answer.text}")


def test_kill_9_during_promotions_under_load_leaves_a_consistent_registry(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    rng = random.Random(13)
    body = infer_body(model_repository)
    recorded = 0
    errors: list[str] = []
    failures: list[str] = []
    server = BerthServer.start(berth_binary(), repo, tmp_path / "round-0.log")
    try:
        for round_number in range(1, LOAD_ROUNDS + 1):
            stop = threading.Event()
            acknowledged: list[str] = []
            threads = [
                threading.Thread(target=infer_loop, args=(server.base_url, body, stop, failures)) for _ in range(4)
            ]
            threads.append(
                threading.Thread(
                    target=mover,
                    args=(server.base_url, random.Random(rng.getrandbits(32)), stop, acknowledged, errors),
                )
            )
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.1, 0.8))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            stop.set()
            for thread in threads:
                thread.join()
            assert errors == [] and failures == [], (round_number, errors, failures[:5])

            assert integrity(copy_of_store(repo, tmp_path / f"crashed-{round_number}")) == "ok"
            server = BerthServer.start(berth_binary(), repo, tmp_path / f"round-{round_number}.log")
            with V2Client(server.base_url) as client:
                assert client.get("/v2/health/ready").status_code == 200
                assert_consistent(client, body)
                assert_no_staging(repo)
                history = client.get("/v2/registry/models/churn/history").json()["history"]
            before, recorded = recorded, len(alias_moves(history))
            assert before + len(acknowledged) <= recorded <= before + len(acknowledged) + 1, (
                round_number,
                before,
                acknowledged,
                recorded,
            )
        assert recorded > LOAD_ROUNDS, f"the movers hardly moved anything ({recorded} moves of {sorted(MOVES)})"
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.log()
