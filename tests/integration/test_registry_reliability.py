"""Registry reliability (issue #7): the registry stays consistent when the
server is killed in the middle of promotions, no request fails while aliases
move under load, promote/rollback cycles do not leak memory, and two
promotions at once are serialised.

Real binary, real SQLite store (and, for the load and kill -9 tests, a real
PostgreSQL one too); every random choice is seeded, so a failure replays.
"""

from __future__ import annotations

import os

import random
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Final

import pytest
import requests

from berth_server import BerthServer, berth_binary
from models import ALL_VERSIONS_MODEL, ModelRepository
from train_models import TrainedModel, export_model, model_config
from test_registry_postgres import Postgres, postgres  # noqa: F401 (the private PostgreSQL fixture)
from v2 import V2Client

MODEL: Final = "churn"
VERSIONS: Final = (1, 2, 3)
# Short: a mover's request cut off by SIGKILL must not hold its thread long.
MOVE_TIMEOUT_S: Final = 5.0
MOVES: Final = frozenset({"promote", "split", "rollback"})
# The floor: aliases move under >= 4 client threads for >= 20 s.
LOAD_S: Final = 20.0


def iris(model_repository: ModelRepository, version: int) -> TrainedModel:
    return model_repository.model(ALL_VERSIONS_MODEL, version)


def write_repo(model_repository: ModelRepository, root: Path) -> Path:
    """Versions 1, 2 and 3 under the default policy {latest: 1}.

    Version 3 is version 1's model again: what tells the versions apart is
    the response's model_version, not the outputs.
    """
    for version in VERSIONS:
        model = iris(model_repository, 1 if version == 3 else version)
        export_model(model, root, version=version, config=model_config(model, name=MODEL))
    return root


@pytest.fixture
def repo(model_repository: ModelRepository, tmp_path: Path) -> Path:
    return write_repo(model_repository, tmp_path / "repo")


def infer_body(model_repository: ModelRepository) -> Any:
    model = iris(model_repository, 1)
    return model.infer_request(model.dataset.X_test[:2])


def post(base_url: str, action: str, body: Any = None, timeout: float = MOVE_TIMEOUT_S) -> requests.Response:
    return requests.post(f"{base_url}/v2/registry/models/{MODEL}/{action}", json=body, timeout=timeout)


def random_move(rng: random.Random, versions: tuple[int, ...] = VERSIONS) -> tuple[str, Any]:
    """A promotion, a split or a rollback of production (sometimes of staging), drawn from `rng`."""
    alias = "production" if rng.random() < 0.8 else "staging"
    kind = rng.choice(("promote", "promote", "split", "rollback"))
    if kind == "promote":
        return kind, {"version": rng.choice(versions), "alias": alias, "reason": "reliability"}
    if kind == "split":
        chosen = rng.sample(versions, rng.randint(2, len(versions)))
        return kind, {"versions": {str(v): rng.randint(1, 99) for v in chosen}, "alias": alias}
    return kind, {"alias": alias}


def mover(
    base_url: str, rng: random.Random, cut_off: threading.Event, acknowledged: list[str], errors: list[str]
) -> None:
    """Moves aliases at random until `cut_off` or until the server is gone."""
    while not cut_off.is_set():
        kind, move = random_move(rng)
        try:
            response = post(base_url, kind, move)
        except requests.RequestException:
            return
        if response.status_code == 200:
            acknowledged.append(kind)
        elif not (kind == "rollback" and response.status_code == 400):
            # A rollback with nothing to go back to is a 400; nothing else may fail.
            errors.append(f"{kind} {move}: {response.status_code} {response.text}")


def alias_moves(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in history if h["action"] in MOVES]


def copy_of_store(repo: Path, into: Path) -> Path:
    """A copy of the store with its WAL, as a crash left them (the -shm index is rebuilt on open).

    Checking the copy leaves the original as the next server finds it: Python's
    closing connection would otherwise checkpoint the WAL away first.
    """
    into.mkdir(parents=True, exist_ok=True)
    store = repo / ".berth" / "registry.db"
    for suffix in ("", "-wal"):
        source = store.with_name(store.name + suffix)
        if source.exists():
            shutil.copyfile(source, into / source.name)
    return into / store.name


