"""reports/bench.json (every figure) and reports/bench.md (the same, for people), from one dict.

`render` only reads the results, so a bench.json can be rendered again: `python -m bench --render`.
A scenario that failed or was skipped shows as such; a missing figure is "-", never a zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .goals import MISS, NOT_MEASURED, PASS, dig

MARK = {PASS: "pass", MISS: "**miss**", NOT_MEASURED: "not measured"}


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    text = f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"
    return f"{text} {unit}".rstrip()


def mib(kib_or_bytes: Any, *, from_kib: bool = False) -> str:
    if not isinstance(kib_or_bytes, int | float):
        return "-"
    size = kib_or_bytes * (1024 if from_kib else 1) / (1024 * 1024)
    return f"{size:,.1f} MiB"


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(results: Mapping[str, Any]) -> str:
    out = ["# Benchmarks", ""]
    out += _header(results)
    out += _goals(results.get("goals", []))
    out += _figures(results.get("figures", []))
    scenarios = results.get("scenarios", {})
    sections = (
        (
            "throughput",
            "1. Throughput and latency: ours against a bare Starlette route",
            _throughput,
        ),
        ("fanout", "2. SSE fan-out", _fanout),
        ("resume", "3. Resume cost: read-after on long streams", _resume),
        ("state", "4. Scale of state: memory per job and per event, retention", _state),
        ("suite", "5. Conformance suite wall time", _suite),
        ("redis", "6. Redis store: throughput with 1 and 2 workers, SSE delivery", _redis),
        ("monitor", "7. Conformance monitor: added latency and throughput cost", _monitor),
    )
    for key, title, body in sections:
        out += [f"## {title}", ""]
        data = scenarios.get(key)
        if data is None:
            out += ["Not run in this session (`python -m bench --only ...`).", ""]
        elif "error" in data:
            out += [f"Failed: `{data['error']}`", ""]
        elif "skipped" in data:
            out += [f"Skipped: {data['skipped']}", ""]
        else:
            out += body(data)
    notes = list(results.get("notes", []))
    loads = results.get("load_average") or {}
    if loads:
        cpus = results.get("machine", {}).get("cpus", "?")
        shown = ", ".join(f"{name} {fmt(a, 1)} -> {fmt(b, 1)}" for name, (a, b) in loads.items())
        notes.append(
            f"Machine load (1-minute load average, {cpus} CPUs) at each scenario's start and end: "
            f"{shown}. Above the CPU count, other processes competed with the benchmark."
        )
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out).rstrip() + "\n"


def _header(results: Mapping[str, Any]) -> list[str]:
    machine = results.get("machine", {})
    server = results.get("server", {})
    return [
        f"Taken {results.get('started_at', '?')} in {fmt(results.get('duration_s'), 0, 's')} on "
        f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, "
        f"{machine.get('platform', '?')}. Every figure is taken in this run, beside its "
        "baseline; all traffic stays on 127.0.0.1 and the load comes from a separate process.",
        "",
        f"Server settings (both servers): loop `{server.get('loop_used', '?')}`, HTTP "
        f"`{server.get('http_used', '?')}`, {server.get('workers', 1)} worker, access log off."
        + (" Quick mode: smaller counts." if results.get("quick") else ""),
        "",
    ]


def _goals(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    if not goals:
        return []
    rows = []
    for g in goals:
        value = g.get("value")
        shown = fmt(value, 3 if g.get("unit") in ("", "x") else 1, g.get("unit", ""))
        rows.append([g["title"], g["target"], shown, MARK.get(g["status"], g["status"])])
    return ["## Goals", "", *table(["goal", "target", "measured", "status"], rows), ""]


def _figures(figures: Sequence[Mapping[str, Any]]) -> list[str]:
    if not figures:
        return []
    rows = []
    for f in figures:
        digits = 3 if f.get("unit") in ("", "x") else 1
        rows.append([f["title"], fmt(f.get("value"), digits, f.get("unit", ""))])
    return [
        "## Reported figures (no target)",
        "",
        *table(["figure", "measured"], rows),
        "",
    ]


def _latency(lat: Any) -> str:
    if not isinstance(lat, Mapping):
        return "-"
    return f"{fmt(lat.get('p50_ms'), 2)} / {fmt(lat.get('p99_ms'), 2)}"


def _throughput(data: Mapping[str, Any]) -> list[str]:
    load = data.get("load", {})
    out = [
        f"{load.get('connections')} keep-alive connections, {fmt(load.get('requests_per_run'), 0)} "
        f"requests per run after {fmt(load.get('warmup_per_run'), 0)} warm-up, "
        f"{load.get('rounds')} rounds alternating bare and ours; full request validation on. "
        "The bare route returns our answer to the same request as its constant body, so both "
        "sides encode and send the same document. Ratio: the median of the rounds' ours / bare "
        "throughput. Latencies: the median round.",
        "",
    ]
    rows = []
    for op in data.get("operations", {}).values():
        ours, bare = op.get("ours", {}), op.get("bare", {})
        rows.append(
            [
                op.get("title", "?"),
                fmt(ours.get("rps"), 0),
                fmt(bare.get("rps"), 0),
                fmt(op.get("ratio"), 3),
                _latency(ours.get("latency")),
                _latency(bare.get("latency")),
                _statuses(ours),
            ]
        )
    out += table(
        [
            "operation",
            "ours req/s",
            "bare req/s",
            "ratio",
            "ours p50 / p99 ms",
            "bare p50 / p99 ms",
            "ours answers",
        ],
        rows,
    )
    out.append("")
    profiles = data.get("profiles", {})
    if profiles:
        out += [
            "### Where the time goes",
            "",
            "py-spy sampling the reference server under the same load (a separate run). Each "
            "sample counts for the first area found from the innermost frame outwards.",
            "",
        ]
        for op_key, prof in profiles.items():
            title = dig(data, "operations", op_key, "title") or op_key
            if "error" in prof:
                out += [f"{title}: no profile ({prof['error']}).", ""]
                continue
            out += [
                f"**{title}** ({fmt(prof.get('samples'), 0)} samples, server busy "
                f"{fmt(100 * prof.get('busy', 0), 0)}% of the time)",
                "",
            ]
            out += table(
                ["area", "share"],
                ([a["area"], f"{100 * a['share']:.1f}%"] for a in prof.get("areas", [])),
            )
            out.append("")
            top = prof.get("top_functions", [])[:8]
            if top:
                out.append(
                    "Innermost frames: "
                    + ", ".join(f"`{t['function']}` {100 * t['share']:.1f}%" for t in top)
                    + "."
                )
                out.append("")
    return out


def _statuses(side: Mapping[str, Any]) -> str:
    statuses = side.get("statuses") or {}
    text = ", ".join(f"{n} x {code}" for code, n in statuses.items()) or "-"
    if side.get("errors"):
        text += f", {side['errors']} connection errors"
    if side.get("timed_out"):
        text += ", timed out"
    return text


def _fanout(data: Mapping[str, Any]) -> list[str]:
    out = [
        f"Each job is read by {data.get('per_job')} streams and appends "
        f"{data.get('entries_per_step')} entries every {data.get('step_ms')} ms (jobs started at "
        f"spread moments of a step). Latency: arrival at the client minus the entry id's ms, over "
        f"a {fmt(data.get('window_s'), 0)} s window after every stream is open; the id's ms is the "
        "time the step was due, so scheduling lateness is included. Memory: the server's VmRSS "
        "with the jobs running and no stream open, and its peak during the window.",
        "",
    ]
    rows = []
    for run in data.get("runs", {}).values():
        lat = run.get("latency") or {}
        rows.append(
            [
                fmt(run.get("streams"), 0),
                fmt(run.get("jobs"), 0),
                f"{fmt(run.get('opened'), 0)} in {fmt(run.get('open_s'), 1)} s",
                f"{fmt(run.get('events_in_window'), 0)} / {fmt(run.get('events_expected'), 0)}",
                fmt(lat.get("p50_ms"), 2),
                fmt(lat.get("p99_ms"), 2),
                fmt(lat.get("max_ms"), 2),
                f"{mib(run.get('rss_idle_kb'), from_kib=True)} -> "
                f"{mib(run.get('rss_peak_kb'), from_kib=True)}",
                fmt(run.get("rss_per_stream_bytes"), 0, "B"),
            ]
        )
    out += table(
        [
            "streams",
            "jobs",
            "opened",
            "entries received / expected",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server RSS",
            "RSS per stream",
        ],
        rows,
    )
    return [*out, ""]


def _resume(data: Mapping[str, Any]) -> list[str]:
    small, large = (str(n) for n in data.get("sizes", [1000, 100000]))
    inproc, http = data.get("in_process", {}), data.get("http", {})
    rows = [
        [
            "in process: `EventStream.read_after`, per read",
            fmt(dig(inproc, "per_read_us", small), 2, "us"),
            fmt(dig(inproc, "per_read_us", large), 2, "us"),
            fmt(inproc.get("ratio"), 2, "x"),
        ],
        [
            "over HTTP: `GET /v1/jobs/{id}/stream?after=`, p50 per request",
            fmt(dig(http, "per_read_p50_ms", small), 2, "ms"),
            fmt(dig(http, "per_read_p50_ms", large), 2, "ms"),
            fmt(http.get("ratio"), 2, "x"),
        ],
        [
            "for comparison: full replay over HTTP (no `after`), once",
            fmt(dig(http, "full_replay_s", small), 3, "s"),
            fmt(dig(http, "full_replay_s", large), 3, "s"),
            "",
        ],
    ]
    entries = http.get("entries", {})
    return [
        f"Each resume names the entry {data.get('tail', 10) + 1}th from the end, so it returns the "
        f"same {data.get('tail', 10)} entries whatever the length; only the search differs "
        f"(streams of {fmt(dig(entries, small), 0)} and {fmt(dig(entries, large), 0)} entries "
        "over HTTP).",
        "",
        *table(["read", f"{int(small):,} entries", f"{int(large):,} entries", "ratio"], rows),
        "",
    ]


def _state(data: Mapping[str, Any]) -> list[str]:
    jobs, bounded = data.get("jobs", {}), data.get("bounded", {})
    out = [
        "Measured on the model in a fresh interpreter, as resident memory (VmRSS) deltas, so the "
        "allocator's overhead counts.",
        "",
    ]
    if "error" in jobs:
        out += [f"Jobs: failed: `{jobs['error']}`", ""]
    else:
        out += table(
            ["figure", "value"],
            [
                ["jobs run to completion", fmt(jobs.get("jobs"), 0)],
                ["events retained", fmt(jobs.get("events_retained"), 0)],
                ["memory per event", fmt(jobs.get("per_event_bytes"), 0, "B")],
                [
                    "memory per job with its stream "
                    f"({fmt(jobs.get('entries_per_job'), 0)} entries)",
                    fmt(jobs.get("per_job_with_stream_bytes"), 0, "B"),
                ],
                [
                    "memory per job at rest (its record)",
                    fmt(jobs.get("per_job_at_rest_bytes"), 0, "B"),
                ],
                ["server-side total for all of it", mib(jobs.get("rss_with_events_bytes"))],
            ],
        )
        out.append("")
    if "error" in bounded:
        return [*out, f"Retention: failed: `{bounded['error']}`", ""]
    samples = bounded.get("samples", [])
    step = max(1, len(samples) // 8)
    shown = samples[step - 1 :: step]
    if samples and shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    bound = bounded.get("retained_bound")
    held = bounded.get("retained_max")
    verdict = (
        "bounded"
        if isinstance(held, int) and isinstance(bound, int) and held <= bound
        else ("**not bounded**")
    )
    second_half = bounded.get("rss_growth_second_half")
    growth = fmt(100 * second_half, 1) if second_half is not None else "-"
    out += [
        f"Retention in a long run: stream_maxlen {fmt(bounded.get('maxlen'), 0)}, stream_ttl_ms "
        f"{fmt(bounded.get('ttl_ms'), 0)}; {fmt(bounded.get('streams_created'), 0)} streams "
        f"created over time, {fmt(bounded.get('appended'), 0)} entries appended. At most "
        f"{fmt(held, 0)} entries were held (bound from maxlen x streams alive within the TTL: "
        f"{fmt(bound, 0)}): {verdict}. Memory growth over the second half of the run: "
        f"{growth}%.",
        "",
    ]
    out += table(
        ["clock", "appended", "retained", "memory (RSS delta)"],
        (
            [
                f"{s['clock_s']} s",
                fmt(s["appended"], 0),
                fmt(s["retained"], 0),
                mib(s["rss_delta_bytes"]),
            ]
            for s in shown
        ),
    )
    return [*out, ""]


def _suite(data: Mapping[str, Any]) -> list[str]:
    rows = []
    for name, run in data.get("runs", {}).items():
        counts = run.get("counts") or {}
        outcome = ", ".join(f"{n} {k}" for k, n in counts.items()) or run.get("error", "-")
        rows.append([f"`{run.get('command', name)}`", fmt(run.get("wall_s"), 1, "s"), outcome])
    return [
        "Against the bundled reference server (started and stopped by the suite); reports to a "
        "temporary directory.",
        "",
        *table(["run", "wall time", "outcome"], rows),
        "",
    ]


def _cpu(cpu: Mapping[str, Any] | None) -> str:
    """A run's CPU figures (bench/cpu.py): each busy server process, Redis, the load."""
    if not cpu:
        return "-"
    server = " + ".join(fmt(c, 2) for c in cpu.get("server", [])) or "0"
    return f"{server} · {fmt(cpu.get('redis'), 2)} · {fmt(cpu.get('load'), 2)}"


