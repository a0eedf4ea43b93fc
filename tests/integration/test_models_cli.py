"""`berth models ...`: the real binary against a real server's registry admin API.

Each test gets its own server over a fresh repository holding one model with
versions 1 and 2 (both loaded: version_policy {all: true}), so a promotion in
one test cannot leak into another.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import requests

from berth_server import HOST, BerthServer, berth_binary, free_port
from models import ALL_VERSIONS_MODEL, ModelRepository, model_config
from train_models import TrainedModel, assert_outputs_match, export_model
from v2 import V2Client, decode_outputs

MODEL: Final = "iris_registry"
CLI_TIMEOUT_S: Final = 60.0
REGISTRY: Final = "/v2/registry/models"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`berth models ARGS...`, its output captured as text."""
    return subprocess.run(
        [str(berth_binary()), "models", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def run_ok(*args: str) -> str:
    """stdout of a `berth models` run that must succeed."""
    result = run_cli(*args)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result.stdout


@pytest.fixture
def versions(model_repository: ModelRepository) -> dict[int, TrainedModel]:
    return {v: model_repository.model(ALL_VERSIONS_MODEL, v) for v in (1, 2)}


def write_repository(root: Path, versions: dict[int, TrainedModel]) -> None:
    """MODEL with `versions`, all of them loaded (version_policy {all: true})."""
    for version, model in versions.items():
        config = model_config(model, name=MODEL, version_policy={"all": True})
        export_model(model, root, version=version, config=config)


@pytest.fixture
def registry_server(versions: dict[int, TrainedModel], tmp_path: Path) -> Iterator[BerthServer]:
    root = tmp_path / "repo"
    write_repository(root, versions)
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log", grpc_port=-1) as server:
        yield server


def served_by_default(server: BerthServer, versions: dict[int, TrainedModel]) -> str:
    """The version that answers a request naming no version; its answer is checked."""
    x = versions[1].dataset.X_test[:5]
    with V2Client(server.base_url) as client:
        response = client.infer(MODEL, versions[1].infer_request(x))
    assert response.status_code == 200, response.text
    body = response.json()
    version: str = body["model_version"]
    assert_outputs_match(versions[int(version)].sklearn_outputs(x), decode_outputs(body))
    return version


def server_json(server: BerthServer, path: str) -> Any:
    response = requests.get(server.base_url + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_promote_moves_production_and_the_default_version(
    registry_server: BerthServer, versions: dict[int, TrainedModel]
) -> None:
    url = registry_server.base_url
    # With no production alias the latest version answers; promoting the
    # older one makes the change visible.
    assert served_by_default(registry_server, versions) == "2"

    out = run_ok("promote", "--url", url, MODEL, "1")
    last_line = out.strip().splitlines()[-1]
    assert "version 1" in last_line and "production" in last_line, out

    listed = run_ok("list", "--url", url)
    assert listed.splitlines()[0].split() == ["MODEL", "ALIASES", "VERSIONS"]
    row = next(line for line in listed.splitlines() if line.startswith(MODEL + " "))
    assert "production=1" in row, listed

    shown = run_ok("show", "--url", url, MODEL)
    assert "default version:  1" in shown, shown
    version_rows = {line.split()[0]: line for line in shown.splitlines() if line[:1].isdigit()}
    assert set(version_rows) == {"1", "2"}, shown
    assert "production" in version_rows["1"] and "production" not in version_rows["2"], shown

    details = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert details["aliases"]["production"] == 1
    assert details["default_version"] == 1
    assert served_by_default(registry_server, versions) == "1"


def test_promote_to_another_alias_leaves_production_alone(
    registry_server: BerthServer, versions: dict[int, TrainedModel]
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    out = run_ok("promote", "--url", url, MODEL, "1", "--alias", "staging", "--reason", "try v1")
    assert "staging" in out and "version 1" in out, out
    details = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert details["aliases"] == {"production": 2, "staging": 1}
    assert served_by_default(registry_server, versions) == "2"


def test_rollback_returns_to_the_previous_version(
    registry_server: BerthServer, versions: dict[int, TrainedModel]
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "1")
    run_ok("promote", "--url", url, MODEL, "2")
    assert served_by_default(registry_server, versions) == "2"

    out = run_ok("rollback", "--url", url, MODEL, "--reason", "v2 misbehaves")
    last_line = out.strip().splitlines()[-1]
    assert "version 1" in last_line and "previously 2" in last_line, out
    assert json.loads(run_ok("show", "--url", url, MODEL, "--json"))["aliases"]["production"] == 1
    assert served_by_default(registry_server, versions) == "1"


def test_rollback_after_a_canary_split_serves_the_version_before_it_alone(
    registry_server: BerthServer, versions: dict[int, TrainedModel]
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    run_ok("split", "--url", url, MODEL, "2=90", "1=10")
    out = run_ok("rollback", "--url", url, MODEL, "--reason", "canary misbehaves")
    last_line = out.strip().splitlines()[-1]
    assert "version 2" in last_line, out
    shown = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert shown["aliases"] == {"production": 2} and shown["splits"] == {}, shown
    assert {served_by_default(registry_server, versions) for _ in range(100)} == {"2"}
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert (history[-1]["action"], history[-1]["to"], history[-1]["reason"]) == ("rollback", 2, "canary misbehaves")


def test_history_lists_every_move_with_its_reason(registry_server: BerthServer) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "1", "--reason", "first release")
    run_ok("promote", "--url", url, MODEL, "2", "--reason", "retrained")
    run_ok("rollback", "--url", url, MODEL, "--alias", "production", "--reason", "too slow")

    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))
    assert history["model"] == MODEL
    moves = [
        (r["action"], r["alias"], r["from"], r["to"], r["reason"])
        for r in history["history"]
        if r["action"] in ("promote", "rollback")
    ]
    assert moves == [
        ("promote", "production", None, 1, "first release"),
        ("promote", "production", 1, 2, "retrained"),
        ("rollback", "production", 2, 1, "too slow"),
    ]

    table = run_ok("history", "--url", url, MODEL).splitlines()
    assert table[0].split() == [
        "ID",
        "AT",
        "ACTOR",
        "ACTION",
        "ALIAS",
        "FROM",
        "TO",
        "REASON",
    ]
    rows = [line for line in table[1:] if " promote " in line or " rollback " in line]
    assert len(rows) == 3, table
    assert rows[0].endswith("first release") and rows[2].endswith("too slow"), table


def test_json_is_the_servers_answer_as_is(registry_server: BerthServer) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    for args, path in (
        (("list",), REGISTRY),
        (("show", MODEL), f"{REGISTRY}/{MODEL}"),
        (("history", MODEL), f"{REGISTRY}/{MODEL}/history"),
    ):
        assert json.loads(run_ok(*args, "--url", url, "--json")) == server_json(registry_server, path)
    promoted = json.loads(run_ok("promote", "--url", url, MODEL, "1", "--json"))
    assert promoted == {
        "model": MODEL,
        "alias": "production",
        "version": 1,
        "previous": 2,
    }


def test_server_errors_exit_1_with_the_servers_message(
    registry_server: BerthServer,
) -> None:
    url = registry_server.base_url
    unknown = requests.get(f"{url}{REGISTRY}/no_such_model", timeout=10)
    assert unknown.status_code == 404
    for args in (
        ("show", "--url", url, "no_such_model"),
        ("show", "--url", url, "no_such_model", "--json"),
        ("history", "--url", url, "no_such_model"),
    ):
        result = run_cli(*args)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert unknown.json()["error"] in result.stderr, result.stderr
        assert "HTTP 404" in result.stderr

    for args in (
        ("promote", "--url", url, "no_such_model", "1"),
        ("promote", "--url", url, MODEL, "99"),
        ("rollback", "--url", url, MODEL),  # nothing to roll back to yet
    ):
        result = run_cli(*args)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert result.stderr.startswith("berth: ") and "(HTTP 4" in result.stderr, result.stderr
    # A refused promotion left no alias behind.
    assert server_json(registry_server, f"{REGISTRY}/{MODEL}")["aliases"] == {}


def test_a_version_that_does_not_load_is_never_promoted(versions: dict[int, TrainedModel], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_repository(root, versions)
    (root / MODEL / "3").mkdir()
    (root / MODEL / "3" / "model.onnx").write_bytes(b"not an ONNX graph")
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log", grpc_port=-1) as server:
        url = server.base_url
        run_ok("promote", "--url", url, MODEL, "1")
        result = run_cli("promote", "--url", url, MODEL, "3")
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert result.stderr.startswith("berth: ") and "(HTTP 4" in result.stderr, result.stderr
        shown = run_ok("show", "--url", url, MODEL)
        assert "default version:  1" in shown, shown
        row = next(line for line in shown.splitlines() if line.startswith("3 "))
        assert "UNAVAILABLE" in row and "production" not in row, shown
        assert shown.splitlines()[4].split()[-1] == "REASON", shown
        assert served_by_default(server, versions) == "1"


def artifact(tmp_path: Path, version: int = 1) -> Path:
    """The ONNX file of MODEL's `version` in the repository the fixture wrote."""
    return tmp_path / "repo" / MODEL / str(version) / "model.onnx"


def served_by_number(server: BerthServer, versions: dict[int, TrainedModel], version: str, expect: int) -> None:
    """A request naming `version` is answered by it, with model `expect`'s outputs."""
    x = versions[1].dataset.X_test[:5]
    response = requests.post(
        f"{server.base_url}/v2/models/{MODEL}/versions/{version}/infer",
        json=versions[1].infer_request(x),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == version
    assert_outputs_match(versions[expect].sklearn_outputs(x), decode_outputs(body))


def test_push_prints_the_new_version_alone_on_its_last_line(
    registry_server: BerthServer, versions: dict[int, TrainedModel], tmp_path: Path
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    metadata = {
        "metrics": {"f1": 0.91},
        "trained_at": "2026-11-01T00:00:00Z",
        "dataset": {"digest": "sha256:" + "ab" * 32},
        "tags": {"schedule": "nightly"},
    }
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(json.dumps(metadata, indent=2) + "\n")

    out = run_ok(
        "push",
        "--url",
        url,
        "--name",
        MODEL,
        str(artifact(tmp_path, 1)),
        "--metadata",
        str(meta_file),
    )
    assert out.splitlines()[-1] == "3", out
    assert MODEL in out.splitlines()[0], out
    served_by_number(registry_server, versions, "3", expect=1)
    # Pushing does not move production.
    assert served_by_default(registry_server, versions) == "2"

    shown = {v["version"]: v for v in json.loads(run_ok("show", "--url", url, MODEL, "--json"))["versions"]}
    assert shown[3]["metadata"] == metadata
    assert shown[3]["source"] == "push"
    assert shown[3]["digest"] == shown[1]["digest"]  # the same bytes, content-addressed

    # Without metadata; --json prints the server's answer.
    pushed = json.loads(run_ok("push", "--url", url, "--name", MODEL, str(artifact(tmp_path, 2)), "--json"))
    assert pushed == {"model": MODEL, "version": 4}
    served_by_number(registry_server, versions, "4", expect=2)
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert [r["to"] for r in history if r["reason"] == "push"] == [3, 4], history

    # A first push creates the model.
    out = run_ok("push", "--url", url, "--name", "fresh_model", str(artifact(tmp_path, 1)))
    assert out.splitlines()[-1] == "1", out
    assert requests.get(f"{url}/v2/models/fresh_model/ready", timeout=10).status_code == 200


def test_push_records_its_reason_in_the_audit(registry_server: BerthServer, tmp_path: Path) -> None:
    url = registry_server.base_url
    reason = "retrained on November's data: ü 100% / ok"
    out = run_ok("push", "--url", url, "--name", MODEL, str(artifact(tmp_path, 1)), "--reason", reason)
    version = int(out.splitlines()[-1])
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    (record,) = [r for r in history if r["action"] == "register" and r["to"] == version]
    assert record["reason"] == f"push: {reason}", record
    # A first push (which creates the model) records it too.
    out = run_ok("push", "--url", url, "--name", "fresh_model", str(artifact(tmp_path, 1)), "--reason", "first")
    history = json.loads(run_ok("history", "--url", url, "fresh_model", "--json"))["history"]
    assert [r["reason"] for r in history if r["action"] == "register"] == ["push: first"], history
    # A header that is not percent-encoded UTF-8 is refused, nothing stored.
    bad = requests.post(
        f"{url}{REGISTRY}/{MODEL}/versions",
        data=artifact(tmp_path, 1).read_bytes(),
        headers={"Content-Type": "application/octet-stream", "Berth-Reason": "%ff%zz"},
        timeout=30,
    )
    assert bad.status_code == 400 and "Berth-Reason" in bad.json()["error"], bad.text


def assert_nothing_pushed(server: BerthServer) -> None:
    details = server_json(server, f"{REGISTRY}/{MODEL}")
    assert [v["version"] for v in details["versions"]] == [1, 2], details


def test_a_corrupt_artifact_exits_1_with_the_servers_message(registry_server: BerthServer, tmp_path: Path) -> None:
    url = registry_server.base_url
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an ONNX graph")
    direct = requests.post(
        f"{url}{REGISTRY}/{MODEL}/versions",
        data=corrupt.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert direct.status_code == 400, direct.text
    result = run_cli("push", "--url", url, "--name", MODEL, str(corrupt))
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("berth: ") and "(HTTP 400)" in result.stderr, result.stderr
    assert direct.json()["error"] in result.stderr, result.stderr
    assert_nothing_pushed(registry_server)


def test_allow_signature_change_is_a_query_the_server_accepts(registry_server: BerthServer, tmp_path: Path) -> None:
    # The server refuses a query it does not know, so this fails if the flag
    # is sent malformed.
    out = run_ok(
        "push",
        "--url",
        registry_server.base_url,
        "--name",
        MODEL,
        str(artifact(tmp_path, 2)),
        "--allow-signature-change",
    )
    assert out.splitlines()[-1] == "3", out


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("[1, 2]", "metadata must be a JSON object"),
        ('{"f1": 0.9', "is not valid JSON"),
        ('{"f1": 0.9}', "metadata has an unknown field 'f1'"),
        ('{"metrics": {"f1": 9}}', "metadata.metrics.f1 must be a number in [0, 1]"),
    ],
)
def test_metadata_outside_the_schema_exits_1_before_sending(
    registry_server: BerthServer, tmp_path: Path, metadata: str, message: str
) -> None:
    meta_file = tmp_path / "meta.json"
    meta_file.write_text(metadata)
    result = run_cli(
        "push",
        "--url",
        registry_server.base_url,
        "--name",
        MODEL,
        str(artifact(tmp_path)),
        "--metadata",
        str(meta_file),
    )
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert message in result.stderr and str(meta_file) in result.stderr, result.stderr
    assert_nothing_pushed(registry_server)


def test_a_missing_file_exits_1_naming_it(registry_server: BerthServer, tmp_path: Path) -> None:
    missing = tmp_path / "no_such.onnx"
    result = run_cli("push", "--url", registry_server.base_url, "--name", MODEL, str(missing))
    assert result.returncode == 1, result
    assert f"cannot read the artifact '{missing}'" in result.stderr, result.stderr


def test_a_push_over_the_servers_body_limit_reports_its_413(versions: dict[int, TrainedModel], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_repository(root, versions)
    limit = 256 * 1024
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * (4 * 1024 * 1024))
    with BerthServer.start(
        berth_binary(),
        root,
        tmp_path / "berth.log",
        grpc_port=-1,
        extra_args=["--max-upload-bytes", str(limit)],
    ) as server:
        result = run_cli("push", "--url", server.base_url, "--name", MODEL, str(big))
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert "(HTTP 413)" in result.stderr and str(limit) in result.stderr, result.stderr
        assert "--max-upload-bytes" in result.stderr, result.stderr
        assert_nothing_pushed(server)


def test_split_sends_the_alias_traffic_by_weight(
    registry_server: BerthServer, versions: dict[int, TrainedModel], tmp_path: Path
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    out = run_ok(
        "split",
        "--url",
        url,
        MODEL,
        "--alias",
        "production",
        "1=90",
        "2=10",
        "--reason",
        "canary",
    )
    assert out.strip().splitlines()[-1] == f"{MODEL}: production now splits traffic 1=90 2=10 (previously 2)", out

    details = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert details["splits"] == {"production": {"1": 90, "2": 10}}
    assert "splits:           production={1=90,2=10}" in run_ok("show", "--url", url, MODEL)
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert history[-1]["action"] == "split" and history[-1]["reason"].endswith("canary"), history
    # Both versions answer requests naming no version.
    assert {served_by_default(registry_server, versions) for _ in range(200)} == {
        "1",
        "2",
    }

    # A split of another alias, over three versions, with --json.
    run_ok("push", "--url", url, "--name", MODEL, str(artifact(tmp_path, 1)))
    moved = json.loads(
        run_ok(
            "split",
            "--url",
            url,
            MODEL,
            "--alias",
            "staging",
            "1=1",
            "2=1",
            "3=2",
            "--json",
        )
    )
    assert moved["model"] == MODEL and moved["alias"] == "staging" and moved["version"] == 3, moved
    assert server_json(registry_server, f"{REGISTRY}/{MODEL}")["splits"] == {
        "production": {"1": 90, "2": 10},
        "staging": {"1": 1, "2": 1, "3": 2},
    }


def test_a_refused_split_exits_1_and_changes_nothing(
    registry_server: BerthServer,
) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    result = run_cli("split", "--url", url, MODEL, "1=50", "99=50")
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("berth: ") and "(HTTP 4" in result.stderr, result.stderr
    details = server_json(registry_server, f"{REGISTRY}/{MODEL}")
    assert details["splits"] == {} and details["aliases"] == {"production": 2}, details


def test_split_with_a_sticky_key(registry_server: BerthServer, versions: dict[int, TrainedModel]) -> None:
    url = registry_server.base_url
    out = run_ok("split", "--url", url, MODEL, "1=50", "2=50", "--sticky-key", "X-User-Id")
    expected = f"{MODEL}: production now splits traffic 1=50 2=50 keyed by header X-User-Id (previously none)"
    assert out.strip() == expected, out
    assert "sticky keys:      production=x-user-id" in run_ok("show", "--url", url, MODEL)
    body = versions[1].infer_request(versions[1].dataset.X_test[:1])
    for user in ("ann", "bo", "cy"):
        answered = {
            requests.post(
                f"{url}/v2/models/{MODEL}/infer", json=body, headers={"X-User-Id": user}, timeout=10
            ).json()["model_version"]
            for _ in range(10)
        }
        assert len(answered) == 1, (user, answered)
    result = run_cli("split", "--url", url, MODEL, "1=50", "2=50", "--sticky-key", "x-bin")
    assert result.returncode == 1 and "sticky key" in result.stderr, result


def test_archive_restore_and_delete(registry_server: BerthServer, versions: dict[int, TrainedModel]) -> None:
    url = registry_server.base_url
    archived = run_ok("archive", "--url", url, MODEL, "2", "--reason", "drifted")
    assert archived == f"{MODEL}: version 2 archived (ARCHIVED)\n"
    assert served_by_default(registry_server, versions) == "1"
    listing = run_ok("list", "--url", url)
    assert listing.splitlines()[0].split() == ["MODEL", "ALIASES", "VERSIONS", "ARCHIVED", "DELETED"], listing
    assert listing.splitlines()[1].split() == [MODEL, "-", "1", "2", "-"], listing
    assert run_ok("restore", "--url", url, MODEL, "2") == f"{MODEL}: version 2 restored (READY)\n"
    run_ok("promote", "--url", url, MODEL, "2")
    # In use by production: refused, exit 1 with the server's message naming the alias.
    result = run_cli("delete", "--url", url, MODEL, "2")
    assert result.returncode == 1 and result.stdout == "", result
    assert "'production'" in result.stderr and "(HTTP 409)" in result.stderr, result.stderr
    deleted = run_ok("delete", "--url", url, MODEL, "1", "--reason", "leaked data")
    assert deleted == f"{MODEL}: version 1 deleted (DELETED)\n"
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    actions = [(h["action"], h["to"], h["reason"]) for h in history if h["action"] in ("archive", "restore", "delete")]
    assert actions == [("archive", 2, "drifted"), ("restore", 2, ""), ("delete", 1, "leaked data")], actions
    table = run_ok("history", "--url", url, MODEL)
    assert "delete" in table and "leaked data" in table
    shown = {v["version"]: v["state"] for v in server_json(registry_server, f"{REGISTRY}/{MODEL}")["versions"]}
    assert shown == {1: "DELETED", 2: "READY"}


def test_shadow_then_off(registry_server: BerthServer, versions: dict[int, TrainedModel]) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    out = run_ok("shadow", "--url", url, MODEL, "1", "--percent", "20", "--reason", "try v1")
    assert out == f"{MODEL}: version 1 shadows 20% of the traffic (previously none)\n", out

    details = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert (details["shadow"]["version"], details["shadow"]["percent"]) == (1, 20), details
    assert "shadow:           version 1, 20% of the traffic\n" in run_ok("show", "--url", url, MODEL)
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert history[-1]["action"] == "shadow" and history[-1]["to"] == 1, history
    assert history[-1]["reason"].endswith("try v1"), history
    # The shadow never answers.
    assert {served_by_default(registry_server, versions) for _ in range(20)} == {"2"}
    # show has its comparison with the live answers (once some copies ran).
    deadline = time.monotonic() + 10
    while json.loads(run_ok("show", "--url", url, MODEL, "--json"))["shadow"]["requests"] == 0:
        assert time.monotonic() < deadline, "no shadow request was counted"
        served_by_default(registry_server, versions)
    shown = json.loads(run_ok("show", "--url", url, MODEL, "--json"))["shadow"]
    assert shown["requests"] == shown["agree"] + shown["differ"] + shown["failed"] > 0, shown
    assert {"agreement_rate", "mean_abs_difference", "mean_latency_seconds"} <= shown.keys(), shown
    compared = [line for line in run_ok("show", "--url", url, MODEL).splitlines() if "shadow compared:" in line]
    assert len(compared) == 1 and " agree (" in compared[0] and "mean latency" in compared[0], compared

    # --json is the server's answer as is; a second shadow replaces the first.
    moved = json.loads(run_ok("shadow", "--url", url, MODEL, "1", "--percent=100", "--json"))
    assert moved == {"model": MODEL, "version": 1, "percent": 100, "previous": 1}, moved

    out = run_ok("shadow", "--url", url, MODEL, "--off")
    assert out == f"{MODEL}: shadow off (previously 1)\n", out
    details = json.loads(run_ok("show", "--url", url, MODEL, "--json"))
    assert details["shadow"] is None, details
    assert "shadow:" not in run_ok("show", "--url", url, MODEL)
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert history[-1]["action"] == "shadow" and history[-1]["to"] is None, history


def test_shadow_off_names_the_version_it_stops(registry_server: BerthServer) -> None:
    url = registry_server.base_url
    run_ok("promote", "--url", url, MODEL, "2")
    run_ok("shadow", "--url", url, MODEL, "1", "--percent", "20")
    # Another version than the shadow: refused, the shadow stays.
    wrong = run_cli("shadow", "--url", url, MODEL, "2", "--off")
    assert wrong.returncode == 1 and "version 2 of model" in wrong.stderr and "version 1 is" in wrong.stderr
    assert server_json(registry_server, f"{REGISTRY}/{MODEL}")["shadow"]["version"] == 1
    out = run_ok("shadow", "--url", url, MODEL, "1", "--off", "--reason", "seen enough")
    assert out == f"{MODEL}: shadow off (previously 1)\n", out
    assert server_json(registry_server, f"{REGISTRY}/{MODEL}")["shadow"] is None
    history = json.loads(run_ok("history", "--url", url, MODEL, "--json"))["history"]
    assert history[-1]["action"] == "shadow" and history[-1]["reason"].endswith("seen enough"), history
    none = run_cli("shadow", "--url", url, MODEL, "1", "--off")
    assert none.returncode == 1 and "it has none" in none.stderr, none.stderr


def test_list_show_and_history_with_and_without_name(
    versions: dict[int, TrainedModel], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    write_repository(root, versions)
    second = versions[1]
    export_model(second, root, version=1, config=model_config(second, name="other"))
    with BerthServer.start(berth_binary(), root, tmp_path / "berth.log", grpc_port=-1) as server:
        url = server.base_url
        run_ok("promote", "--url", url, MODEL, "2")
        # list NAME: that model's row only.
        listed = json.loads(run_ok("list", "--url", url, MODEL, "--json"))["models"]
        assert [m["name"] for m in listed] == [MODEL], listed
        assert "other" not in run_ok("list", "--url", url, MODEL)
        assert {m["name"] for m in json.loads(run_ok("list", "--url", url, "--json"))["models"]} == {MODEL, "other"}
        missing = run_cli("list", "--url", url, "nosuch")
        assert missing.returncode == 1 and "'nosuch' is not in the registry" in missing.stderr
        # show and history without NAME: every model's.
        shown = json.loads(run_ok("show", "--url", url, "--json"))["models"]
        assert sorted(m["name"] for m in shown) == sorted([MODEL, "other"]), shown
        text = run_ok("show", "--url", url)
        assert f"model:            {MODEL}\n" in text and "model:            other\n" in text, text
        histories = json.loads(run_ok("history", "--url", url, "--json"))["models"]
        assert sorted(h["model"] for h in histories) == sorted([MODEL, "other"]), histories
        moves = [r for h in histories if h["model"] == MODEL for r in h["history"] if r["action"] == "promote"]
        assert [r["to"] for r in moves] == [2], moves
        text = run_ok("history", "--url", url)
        assert f"model {MODEL}:\n" in text and "model other:\n" in text and "promote" in text, text


def test_a_refused_shadow_exits_1_and_changes_nothing(registry_server: BerthServer) -> None:
    url = registry_server.base_url
    for args in ((MODEL, "99", "--percent", "20"), ("no_such_model", "1", "--percent", "20")):
        result = run_cli("shadow", "--url", url, *args)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert result.stderr.startswith("berth: ") and "(HTTP 4" in result.stderr, result.stderr
    assert server_json(registry_server, f"{REGISTRY}/{MODEL}")["shadow"] is None


def test_refused_connection_names_the_url() -> None:
    url = f"http://{HOST}:{free_port()}"
    result = run_cli("list", "--url", url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert url in result.stderr and "connection refused" in result.stderr, result.stderr


def test_a_server_that_never_answers_times_out() -> None:
    # Connections complete in the kernel's backlog; nothing ever answers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((HOST, 0))
        silent.listen(8)
        url = f"http://{HOST}:{silent.getsockname()[1]}"
        result = run_cli("list", "--url", url, "--timeout-secs", "1")
    assert result.returncode == 1
    assert f"no answer from {url} within 1 s" in result.stderr, result.stderr


def answer_once(answer: bytes) -> tuple[str, threading.Thread]:
    """A one-connection peer that reads the request head, sends `answer` and closes."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.settimeout(CLI_TIMEOUT_S)

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                connection.sendall(answer)

    thread = threading.Thread(target=serve)
    thread.start()
    return f"http://{HOST}:{listener.getsockname()[1]}", thread


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection without answering"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "is not HTTP/1.1 (bad version)"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            "in the middle of its answer",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json", "not valid JSON"),
        (
            b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"models":3}',
            'no "models" list',
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nupstream \x1b!",
            "HTTP 502: upstream ?!",
        ),
    ],
)
def test_a_peer_that_is_not_a_berth_server_is_a_clear_failure(answer: bytes, message: str) -> None:
    url, peer = answer_once(answer)
    result = run_cli("list", "--url", url)
    peer.join()
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr, result.stderr
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:8000", "unsupported scheme 'ftp'"),
        ("127.0.0.1:8000", "expected http://HOST[:PORT]"),
        ("http://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
    ],
)
def test_unusable_url_exits_1_with_a_clear_message(url: str, message: str) -> None:
    result = run_cli("list", "--url", url)
    assert result.returncode == 1
    assert message in result.stderr and url in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs a command"),
        (
            ("pull", "--url", "http://127.0.0.1:8000", "iris"),
            "unknown models command 'pull'",
        ),
        (("push", "--url", "http://127.0.0.1:8000", "model.onnx"), "needs --name NAME"),
        (("push", "--url", "http://127.0.0.1:8000", "--name", "iris"), "takes FILE"),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=100"),
            "at least two VERSION=WEIGHT pairs",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=90", "4"),
            "expected VERSION=WEIGHT",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=90", "4=0"),
            "the weight must be",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=90", "4=-10"),
            "the weight must be",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=90", "4=1.5"),
            "the weight must be",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "x=90", "4=10"),
            "the version must be",
        ),
        (
            ("split", "--url", "http://127.0.0.1:8000", "iris", "3=90", "3=10"),
            "version 3 is given twice",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "4"),
            "needs --percent P (1 to 100), or --off",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "4", "--percent", "0"),
            "from 1 to 100",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "4", "--percent", "101"),
            "from 1 to 100",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "4", "5", "--off"),
            "--off takes NAME [VERSION]",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "--off", "--percent", "20"),
            "--off and --percent exclude each other",
        ),
        (
            ("shadow", "--url", "http://127.0.0.1:8000", "iris", "--percent", "20"),
            "takes NAME and VERSION",
        ),
        (("list",), "needs --url URL"),
        (("show", "--url", "http://127.0.0.1:8000", "a", "b"), "takes at most NAME"),
        (("list", "--url", "http://127.0.0.1:8000", "a", "b"), "takes at most NAME"),
        (
            ("promote", "--url", "http://127.0.0.1:8000", "iris"),
            "takes NAME and VERSION",
        ),
        (
            ("promote", "--url", "http://127.0.0.1:8000", "iris", "latest"),
            "positive whole number",
        ),
        (
            ("list", "--url", "http://127.0.0.1:8000", "--alias", "staging"),
            "applies to promote, rollback and split",
        ),
        (("list", "--url", "http://127.0.0.1:8000", "--bogus"), "unknown flag --bogus"),
        (
            ("list", "--url", "http://127.0.0.1:8000", "--timeout-secs", "0"),
            "--timeout-secs",
        ),
    ],
)
def test_bad_usage_exits_2_with_the_usage_text(args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr, result.stderr
    assert "Usage:\n  berth models list" in result.stderr, result.stderr


def test_help_exits_0_on_stdout() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "berth models promote  --url URL NAME VERSION" in result.stdout
    assert "berth models shadow   --url URL NAME VERSION --percent 1..100" in result.stdout
    top = subprocess.run([str(berth_binary()), "--help"], capture_output=True, text=True, check=False)
    assert "berth models" in top.stdout


def test_the_top_level_usage_names_every_models_command() -> None:
    result = subprocess.run(
        [str(berth_binary()), "--help"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, result.stderr
    usage = result.stdout[result.stdout.index("berth models ") :].split("--url URL", 1)[0]
    for verb in ("list", "show", "history", "promote", "rollback", "push", "split", "shadow", "archive",
                 "restore", "delete", "baseline"):
        assert verb in usage, (verb, usage)
