"""`python -m bench` (what `nox -s bench` runs): every scenario, then reports/bench.{json,md}.

python -m bench [--only throughput --only fanout ...] [--quick] [--report-dir reports]
                [--loop auto|asyncio|uvloop] [--http auto|h11|httptools]
python -m bench --render reports/bench.json      # rebuild bench.md from a bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import goals, report
from .scenarios import fanout, monitor, redis, resume, state, suite, throughput
from .servers import UvicornSettings

SCENARIOS = ("throughput", "fanout", "resume", "state", "suite", "redis", "monitor")

NOTES = [
    "Ratios and goals compare figures of this run only; absolute figures depend on the machine, "
    "and on what else runs on it (see the load averages).",
    "The server runs one worker, as it must with the in-memory store: every job and stream lives "
    "in that process (`python -m mock_server --workers 2` is refused without a shared store). "
    "Only the Redis scenario runs 2, sharing a throwaway redis-server.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=SCENARIOS, help="run this scenario only")
    p.add_argument("--quick", action="store_true", help="smaller counts, for trying the bench")
    p.add_argument("--report-dir", type=Path, default=Path("reports"))
    p.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    p.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"))
    p.add_argument("--render", type=Path, metavar="JSON", help="only render bench.md from a file")
    return p.parse_args(argv)


def runners(settings: UvicornSettings, quick: bool) -> dict[str, Callable[[], dict[str, Any]]]:
    def sized(cls: Any) -> Any:
        return cls.quick() if quick else cls()

    return {
        "throughput": lambda: throughput.run(settings, sized(throughput.Sizes)),
        "fanout": lambda: fanout.run(settings, sized(fanout.Sizes)),
        "resume": lambda: resume.run(settings, sized(resume.Sizes)),
        "state": lambda: state.run(sized(state.Sizes)),
        "suite": lambda: suite.run(sized(suite.Sizes)),
        "redis": lambda: redis.run(settings, sized(redis.Sizes)),
        "monitor": lambda: monitor.run(settings, sized(monitor.Sizes)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        (args.render.parent / "bench.md").write_text(report.render(saved), encoding="utf-8")
        return 0
    settings = UvicornSettings(args.loop, args.http)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
        "server": settings.describe(),
        "scenarios": {},
        # Other processes' CPU use moves absolute figures (fan-out latency, suite time) that have
        # no baseline in the run; the 1-minute load average at each scenario's start and end says
        # how busy the machine was.
        "load_average": {},
        "notes": NOTES,
    }
    for name, run in runners(settings, args.quick).items():
        if args.only and name not in args.only:
            continue
        print(f"bench: {name} ...", flush=True)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        try:
            results["scenarios"][name] = run()
        except Exception as exc:  # one failed scenario must not lose the others' figures
            traceback.print_exc()
            results["scenarios"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["load_average"][name] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        if "skipped" in results["scenarios"][name]:
            print(f"bench: {name} skipped: {results['scenarios'][name]['skipped']}", flush=True)
        print(f"bench: {name} took {time.perf_counter() - t0:.1f}s", flush=True)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["goals"] = goals.evaluate(results["scenarios"])
    results["figures"] = goals.report_figures(results["scenarios"])
    as_json, as_md = report.write(results, args.report_dir)
    for g in results["goals"]:
        print(f"  {g['status']:>12}  {g['title']}: {g['value']} (target {g['target']})")
    for f in results["figures"]:
        print(f"  {'reported':>12}  {f['title']}: {f['value']}")
    print(f"bench: wrote {as_json} and {as_md}")
    failed = [n for n, r in results["scenarios"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
