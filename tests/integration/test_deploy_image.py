"""The container image (issue #11, item 1): deploy/Dockerfile and `make image`.

The Dockerfile is checked statically here on every run (no Docker engine or
hadolint on this machine): multi-stage, a non-root user, a health check on
the v2 health routes, SIGTERM, `berth serve`, ports 8000/8001, /models, only
runtime libraries in the last stage, and the same configuration as
deploy/image/Containerfile, which `make image` builds with buildah from a
root file system mmdebstrap made of Debian 12's packages.

The image tests read what `make image` left in build-image/ (or
$BERTH_IMAGE_DIR); `make image` runs them after building, since building takes
minutes and is not part of `make test`. The image is run with podman where
the kernel lets crun start a container; where it does not, the run test says
why and the image's root file system is run instead: berth from it in a
chroot, as the image's user, serving a model.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Final

import pytest
import requests

from berth_server import HOST, REPO_ROOT, free_port
from models import IRIS_MODEL, ModelRepository

DOCKERFILE: Final = REPO_ROOT / "deploy" / "Dockerfile"
CONTAINERFILE: Final = REPO_ROOT / "deploy" / "image" / "Containerfile"
RUNTIME_PACKAGES: Final = REPO_ROOT / "deploy" / "image" / "runtime-packages.txt"
IMAGE_DIR: Final = Path(os.environ.get("BERTH_IMAGE_DIR", REPO_ROOT / "build-image"))
CONFIG_MARK: Final = "# --- the runtime image's configuration"
# Instructions that configure the image rather than fill it.
CONFIG_INSTRUCTIONS: Final = frozenset(
    {"ENV", "WORKDIR", "USER", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL"}
)
COMPILERS: Final = ("gcc", "g++", "cc", "c++", "clang", "cmake", "make", "ld")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), " ".join(rest.split())))
    return result


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            result.append([])
        assert result, f"{path}: an instruction before the first FROM"
        result[-1].append((keyword, rest))
    return result


def config_block(path: Path) -> list[tuple[str, str]]:
    """The instructions after the configuration mark: identical in both files."""
    text = path.read_text()
    assert CONFIG_MARK in text, f"{path} lost its configuration mark"
    tail = path.with_suffix(".tail")
    try:
        tail.write_text(text[text.index(CONFIG_MARK) :])
        return instructions(tail)
    finally:
        tail.unlink()


def runtime_packages() -> list[str]:
    lines = RUNTIME_PACKAGES.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_is_multi_stage_with_a_runtime_stage_that_serves() -> None:
    all_stages = stages(DOCKERFILE)
    assert len(all_stages) >= 2, "multi-stage: a builder and a runtime stage"
    runtime = all_stages[-1]
    assert runtime[0][1].startswith("debian:12"), runtime[0]
    config = dict((k, v) for k, v in runtime if k in CONFIG_INSTRUCTIONS)
    user = config["USER"].split(":")[0]
    assert user not in ("", "0", "root"), "the image runs as a non-root user"
    assert json.loads(config["ENTRYPOINT"])[-2:] == ["/opt/berth/bin/berth", "serve"]
    assert set(config["EXPOSE"].split()) == {"8000", "8001"}
    assert config["STOPSIGNAL"] == "SIGTERM"
    assert re.search(r"/v2/health/(ready|live)", config["HEALTHCHECK"]), config["HEALTHCHECK"]
    assert "/models" in json.loads(config["CMD"])
    assert ("COPY", "--from=builder /out/ /") in runtime, "the runtime stage takes only the builder's output"


def test_runtime_stage_installs_the_runtime_packages_and_no_compiler() -> None:
    runtime = stages(DOCKERFILE)[-1]
    runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    installed = set(runs.split("--no-install-recommends", 1)[1].split("&&", 1)[0].split())
    assert installed == set(runtime_packages()), "deploy/image/runtime-packages.txt and the Dockerfile differ"
    for word in shlex.split(runs):
        assert word not in ("build-essential", "gcc", "g++", "cmake", "clang") and not word.endswith("-dev"), word


def test_make_image_configures_the_image_as_the_dockerfile_does() -> None:
    assert config_block(DOCKERFILE) == config_block(CONTAINERFILE)
    assert stages(CONTAINERFILE)[0][0] == ("FROM", "scratch")


@pytest.fixture(scope="module")
def rootfs() -> Path:
    root = IMAGE_DIR / "rootfs"
    if not (root / "opt" / "berth" / "bin" / "berth").is_file():
        pytest.skip(f"no image in {IMAGE_DIR}: `make image` builds it (minutes) and runs these tests")
    return root


def test_image_filesystem_has_berth_a_non_root_user_and_no_compiler(rootfs: Path) -> None:
    passwd = {line.split(":")[0]: line.split(":") for line in (rootfs / "etc" / "passwd").read_text().splitlines()}
    assert passwd["berth"][2:4] == ["10001", "10001"]
    assert passwd["berth"][6] == "/usr/sbin/nologin"
    models = (rootfs / "models").stat()
    assert (models.st_uid, models.st_gid) == (10001, 10001)
    for tool in COMPILERS:
        for directory in ("usr/bin", "usr/local/bin", "bin"):
            assert not (rootfs / directory / tool).exists(), f"{directory}/{tool} in the runtime image"
    dpkg_status = (rootfs / "var" / "lib" / "dpkg" / "status").read_text()
    installed = set(re.findall(r"^Package: (\S+)$", dpkg_status, re.M))
    assert set(runtime_packages()) <= installed
    # gcc-12-base is libgcc's copyright files, not a compiler.
    toolchain = re.compile(r"^(gcc|g\+\+|cpp|clang|binutils|make|cmake)(-[0-9.]+)?$|-dev$")
    assert not {p for p in installed if toolchain.search(p)}
    version = subprocess.run(
        ["chroot", "--userspec=10001:10001", str(rootfs), "/opt/berth/bin/berth", "--version"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("berth ")
    size = int((IMAGE_DIR / "size").read_text())
    print(f"image {(IMAGE_DIR / 'tag').read_text().strip()}: {size / 1e6:.0f} MB")


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"berth exited with {process.returncode}:\n{log.read_text()}"
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not ready in 30 s:\n{log.read_text()}")


def infer_iris(url: str) -> None:
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    answer = requests.post(f"{url}/v2/models/{IRIS_MODEL}/infer", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    assert {o["name"] for o in answer.json()["outputs"]} >= {"label"}


def test_image_runs_under_podman(rootfs: Path, model_repository: ModelRepository, tmp_path: Path) -> None:
    """The image itself, as a container: serves the model mounted at /models."""
    tag = (IMAGE_DIR / "tag").read_text().strip()
    models = tmp_path / "models"
    shutil.copytree(model_repository.root / IRIS_MODEL, models / IRIS_MODEL)
    os.chmod(tmp_path, 0o755)
    port = free_port()
    name = f"berth-test-{port}"
    # crun refuses limits above the caller's hard limit: pass small ones.
    command = [
        "podman", "run", "--rm", "--name", name, "--network", "host", "--no-healthcheck",
        "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096",
        "-v", f"{models}:/models:ro", "--read-only", "--tmpfs", "/tmp", tag,
        "--model-repository", "/models", "--host", HOST, "--http-port", str(port), "--grpc-port", "-1",
        "--registry", "none",
    ]  # fmt: skip
    log = tmp_path / "podman.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"http://{HOST}:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        if process.poll() is not None:
            reason = log.read_text().strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"this kernel does not let podman run the image: {reason[0]}")
        infer_iris(f"http://{HOST}:{port}")
    finally:
        subprocess.run(["podman", "stop", "-t", "10", name], capture_output=True, check=False)
        process.wait(timeout=30)


def test_image_filesystem_serves_a_model_in_a_chroot(rootfs: Path, model_repository: ModelRepository) -> None:
    """Where podman cannot run it, the image's own files still serve: its
    loader and libraries, as its user, from /models."""
    target = rootfs / "models" / IRIS_MODEL
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model_repository.root / IRIS_MODEL, target)
    port = free_port()
    log = rootfs.parent / "chroot-serve.log"
    command = [
        "chroot", "--userspec=10001:10001", str(rootfs), "/opt/berth/bin/berth", "serve",
        "--model-repository", "/models", "--host", HOST, "--http-port", str(port), "--grpc-port", "-1",
        "--registry", "none",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://{HOST}:{port}", process, log)
        infer_iris(f"http://{HOST}:{port}")
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
        shutil.rmtree(target, ignore_errors=True)
