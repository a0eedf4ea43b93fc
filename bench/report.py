"""The results of a run as markdown (and JSON), plus the machine they were taken on."""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from inprocess import FloorResult
from loadgen import LoadResult
from tools import command_output

BASELINE: Final = "Berth REST"
VALIDATION_BELOW_S: Final = 10.0  # shorter measurements are labelled a validation run
BUSY_LOAD_AVERAGE: Final = 0.5  # a 1-minute load average above this at start means a busy machine
SATURATED_CLIENT: Final = 0.9  # load generator busy for this share of its core: it may be the limit
DOCS_BEGIN: Final = "<!-- bench:results:begin -->"
DOCS_END: Final = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class IssueFloor:
    """A throughput ratio an issue sets as a floor: `row` ÷ `against` at concurrency `c` is at least `ratio`."""

    issue: int
    what: str
    row: str
    against: str
    c: int
    ratio: float


ISSUE_FLOORS: Final = (
    IssueFloor(7, "inferring by alias costs no measurable throughput", "Berth REST by alias", BASELINE, 16, 0.97),
    IssueFloor(7, "inferring by split costs no measurable throughput", "Berth REST by split", BASELINE, 16, 0.97),
    IssueFloor(8, "the Python runtime beats MLServer on the same pickle", "Berth REST, Python runtime",
               "MLServer REST", 1, 1.0),
    IssueFloor(8, "the Python runtime beats MLServer on the same pickle", "Berth REST, Python runtime",
               "MLServer REST", 16, 1.0),
    IssueFloor(8, "the Python runtime beats MLServer on the same pickle", "Berth gRPC, Python runtime",
               "MLServer gRPC", 1, 1.0),
    IssueFloor(8, "the Python runtime beats MLServer on the same pickle", "Berth gRPC, Python runtime",
               "MLServer gRPC", 16, 1.0),
    IssueFloor(9, "monitoring on stays within 5% of monitoring off",
               "Berth REST, monitoring on (default sample_rate 0.1)", "Berth REST, monitoring off", 16, 0.95),
    IssueFloor(10, "keep-alive TLS with keys keeps 80% of plaintext", "Berth REST TLS+auth", BASELINE, 16, 0.80),
    IssueFloor(10, "keep-alive TLS with keys keeps 80% of plaintext", "Berth gRPC TLS+auth", "Berth gRPC", 16, 0.80),
    IssueFloor(10, "keep-alive TLS with keys keeps 80% of plaintext", "Berth gRPC TLS+auth, C++ client",
               "Berth gRPC, C++ client", 16, 0.80),
)  # fmt: skip


@dataclass
class PairedRatio:
    """`row` ÷ `against` at concurrency `c`, once per round; or why it was not measured.

    `ratios` compares throughput; `capacity_ratios` compares what one server core can serve (the inverse of the
    server's CPU time per request), which is the server's figure when the load generator was the limit.
    """

    row: str
    against: str
    c: int
    ratios: list[float] = field(default_factory=list)
    capacity_ratios: list[float] = field(default_factory=list)
    client_saturated: bool = False  # the load generator kept its core ≥ SATURATED_CLIENT busy in some round
    problem: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def capacity_median(self) -> float | None:
        return statistics.median(self.capacity_ratios) if self.capacity_ratios else None

    @property
    def decisive(self) -> tuple[float, list[float], str] | None:
        """The median the verdict rests on, its rounds, and what it compares."""
        if self.client_saturated and self.capacity_ratios:
            return statistics.median(self.capacity_ratios), self.capacity_ratios, "server CPU per request"
        if self.ratios:
            return statistics.median(self.ratios), self.ratios, "throughput"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "against": self.against, "c": self.c, "ratios": self.ratios,
                "median": self.median, "capacity_ratios": self.capacity_ratios,
                "capacity_median": self.capacity_median, "client_saturated": self.client_saturated,
                "problem": self.problem}  # fmt: skip


@dataclass
class TargetReport:
    """Everything measured about one target, or why it was not."""

    name: str
    protocol: str
    setup: str = ""
    response_bytes: int | None = None
    results: dict[int, LoadResult] = field(default_factory=dict)
    problem: str = ""  # why it was skipped or failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protocol": self.protocol,
            "setup": self.setup,
            "response_bytes": self.response_bytes,
            "results": {str(c): result.as_dict() for c, result in self.results.items()},
            "problem": self.problem,
        }


@dataclass
class RunReport:
    started_at: str  # ISO 8601, UTC
    duration_s: float
    warmup_s: float
    concurrencies: tuple[int, ...]
    server_core: int
    client_core: int
    request_bytes: int
    machine: dict[str, str]
    versions: dict[str, str] = field(default_factory=dict)
    targets: list[TargetReport] = field(default_factory=list)
    floors: list[FloorResult] = field(default_factory=list)
    floor_problems: dict[str, str] = field(default_factory=dict)
    load_average_end: str = ""
    paired: list[PairedRatio] = field(default_factory=list)  # the floors in interleaved rounds (bench/paired.py)

    @property
    def is_validation(self) -> bool:
        return self.duration_s < VALIDATION_BELOW_S

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "concurrencies": list(self.concurrencies),
            "server_core": self.server_core,
            "client_core": self.client_core,
            "request_bytes": self.request_bytes,
            "machine": self.machine,
            "versions": self.versions,
            "targets": [target.as_dict() for target in self.targets],
            "floors": [floor.as_dict() for floor in self.floors],
            "floor_problems": self.floor_problems,
            "issue_floors": _issue_floor_rows(self),
            "paired": [ratio.as_dict() for ratio in self.paired],
            "load_average_end": self.load_average_end,
        }


