"""The OpenAPI document (GET /openapi.json) describes every REST route, and the server keeps to it.

schemathesis generates requests from the document (its examples, boundary
values, random valid and invalid data) and sends them to a server of its own
(it loads and unloads models); no response may be a 5xx or disagree with the
document in status, content type, headers or body schema. Platform routes are
checked against a server started with that platform.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from berth_server import REPO_ROOT, BerthServer, berth_binary
from models import ModelRepository
from v2 import V2Client

SPEC_SOURCE: Final = REPO_ROOT / "src" / "server" / "http" / "openapi.json"
HTTP_SOURCES: Final = REPO_ROOT / "src" / "server" / "http"
PLATFORMS: Final = ("sagemaker", "vertex", "azure")
CHECKS: Final = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES: Final = 25  # per operation and phase; the whole module stays well under a minute
SEED: Final = 1  # reproducible runs; change it locally to explore further
ST_TIMEOUT_S: Final = 120
# Vertex AI's routes come from AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE; the
# document gives their defaults, which the code does not spell as literals.
VERTEX_DEFAULT_ROUTES: Final = {("GET", "/health"), ("POST", "/predict")}
# The model load/unload, archive and delete may take out of service while
# schemathesis runs: any other model would leave the rest of the run with 404s.
SACRIFICIAL_MODEL: Final = "iris_latest_version"


def spec() -> dict[str, object]:
    document: dict[str, object] = json.loads(SPEC_SOURCE.read_text())
    return document


def documented_routes() -> set[tuple[str, str]]:
    paths = spec()["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def registered_routes() -> set[tuple[str, str]]:
    """(method, pattern) of every literal router->Add(...) in the HTTP front end."""
    pattern = re.compile(r'router->Add\(\s*"([A-Z]+)",\s*"([^"]*)"')
    return {match.groups() for source in HTTP_SOURCES.glob("*.cc") for match in pattern.finditer(source.read_text())}


def test_served_document_is_the_source(client: V2Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == spec()


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    registered = registered_routes()
    documented = documented_routes()
    assert ("POST", "/v2/models/{model}/infer") in registered  # the scan itself works
    assert registered - documented == set(), "routes missing from openapi.json"
    assert documented - registered - VERTEX_DEFAULT_ROUTES == set(), "documented routes the server lacks"


def test_platform_routes_are_marked() -> None:
    paths = spec()["paths"]
    assert isinstance(paths, dict)
    for path, operations in paths.items():
        for method, operation in operations.items():
            tags = set(operation["tags"])
            platform = operation.get("x-berth-platform")
            if tags & set(PLATFORMS):
                assert platform in tags and "Platform-only" in operation["description"], (method, path)
            else:
                assert platform is None, (method, path)


def schemathesis_config(model_repository: ModelRepository) -> str:
    """Path parameters mostly from the served models (else every request is a 404), sometimes generated."""
    models = [name for name in model_repository.versions if name != SACRIFICIAL_MODEL]
    return f"""
[dictionaries.models]
values = {json.dumps([*models, "no_such_model"])}

[dictionaries.sacrificial]
values = {json.dumps([SACRIFICIAL_MODEL, "no_such_model"])}

[dictionaries.versions]
values = ["1", "2", "7"]

[parameters]
"path.model" = {{ dictionary = "models", probability = 0.8 }}
"path.version" = {{ dictionary = "versions", probability = 0.8 }}

[[operations]]
include-operation-id-regex = "^(v2Repository(Load|Unload)|registry(Archive|Restore|Delete)Version)$"
parameters = {{ "path.model" = {{ dictionary = "sacrificial", probability = 0.8 }} }}
"""


def schemathesis() -> Path:
    executable = Path(sys.executable).with_name("st")
    assert executable.is_file(), f"no schemathesis at {executable}: pip install -r python/requirements.txt"
    return executable


@pytest.mark.parametrize("platform", [None, *PLATFORMS], ids=["no-platform", *PLATFORMS])
def test_schemathesis_finds_no_violation(
    model_repository: ModelRepository, tmp_path: Path, platform: str | None
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(model_repository))
    extra_args = [] if platform is None else ["--platform", platform, "--default-model", "iris_logreg"]
    # A copy: archive and delete change the repository for good (and the
    # session's other tests share model_repository).
    repo = tmp_path / "repo"
    shutil.copytree(model_repository.root, repo, ignore=shutil.ignore_patterns(".berth"))
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", grpc_port=-1, extra_args=extra_args) as server:
        if platform is None:
            selection = [arg for name in PLATFORMS for arg in ("--exclude-tag", name)]
        else:
            selection = ["--include-tag", platform]
        command = [
            str(schemathesis()), "--config-file", str(config), "--no-color", "run",
            f"{server.base_url}/openapi.json", "--url", server.base_url,
            "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", str(SEED),
            "--request-timeout", "10",
            *selection,
        ]  # fmt: skip
        # cwd: schemathesis keeps a cache directory in its working directory.
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=ST_TIMEOUT_S, check=False, cwd=tmp_path
        )
        report = f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, report
        assert re.search(r"Test cases:\s+\d+ generated, \d+ passed", result.stdout), report