def integrity(store: Path) -> str:
    with sqlite3.connect(store) as db:
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        violations = db.execute("PRAGMA foreign_key_check").fetchall()
    db.close()
    return result if not violations else f"{result}; foreign key violations: {violations}"


def assert_consistent(client: V2Client, body: Any) -> None:
    """The registry as a restarted server shows it agrees with itself, with its history and with inference."""
    response = client.get(f"/v2/registry/models/{MODEL}")
    assert response.status_code == 200, response.text
    shown = response.json()
    states = {v["version"]: v["state"] for v in shown["versions"]}
    aliases: dict[str, int] = shown["aliases"]
    splits: dict[str, dict[str, int]] = shown["splits"]
    for alias, version in aliases.items():
        assert states.get(version) == "READY", (alias, version, shown)
    for alias, split in splits.items():
        assert alias in aliases, (alias, shown)
        for label in split:
            assert states.get(int(label)) == "READY", (alias, label, shown)
    history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
    moves = alias_moves(history)
    assert {h["alias"] for h in moves} == set(aliases), (moves, aliases)
    for alias, version in aliases.items():
        last = [h for h in moves if h["alias"] == alias][-1]
        assert last["to"] == version, (alias, last, shown)
        if last["action"] != "rollback":  # a rollback may restore a split, or end one
            assert (last["action"] == "split") == (alias in splits), (alias, last, shown)

    if "production" in splits:
        expected = {int(v) for v in splits["production"]}
    elif "production" in aliases:
        expected = {aliases["production"]}
    else:
        expected = {max(v for v, state in states.items() if state == "READY")}
    assert shown["default_version"] in expected, shown
    for _ in range(10):
        answer = client.infer(MODEL, body)
        assert answer.status_code == 200, answer.text
        assert int(answer.json()["model_version"]) in expected, (answer.json()["model_version"], shown)


