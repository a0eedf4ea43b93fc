"""The issues' floors measured in interleaved rounds, after the main run.

A floor is a ratio between two rows (TLS with keys over plaintext, an alias
over a version number). In the main run each row is one measurement, taken
minutes apart from the other: on a shared machine a busy spell in one of
them moves the ratio by 20% or more. Here both servers run at once (one
loaded at a time, the other idle on the same core), and the two rows are
loaded in turn for several short rounds, in the order AB BA AB BA, so drift
and disturbances fall on both sides. The floor's verdict is the median of
the rounds' ratios; the spread is reported beside it. Where the load
generator keeps its core busy (ghz over TLS), throughput measures the
client, so the verdict compares the server's CPU time per request instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack

from loadgen import LoadError, LoadResult
from report import SATURATED_CLIENT, IssueFloor, PairedRatio
from servers import Peer, Skipped, Target
from tools import log

Load = Callable[[int, float], LoadResult]


def _peer_of(row: str, peers: Sequence[Peer]) -> Peer | None:
    return next((peer for peer in peers if row in peer.target_names), None)


def _groups(floors: Sequence[IssueFloor], peers: Sequence[Peer], selected: set[str]):
    """The floors, grouped by the peers they need (each group starts its peers once); unmeasurable ones apart."""
    groups: dict[tuple[str, ...], list[IssueFloor]] = {}
    skipped: list[PairedRatio] = []
    for floor in floors:
        needed = [_peer_of(floor.row, peers), _peer_of(floor.against, peers)]
        if any(peer is None or peer.key not in selected for peer in needed):
            skipped.append(PairedRatio(floor.row, floor.against, floor.c, problem="a row's server was not selected"))
            continue
        keys = tuple(sorted({peer.key for peer in needed if peer is not None}))
        groups.setdefault(keys, []).append(floor)
    return groups, skipped


def measure_pairs(
    floors: Sequence[IssueFloor],
    peers: Sequence[Peer],
    selected: set[str],
    start: Callable[[Peer, ExitStack], list[Target | Skipped]],
    prepare: Callable[[Target], Load | str],
    rounds: int,
    duration_s: float,
    warmup_s: float,
) -> list[PairedRatio]:
    """Each floor's ratio over `rounds` interleaved rounds of `duration_s` per row.

    `start` starts one peer's servers into the stack; `prepare` checks a
    target's answer and gives its load function (or why it cannot be loaded).
    """
    groups, results = _groups(floors, peers, selected)
    by_key = {peer.key: peer for peer in peers}
    for keys, group in groups.items():
        log(f"interleaved floors: starting {', '.join(keys)}")
        with ExitStack() as stack:
            targets: dict[str, Target] = {}
            problems: dict[str, str] = {}
            for key in keys:
                try:
                    started = start(by_key[key], stack)
                except Exception as error:  # noqa: BLE001 - a peer that will not start is reported, not fatal
                    problems.update({name: str(error).splitlines()[0] for name in by_key[key].target_names})
                    continue
                for target in started:
                    if isinstance(target, Skipped):
                        problems[target.name] = target.reason
                    else:
                        targets[target.name] = target
            loads: dict[str, Load | str] = {}
            for floor in group:
                result = PairedRatio(floor.row, floor.against, floor.c)
                results.append(result)
                for name in (floor.row, floor.against):
                    if name not in loads:
                        loads[name] = prepare(targets[name]) if name in targets else problems.get(name, "not started")
                row, against = loads[floor.row], loads[floor.against]
                if isinstance(row, str) or isinstance(against, str):
                    result.problem = row if isinstance(row, str) else str(against)
                    continue
                _rounds(row, against, floor, rounds, duration_s, warmup_s, result)
                log(f"{floor.row} ÷ {floor.against}, c={floor.c}: throughput "
                    f"{', '.join(f'{r:.2f}' for r in result.ratios)}; server CPU "
                    f"{', '.join(f'{r:.2f}' for r in result.capacity_ratios)} {result.problem}")  # fmt: skip
    return results


def _rounds(row: Load, against: Load, floor: IssueFloor, rounds: int, duration_s: float, warmup_s: float,
            result: PairedRatio) -> None:
    """Fill `result` with `rounds` interleaved measurements of the two rows (or why they stopped)."""
    try:
        for load in (row, against):
            warm = load(floor.c, warmup_s)
            if warm.requests == 0 or warm.errors:
                result.problem = f"{warm.errors} of {warm.requests + warm.errors} warm-up requests failed"
                return
        for index in range(rounds):
            order = (("against", against), ("row", row)) if index % 2 == 0 else (("row", row), ("against", against))
            measured = {which: load(floor.c, duration_s) for which, load in order}
            if any(m.errors or m.requests == 0 for m in measured.values()):
                result.problem = f"round {index + 1} had failed requests"
                return
            result.ratios.append(measured["row"].rps / measured["against"].rps)
            result.capacity_ratios.append(
                measured["against"].server_cpu_us_per_request / measured["row"].server_cpu_us_per_request
            )
            result.client_saturated |= any(m.client_cpu_share >= SATURATED_CLIENT for m in measured.values())
    except LoadError as error:
        result.problem = f"load generator failed: {error}"
