"""Trusted artifacts (issue #10 item 5): with --require-signed-models a
version loads only if the model-signing package's signature (model.sig, an
elliptic-curve key's sigstore bundle) by a trusted signer matches every file
of it. Berth verifies in C++; these tests sign with the real package."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from berth_server import BerthServer, berth_binary
from models import ModelRepository, model_config
from test_registry import MODEL, iris, push
from train_models import export_model
from v2 import V2Client, assert_error


def keypair(directory: Path, name: str) -> tuple[Path, Path]:
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(private)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(private), "-pubout", "-out", str(public)], check=True, capture_output=True)
    return private, public


def sign(version_dir: Path, private_key: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model_signing", "sign", "key", "--private_key", str(private_key),
         "--signature", str(version_dir / "model.sig"), str(version_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {name: keypair(tmp_path, name) for name in ("trusted", "other")}


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> Path:
    """Versions 1 and 2, both signed by the trusted key, served all at once."""
    root = tmp_path / "repo"
    for version in (1, 2):
        model = iris(model_repository, version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL, version_policy={"all": True}))
        sign(root / MODEL / str(version), keys["trusted"][0])
    return root


def start(repo: Path, tmp_path: Path, *signers: Path) -> BerthServer:
    args = ["--require-signed-models", "--trusted-signers", *map(str, signers)]
    return BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args)


def states(server: BerthServer) -> dict[str, tuple[str, str]]:
    with V2Client(server.base_url) as client:
        index = client.post("/v2/repository/index", {}).json()
    return {entry["version"]: (entry["state"], entry["reason"]) for entry in index if entry["name"] == MODEL}


def test_signed_versions_load(repo: Path, tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    with start(repo, tmp_path, keys["trusted"][1]) as server:
        assert states(server) == {"1": ("READY", ""), "2": ("READY", "")}


def tamper_file(version_dir: Path, repo: Path) -> None:
    """Another valid model in place of the signed one."""
    shutil.copy(repo / MODEL / "1" / "model.onnx", version_dir / "model.onnx")


def add_file(version_dir: Path, repo: Path) -> None:
    (version_dir / "extra.bin").write_bytes(b"not signed")


def remove_signature(version_dir: Path, repo: Path) -> None:
    (version_dir / "model.sig").unlink()


def edit_manifest(version_dir: Path, repo: Path) -> None:
    """The statement rewritten to bless another file, the signature kept."""
    bundle = json.loads((version_dir / "model.sig").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (version_dir / "model.sig").write_text(json.dumps(bundle))


def garbage_signature(version_dir: Path, repo: Path) -> None:
    (version_dir / "model.sig").write_text("{not json")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (tamper_file, "file 'model.onnx' does not match its signed digest"),
        (add_file, "file 'extra.bin' is not covered by the signature"),
        (remove_signature, "the version is unsigned (no model.sig)"),
        (edit_manifest, "no trusted signer's key verifies the signature"),
        (garbage_signature, "model.sig is not a sigstore bundle"),
    ],
)
def test_a_tampered_or_unsigned_version_stays_unavailable_and_the_other_serves(
    repo: Path, tmp_path: Path, keys: dict[str, tuple[Path, Path]], damage: object, reason: str
) -> None:
    damage(repo / MODEL / "2", repo)  # type: ignore[operator]
    with start(repo, tmp_path, keys["trusted"][1]) as server:
        found = states(server)
        assert found["1"] == ("READY", "")
        assert found["2"][0] == "UNAVAILABLE" and reason in found["2"][1], found
        with V2Client(server.base_url) as client:
            assert client.get(f"/v2/models/{MODEL}/versions/1/ready").status_code == 200


def test_another_signers_key_is_refused_unless_trusted(
    repo: Path, tmp_path: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    sign(repo / MODEL / "2", keys["other"][0])
    with start(repo, tmp_path, keys["trusted"][1]) as server:
        assert "no trusted signer's key verifies" in states(server)["2"][1]
    with start(repo, tmp_path, keys["trusted"][1], keys["other"][1]) as server:
        assert states(server) == {"1": ("READY", ""), "2": ("READY", "")}


def test_a_tampered_reload_leaves_the_serving_version_alone(
    repo: Path, tmp_path: Path, keys: dict[str, tuple[Path, Path]], model_repository: ModelRepository
) -> None:
    (repo / MODEL / "2").rename(tmp_path / "held")
    with start(repo, tmp_path, keys["trusted"][1]) as server, V2Client(server.base_url) as client:
        (tmp_path / "held").rename(repo / MODEL / "2")
        tamper_file(repo / MODEL / "2", repo)
        client.post(f"/v2/repository/models/{MODEL}/load", {})
        assert "does not match its signed digest" in states(server)["2"][1]
        model = iris(model_repository, 1)
        answer = client.infer(MODEL, model.infer_request(model.dataset.X_test[:2]))
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        # A push carries no signature, so it cannot be trusted: refused, nothing stored.
        before = sorted(p.name for p in (repo / MODEL).iterdir())
        artifact = (repo / MODEL / "1" / "model.onnx").read_bytes()
        assert "unsigned" in assert_error(push(client, MODEL, artifact), 400)
        assert sorted(p.name for p in (repo / MODEL).iterdir()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--require-signed-models"], "--require-signed-models needs --trusted-signers"),
        (["--require-signed-models", "--trusted-signers"], "--trusted-signers needs at least one PEM file"),
        (["--trusted-signers", "KEY"], "--trusted-signers is used only with --require-signed-models"),
        (["--require-signed-models", "--trusted-signers", "NOTPEM"], "is not a PEM elliptic-curve public key"),
        (["--require-signed-models", "--trusted-signers", "MISSING"], "trusted signer"),
    ],
)
def test_bad_signer_flags_stop_the_server_with_a_clear_message(
    repo: Path, tmp_path: Path, keys: dict[str, tuple[Path, Path]], args: list[str], message: str
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    replace = {"KEY": str(keys["trusted"][1]), "NOTPEM": str(not_pem), "MISSING": str(tmp_path / "none.pem")}
    command = [str(berth_binary()), "serve", "--model-repository", str(repo), "--http-port", "0", "--grpc-port", "-1"]
    done = subprocess.run(
        [*command, *(replace.get(a, a) for a in args)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