def store_args(store: str, request: pytest.FixtureRequest) -> list[str]:
    """The server flags for `store`: SQLite in the repository, or a new
    database on test_registry_postgres.py's private PostgreSQL server."""
    if store == "sqlite":
        return []
    postgres: Postgres = request.getfixturevalue("postgres")
    return ["--registry", postgres.createdb()]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_kill_9_during_promotions_leaves_a_consistent_registry(
    repo: Path, tmp_path: Path, model_repository: ModelRepository, store: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(7)
    body = infer_body(model_repository)
    rounds = 25 if store == "sqlite" else 12
    recorded = 0  # alias moves in the history
    errors: list[str] = []
    args = store_args(store, request)
    server = BerthServer.start(berth_binary(), repo, tmp_path / "round-0.log", extra_args=args)
    try:
        for round_number in range(1, rounds + 1):
            mover_rng = random.Random(rng.getrandbits(32))
            acknowledged: list[str] = []
            cut_off = threading.Event()
            thread = threading.Thread(target=mover, args=(server.base_url, mover_rng, cut_off, acknowledged, errors))
            thread.start()
            time.sleep(rng.uniform(0.02, 0.6))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            cut_off.set()
            thread.join()
            assert errors == [], (round_number, errors)

            if store == "sqlite":
                copy = copy_of_store(repo, tmp_path / f"crashed-{round_number}")
                assert integrity(copy) == "ok", f"round {round_number}"

            server = BerthServer.start(
                berth_binary(), repo, tmp_path / f"round-{round_number}.log", extra_args=args
            )
            with V2Client(server.base_url) as client:
                assert_consistent(client, body)
                history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
            # Every acknowledged move survived the crash; at most the one in
            # flight when the signal came got in besides.
            before, recorded = recorded, len(alias_moves(history))
            assert before + len(acknowledged) <= recorded <= before + len(acknowledged) + 1, (
                round_number,
                before,
                acknowledged,
                recorded,
            )
        assert recorded > rounds, "the movers hardly moved anything: the test tested nothing"
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.log()
    if store == "sqlite":
        assert integrity(repo / ".berth" / "registry.db") == "ok"


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_promotions_under_continuous_load_fail_no_request(
    repo: Path, tmp_path: Path, model_repository: ModelRepository, store: str, request: pytest.FixtureRequest
) -> None:
    body = infer_body(model_repository)
    rng = random.Random(11)
    failures: list[str] = []
    answered: list[set[str]] = []
    stop = threading.Event()
    args = store_args(store, request)
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log", extra_args=args) as server:
        # Version 3 is the latest, and the default without an alias: once
        # production names 1 it must never answer again.
        assert post(server.base_url, "promote", {"version": 1}).status_code == 200
        pointed_at = {1}

        def client_loop() -> None:
            seen: set[str] = set()
            answered.append(seen)
            with V2Client(server.base_url) as client:
                while not stop.is_set():
                    try:
                        response = client.infer(MODEL, body)
                    except requests.RequestException as error:
                        failures.append(repr(error))
                        continue
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                        continue
                    version = response.json()["model_version"]
                    if response.headers.get("Berth-Model-Version") != version:
                        failures.append(f"header {response.headers.get('Berth-Model-Version')} != body {version}")
                    seen.add(version)

        threads = [threading.Thread(target=client_loop) for _ in range(4)]
        for thread in threads:
            thread.start()
        moves = 0
        try:
            deadline = time.monotonic() + LOAD_S
            while time.monotonic() < deadline:
                kind, move = random_move(rng, versions=(1, 2))
                move["alias"] = "production"
                response = post(server.base_url, kind, move)
                assert response.status_code == 200 or (kind == "rollback" and response.status_code == 400), (
                    response.text
                )
                if response.status_code == 200:
                    moves += 1
                    pointed_at.add(response.json()["version"])
                    pointed_at.update(int(v) for v in move.get("versions", {}))
                time.sleep(rng.uniform(0.0, 0.1))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == [], failures[:10]
    served = {int(v) for seen in answered for v in seen}
    assert served, "no request was answered"
    assert served <= pointed_at, (served, pointed_at)
    assert moves >= 20, moves
    assert pointed_at == {1, 2}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """`field` of /proc/PID/status in KiB: VmRSS, or RssAnon (the heap without mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.skipif(
    "ASAN_OPTIONS" in os.environ,
    reason="AddressSanitizer's quarantine holds freed memory, so resident size says nothing here",
)
def test_memory_across_200_promote_rollback_cycles(
    repo: Path, tmp_path: Path, model_repository: ModelRepository
) -> None:
    body = infer_body(model_repository)
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        assert post(server.base_url, "promote", {"version": 1}).status_code == 200

        def cycle() -> None:
            promoted = post(server.base_url, "promote", {"version": 2})
            assert promoted.status_code == 200, promoted.text
            assert client.infer(MODEL, body).json()["model_version"] == "2"
            rolled_back = post(server.base_url, "rollback")
            assert rolled_back.status_code == 200, rolled_back.text
            assert rolled_back.json()["version"] == 1
            assert client.infer(MODEL, body).json()["model_version"] == "1"

        cycle()
        after_1 = rss_kib(server.process.pid)
        anon_1 = rss_kib(server.process.pid, "RssAnon")
        for _ in range(199):
            cycle()
        after_200 = rss_kib(server.process.pid)
        anon_200 = rss_kib(server.process.pid, "RssAnon")
        history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
    growth = (after_200 - after_1) / after_1 * 100
    print(
        f"\nregistry promote/rollback cycles: VmRSS after the first cycle {after_1} KiB, "
        f"after 200 cycles {after_200} KiB, growth {growth:+.1f}%; "
        f"RssAnon {anon_1} KiB -> {anon_200} KiB"
    )
    assert len(alias_moves(history)) == 1 + 2 * 200
    assert growth <= 10.0, (after_1, after_200)


def test_two_promotions_at_once_are_serialised(repo: Path, tmp_path: Path, model_repository: ModelRepository) -> None:
    body = infer_body(model_repository)
    pairs = [(1, 2), (2, 3), (3, 1), (1, 3)]
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        for attempt in range(20):
            versions = pairs[attempt % len(pairs)]
            start = threading.Barrier(len(versions))
            answers: dict[int, requests.Response] = {}

            def promote(version: int, start: threading.Barrier = start, answers: dict[int, Any] = answers) -> None:
                start.wait()
                answers[version] = post(server.base_url, "promote", {"version": version, "reason": f"race {version}"})

            threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            succeeded = {v: r.json() for v, r in answers.items() if r.status_code == 200}
            for version, response in answers.items():
                if response.status_code != 200:
                    assert 400 <= response.status_code < 500, (version, response.status_code, response.text)
                    assert response.json()["error"], response.text
            assert succeeded, {v: r.text for v, r in answers.items()}

            shown = client.get(f"/v2/registry/models/{MODEL}").json()
            history = client.get(f"/v2/registry/models/{MODEL}/history").json()["history"]
            last = alias_moves(history)[-1]
            assert shown["aliases"]["production"] == last["to"], (attempt, shown, last)
            assert last["to"] in succeeded, (attempt, last, succeeded)
            if len(succeeded) == 2:
                # One went first: the second's `previous` is the first's version.
                first, second = alias_moves(history)[-2:]
                assert (first["to"], second["to"]) in (versions, versions[::-1]), history[-2:]
                assert succeeded[second["to"]]["previous"] == first["to"], (succeeded, history[-2:])
            answer = client.infer(MODEL, body)
            assert answer.status_code == 200 and answer.json()["model_version"] == str(last["to"]), answer.text


def test_two_rollbacks_at_once_go_back_two_steps(repo: Path, tmp_path: Path) -> None:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        for attempt in range(20):
            for version in (1, 2, 3):
                assert post(server.base_url, "promote", {"version": version}).status_code == 200
            start = threading.Barrier(2)
            answers: list[requests.Response] = []

            def rollback(start: threading.Barrier = start, answers: list[requests.Response] = answers) -> None:
                start.wait()
                answers.append(post(server.base_url, "rollback", {"reason": "race"}))

            threads = [threading.Thread(target=rollback) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # Promotions push and rollbacks pop: after 1, 2, 3 two rollbacks
            # reach 3 -> 2 and 2 -> 1, whichever comes first.
            moved = sorted((r.json()["previous"], r.json()["version"]) for r in answers if r.status_code == 200)
            assert moved == [(2, 1), (3, 2)], (attempt, [r.text for r in answers])
            shown = client.get(f"/v2/registry/models/{MODEL}").json()
            assert shown["aliases"]["production"] == 1, (attempt, shown)


def test_a_rollback_racing_a_promotion_undoes_the_move_recorded_last(repo: Path, tmp_path: Path) -> None:
    with BerthServer.start(berth_binary(), repo, tmp_path / "berth.log") as server, V2Client(server.base_url) as client:
        for attempt in range(20):
            for version in (1, 2):
                assert post(server.base_url, "promote", {"version": version}).status_code == 200
            start = threading.Barrier(2)
            answers: dict[str, requests.Response] = {}

            def move(kind: str, start: threading.Barrier = start, answers: dict[str, Any] = answers) -> None:
                start.wait()
                answers[kind] = post(server.base_url, kind, {"version": 3} if kind == "promote" else None)

            threads = [threading.Thread(target=move, args=(kind,)) for kind in ("promote", "rollback")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert all(r.status_code == 200 for r in answers.values()), {k: r.text for k, r in answers.items()}
            promoted, rolled_back = answers["promote"].json(), answers["rollback"].json()
            production = client.get(f"/v2/registry/models/{MODEL}").json()["aliases"]["production"]
            # Either order is fine; a rollback of 3 that skips 2 is not.
            promotion_first = ((2, 3), (3, 2), 2)
            rollback_first = ((1, 3), (2, 1), 3)
            outcome = (
                (promoted["previous"], promoted["version"]),
                (rolled_back["previous"], rolled_back["version"]),
                production,
            )
            assert outcome in (promotion_first, rollback_first), (attempt, outcome)