# --- Machine ---------------------------------------------------------------------


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_info() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.MULTILINE)
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)', os_release, re.MULTILINE)
    hypervisor = re.search(r"^Hypervisor vendor:\s*(.+)$", command_output(["lscpu"]), re.MULTILINE)
    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem_kib.group(1)) / 2**20:.0f} GiB" if mem_kib else "?",
        "os": pretty.group(1) if pretty else platform.platform(),
        "kernel": platform.release(),
        "virtualization": hypervisor.group(1).strip() if hypervisor else "none reported",
        "load_average_start": load_average(),
    }


# --- Markdown --------------------------------------------------------------------


def _number(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline > 0 else "—"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _headline(report: RunReport) -> list[str]:
    notes = []
    if report.is_validation:
        notes.append(
            f"**Short validation run** ({report.duration_s:g} s per measurement): it shows that the harness "
            "works end to end; its numbers are not results. Run `make bench` on a quiet machine for those."
        )
    start_load = float(report.machine["load_average_start"].split()[0])
    if start_load > BUSY_LOAD_AVERAGE:
        notes.append(
            f"**Busy machine**: 1-minute load average {start_load:.2f} at start "
            f"({report.load_average_end.split()[0] if report.load_average_end else '?'} at the end); "
            "other work shared the cores, so the numbers are noisy."
        )
    quoted = "\n>\n".join(f"> {note}" for note in notes)  # one paragraph per note
    return [quoted, ""] if notes else []


def _main_table(report: RunReport) -> list[str]:
    concurrencies = report.concurrencies
    baseline = next((t for t in report.targets if t.name == BASELINE and t.results), None)
    header = ["Server"]
    for c in concurrencies:
        header += [f"c={c} req/s", f"c={c} p50 µs", f"c={c} p99 µs"]
    header.append("req/s ÷ Berth REST (" + " / ".join(f"c={c}" for c in concurrencies) + ")")
    rows = []
    for target in report.targets:
        if target.problem and not target.results:
            continue
        row = [target.name]
        for c in concurrencies:
            result = target.results.get(c)
            if result is None:
                row += ["—", "—", "—"]
                continue
            mark = " †" if result.client_cpu_share >= SATURATED_CLIENT else ""
            mark += " ‡" if result.errors else ""
            row += [_number(result.rps) + mark, _number(result.p50_us), _number(result.p99_us)]
        ratios = []
        for c in concurrencies:
            result, base = target.results.get(c), baseline.results.get(c) if baseline else None
            ratios.append(_ratio(result.rps, base.rps) if result and base else "—")
        row.append(" / ".join(ratios))
        rows.append(row)
    return _table(header, rows)


def _footnotes(report: RunReport) -> list[str]:
    results = [result for target in report.targets for result in target.results.values()]
    notes = []
    if any(result.client_cpu_share >= SATURATED_CLIENT for result in results):
        notes.append("† the load generator kept its core at least 90% busy: the server may be faster than shown.")
    if any(result.errors for result in results):
        notes.append("‡ some requests failed (see the errors column below).")
    return ["  \n".join(notes), ""] if notes else []


def _cost_table(report: RunReport) -> list[str]:
    concurrencies = report.concurrencies
    header = ["Server", "protocol", "response bytes"]
    header += [f"server CPU µs/req c={c}" for c in concurrencies]
    header += [f"client core busy c={c}" for c in concurrencies]
    header.append("errors")
    rows = []
    for target in report.targets:
        if not target.results:
            continue
        row = [target.name, target.protocol, str(target.response_bytes or "—")]
        row += [
            _number(target.results[c].server_cpu_us_per_request) if c in target.results else "—" for c in concurrencies
        ]
        row += [f"{target.results[c].client_cpu_share:.0%}" if c in target.results else "—" for c in concurrencies]
        row.append(str(sum(result.errors for result in target.results.values())))
        rows.append(row)
    return _table(header, rows, right_from=2)


def _issue_floor_rows(report: RunReport) -> list[list[str]]:
    """One row per ISSUE_FLOORS entry: the one-shot ratio of the main run, the interleaved rounds' median and
    spread, and whether the floor is met (by the median where the rounds ran, else by the one-shot ratio)."""
    rps = {(t.name, c): r.rps for t in report.targets for c, r in t.results.items() if not r.errors}
    rounds = {(p.row, p.against, p.c): p for p in report.paired}
    rows = []
    for floor in ISSUE_FLOORS:
        row, against = rps.get((floor.row, floor.c)), rps.get((floor.against, floor.c))
        one_shot = row / against if row is not None and against else None
        paired = rounds.get((floor.row, floor.against, floor.c))
        decisive = paired.decisive if paired is not None else None
        if paired is None:
            interleaved = "—"
        elif decisive is None:
            interleaved = f"not measured: {paired.problem}"
        else:
            median, values, what = decisive
            interleaved = f"{median:.2f}× ({min(values):.2f}–{max(values):.2f}, {len(values)} rounds)"
            if what != "throughput":
                interleaved += f" in {what}: the load generator was the limit"
        value = decisive[0] if decisive is not None else one_shot
        if value is None:
            verdict = "not measured"
        else:
            verdict = "met" if value >= floor.ratio else "**not met**"
        rows.append([f"#{floor.issue}", floor.what, f"{floor.row} ÷ {floor.against}", f"c={floor.c}",
                     f"{one_shot:.2f}×" if one_shot is not None else "—", interleaved,
                     f"≥ {floor.ratio:.2f}×", verdict])  # fmt: skip
    return rows


def _issue_floor_table(report: RunReport) -> list[str]:
    header = ["issue", "floor", "rows", "load", "one-shot", "interleaved median (range)", "floor", "verdict"]
    return _table(header, _issue_floor_rows(report), right_from=4)


def _floor_table(report: RunReport) -> list[str]:
    rows = [
        [floor.name, floor.runtime, _number(floor.calls_per_s), _number(floor.p50_us), _number(floor.p99_us),
         _number(floor.mean_us)]
        for floor in report.floors
    ]  # fmt: skip
    return _table(["Floor", "runtime", "calls/s", "p50 µs", "p99 µs", "mean µs"], rows, right_from=2)


def render_results(report: RunReport, heading: str = "###") -> str:
    """The results section: headline notes, tables, skipped targets, setups, machine, versions.

    `heading` is the markdown level of its sub-headings.
    """
    lines = _headline(report)
    lines += [
        f"Run {report.started_at}: {report.duration_s:g} s per measurement after {report.warmup_s:g} s of warm-up; "
        f"servers on core {report.server_core}, load generator on core {report.client_core}; "
        f"one {report.request_bytes}-byte v2 request (one iris row) per call.",
        "",
        f"{heading} Throughput and latency",
        "",
        *_main_table(report),
        "",
        *_footnotes(report),
        f"{heading} Cost per request",
        "",
        *_cost_table(report),
        "",
        "Server CPU is user + system time of the server's whole process tree during the measurement; "
        "client core busy is the load generator's CPU time over the duration.",
        "",
    ]
    if any(t.results for t in report.targets) or report.paired:
        lines += [
            f"{heading} The issues' floors",
            "",
            *_issue_floor_table(report),
            "",
            "Throughput ratios between rows of this run. One-shot: the two rows' measurements in the main run, "
            "minutes apart. Interleaved: after the main run both servers run at once and the two rows are "
            "loaded in turn (AB BA AB BA, bench/paired.py), so a busy spell falls on both; the verdict is "
            "the median of those rounds where they ran, in throughput, or, where the load generator kept its "
            "core busy, in server CPU per request (what one server core can serve). A row with failed requests counts as not measured. "
            "A 3% floor is below what wall-clock can resolve on a shared 2-core machine, so it is also "
            "checked in instructions per request (callgrind, in docs/benchmarks.md).",
            "",
        ]
    if report.floors:
        lines += [f"{heading} Compute floors (in process, no server)", "", *_floor_table(report), ""]
    skipped = [(t.name, t.problem) for t in report.targets if t.problem]
    skipped += list(report.floor_problems.items())
    if skipped:
        lines += [f"{heading} Not measured, or incomplete", ""]
        lines += [f"- **{name}**: {_one_paragraph(problem)}" for name, problem in skipped]
        lines.append("")
    setups = [(t.name, t.setup) for t in report.targets if t.setup]
    if setups:
        lines += [f"{heading} Setups", ""]
        lines += [f"- **{name}**: {setup}" for name, setup in setups]
        lines.append("")
    lines += [f"{heading} Machine and versions", ""]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in report.machine.items()]
    lines.append(f"- load average end: {report.load_average_end}")
    lines += [f"- {name}: {version}" for name, version in report.versions.items()]
    return "\n".join(lines) + "\n"


def _one_paragraph(text: str, limit: int = 600) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_document(report: RunReport) -> str:
    title = "Berth benchmark" + (" (validation run)" if report.is_validation else "")
    return f"# {title}, {report.started_at}\n\n" + render_results(report, heading="##")


def update_docs(doc: Path, results_markdown: str, results_file: str) -> bool:
    """Replace the text between DOCS_BEGIN and DOCS_END in `doc`; False if the markers are missing."""
    if not doc.is_file():
        return False
    text = doc.read_text()
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin:
        return False
    source = f"_Generated by `bench/run.py` ({results_file}); do not edit by hand._\n\n"
    doc.write_text(text[: begin + len(DOCS_BEGIN)] + "\n" + source + results_markdown + "\n" + text[end:])
    return True