def _redis(data: Mapping[str, Any]) -> list[str]:
    setups = data.get("setups", {})
    load = data.get("load", {})

    def title(key: str) -> str:
        return str(setups.get(key, {}).get("title", key))

    out = [
        f"One throwaway redis-server ({data.get('redis_version') or 'version unknown'}) on "
        "127.0.0.1; each server starts fresh on a flushed database. "
        f"{load.get('connections')} keep-alive connections, "
        f"{fmt(load.get('seconds_per_run'), 1)} s measured per run after "
        f"{fmt(load.get('warmup_per_run'), 0)} warm-up requests; "
        f"rounds: {load.get('rounds')}, each starting the three servers in turn, GET before "
        "POST on each. Ratio: the median of "
        "the rounds' throughput ratios. Figures: the median round.",
        "",
    ]
    rows = []
    for op in data.get("throughput", {}).values():
        for key, side in op.get("setups", {}).items():
            rows.append(
                [
                    op.get("title", "?"),
                    title(key),
                    fmt(side.get("rps"), 0),
                    _latency(side.get("latency")),
                    _statuses(side),
                    _cpu(side.get("cpu")),
                ]
            )
    out += table(
        [
            "operation",
            "server",
            "req/s",
            "p50 / p99 ms",
            "answers",
            "CPU, cores: server processes · Redis · load generator",
        ],
        rows,
    )
    out.append("")
    rows = []
    for op in data.get("throughput", {}).values():
        for name, r in op.get("ratios", {}).items():
            num, _, den = name.partition("/")
            rounds = ", ".join(fmt(x, 3) for x in r.get("round_ratios", []))
            rows.append(
                [
                    op.get("title", "?"),
                    f"{title(num)} / {title(den)}",
                    fmt(r.get("ratio"), 3),
                    rounds,
                ]
            )
    out += table(["operation", "ratio of", "ratio", "rounds"], rows)
    out.append("")
    sse = data.get("sse", {})
    out += [
        f"SSE delivery: {fmt(sse.get('streams'), 0)} streams over {fmt(sse.get('jobs'), 0)} "
        f"running jobs ({sse.get('per_job')} per job), each appending "
        f"{sse.get('entries_per_step')} entries every {sse.get('step_ms')} ms. Latency: arrival "
        "minus the entry id's ms (the step's due time, so scheduling lateness counts), over a "
        f"{fmt(sse.get('window_s'), 0)} s window, as in scenario 2. With 2 workers each step "
        "runs in one of them and the readers are spread over both, so some are woken through "
        "the store's change feed.",
        "",
    ]
    rows = []
    for key, run in sse.get("runs", {}).items():
        if "error" in run:
            # Only the first line: a load generator's failure carries its stderr, which would
            # break the table (bench.json keeps all of it).
            first = (str(run["error"]).splitlines() or [""])[0].replace("|", "\\|")
            rows.append([title(key), f"failed: `{first}`", "-", "-", "-", "-"])
            continue
        lat = run.get("latency") or {}
        rows.append(
            [
                title(key),
                f"{fmt(run.get('opened'), 0)} in {fmt(run.get('open_s'), 1)} s",
                f"{fmt(run.get('events_in_window'), 0)} / {fmt(sse.get('events_expected'), 0)}",
                fmt(lat.get("p50_ms"), 2),
                fmt(lat.get("p99_ms"), 2),
                fmt(lat.get("max_ms"), 2),
            ]
        )
    out += table(
        ["server", "opened", "entries received / expected", "p50 ms", "p99 ms", "max ms"], rows
    )
    return [*out, ""]


def _monitor(data: Mapping[str, Any]) -> list[str]:
    from .scenarios.monitor import render as render_monitor

    return render_monitor(dict(data))


def write(results: Mapping[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    as_json = directory / "bench.json"
    as_md = directory / "bench.md"
    as_json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    as_md.write_text(render(results), encoding="utf-8")
    return as_json, as_md
