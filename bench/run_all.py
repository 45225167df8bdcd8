"""`make bench`: run every `bench/bench_*.py`, then one summary of their figures and the goals.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--quick]

Each script runs in its own process (so RSS figures are its own) with its output streamed as it
comes, prefixed by its name. Every `name: value` line a script prints on stdout is a figure.
`--quick` sets `BENCH_QUICK=1` (each script then uses a smaller N). Redis is the one at
`REDIS_URL` (default redis://127.0.0.1:6379/15); `BENCH_KEY_PREFIX` gives the run a unique key
prefix under which the scripts make theirs. Exits non-zero only when a script fails; a goal
missed is reported in the summary, not an error.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
FIGURE = re.compile(r"^([A-Za-z][\w.]*): (.+)$")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Sizes for scripts that take them from their own variables rather than BENCH_QUICK.
QUICK_ENV: dict[str, dict[str, str]] = {"bench_sync": {"BENCH_LEADS": "20000", "BENCH_CONTACTS": "10000"}}


@dataclass(frozen=True)
class Goal:
    text: str
    script: str
    figure: str  # a regular expression: every figure of `script` it matches must pass
    passes: Callable[[float], bool]


GOALS: tuple[Goal, ...] = (
    Goal("Marketo upsert throughput >= 0.90 of the ceiling", "bench_marketo", r"ours_ratio_to_ceiling",
         lambda v: v >= 0.90),
    Goal("Initial sync throughput >= 0.85 of the Marketo ceiling", "bench_sync", r"throughput_ratio_to_ceiling",
         lambda v: v >= 0.85),
    Goal("Dataverse reader peak RSS ratio (large N / small N) <= 1.3", "bench_dynamics",
         r"ours_peak_rss_ratio_n\d+_vs_n\d+", lambda v: v <= 1.3),
    Goal("Initial sync with opportunities and one custom entity added (records/s as a ratio to the Marketo "
         "ceiling stays >= 0.90 of the people-only figure)", "bench_crm", r"crm_vs_people_throughput",
         lambda v: v >= 0.90),
    Goal("Sync worker peak RSS ratio (full / one fifth) <= 1.3", "bench_sync", r"peak_rss_ratio",
         lambda v: v <= 1.3),
    Goal("SIGKILL of a worker rewrites <= 2 batches per entity", "bench_sync", r"sigkill_rewritten_batches_\w+",
         lambda v: v <= 2),
    Goal("Two-way sync: no change lost", "bench_two_way", r"two_way_changes_lost", lambda v: v == 0),
    Goal("Two-way sync: nothing echoed once quiet", "bench_two_way", r"two_way_writes_echoed", lambda v: v == 0),
    Goal("Two-way sync with webhooks: no change lost", "bench_two_way", r"two_way_webhooks_changes_lost",
         lambda v: v == 0),
    Goal("Two-way sync with webhooks: nothing echoed once quiet", "bench_two_way", r"two_way_webhooks_writes_echoed",
         lambda v: v == 0),
    Goal("Bulk Import: Marketo API calls per 1,000 records <= 0.05 (REST's floor: 3.33)", "bench_bulk",
         r"bulk_calls_per_1000_records", lambda v: v <= 0.05),
    Goal("Bulk Import worker peak RSS ratio (N / one fifth) <= 1.3", "bench_bulk", r"bulk_peak_rss_ratio",
         lambda v: v <= 1.3),
    Goal("Ack p99 < 100 ms (goal)", "bench_ack", r"ack_p99_ratio_to_goal", lambda v: v < 1.0),
    Goal("Ack p99 < 3 s (Slack's limit)", "bench_ack", r"ack_p99_ratio_to_slack_limit", lambda v: v < 1.0),
    Goal("Status render p95 < 1 s with 1M synced records and 1M errors (ratio to Slack's 3 s)", "bench_status",
         r"status_render_p95_ratio_to_slack_limit", lambda v: v < 1 / 3),
)


@dataclass
class Outcome:
    script: str
    returncode: int
    seconds: float
    figures: dict[str, str]


def discover(only: list[str] | None) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if not only:
        return scripts
    wanted = {name.removesuffix(".py").removeprefix("bench_") for name in only}
    chosen = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    unknown = wanted - {s.stem.removeprefix("bench_") for s in chosen}
    if unknown:
        names = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
        raise SystemExit(f"run_all: no bench script named {', '.join(sorted(unknown))} (there are: {names})")
    return chosen


def redacted(url: str) -> str:
    """`url` without a password, for printing."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"run_all: Redis at {redacted(url)} is not reachable ({type(exc).__name__}); "
                         "start it or set REDIS_URL.") from None


def run(script: Path, env: dict[str, str]) -> Outcome:
    """Run one script, streaming its stdout (prefixed) and collecting its `name: value` figures.
    Its stderr goes straight through, so warnings are never mistaken for figures."""
    name = script.stem
    print(f"\n=== {name} ===", flush=True)
    started = time.monotonic()
    figures: dict[str, str] = {}
    with subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            print(f"[{name}] {line}", end="", flush=True)
            match = FIGURE.match(line.strip())
            if match:
                figures[match.group(1)] = match.group(2)
    outcome = Outcome(name, process.returncode, time.monotonic() - started, figures)
    if outcome.returncode:
        print(f"[{name}] FAILED with exit code {outcome.returncode}", flush=True)
    return outcome


def number(value: str) -> float | None:
    match = NUMBER.search(value)
    return float(match.group()) if match else None


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def goal_rows(outcomes: dict[str, Outcome]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("goal", "figure", "value", "result")]
    for goal in GOALS:
        outcome = outcomes.get(goal.script)
        matched = {k: v for k, v in (outcome.figures if outcome else {}).items() if re.fullmatch(goal.figure, k)}
        if not matched:
            reason = "not run" if outcome is None else "script failed" if outcome.returncode else "no figure"
            rows.append((goal.text, f"{goal.script}.{goal.figure}", "-", f"NOT MEASURED ({reason})"))
        for figure, value in matched.items():
            parsed = number(value)
            result = "not a number" if parsed is None else "met" if goal.passes(parsed) else "MISSED"
            rows.append((goal.text, f"{goal.script}.{figure}", value, result))
    return rows


def summary(outcomes: dict[str, Outcome]) -> str:
    figures = [("script", "figure", "value")]
    figures += [(o.script, name, value) for o in outcomes.values() for name, value in o.figures.items()]
    status = [("script", "exit", "seconds")]
    status += [(o.script, str(o.returncode), f"{o.seconds:.1f}") for o in outcomes.values()]
    return "\n\n".join(["=== summary: figures ===", table(figures), "=== goals ===", table(goal_rows(outcomes)),
                        "=== scripts ===", table(status)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this script (e.g. ack or bench_ack.py); repeatable")
    parser.add_argument("--quick", action="store_true", help="smaller N (BENCH_QUICK=1)")
    args = parser.parse_args()
    scripts = discover(args.only)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("BENCH_KEY_PREFIX", f"bench{uuid.uuid4().hex[:6]}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    check_redis(env["REDIS_URL"])
    if args.quick:
        env["BENCH_QUICK"] = "1"
    print(f"run_all: {len(scripts)} script(s), Redis {redacted(env['REDIS_URL'])}, key prefix {env['BENCH_KEY_PREFIX']}"
          f"{', quick' if args.quick else ''}", flush=True)
    outcomes: dict[str, Outcome] = {}
    for script in scripts:
        script_env = dict(env)
        if args.quick:
            for key, value in QUICK_ENV.get(script.stem, {}).items():
                script_env.setdefault(key, value)
        outcomes[script.stem] = run(script, script_env)
    print("\n" + summary(outcomes), flush=True)
    failed = [o.script for o in outcomes.values() if o.returncode]
    if failed:
        print(f"\nrun_all: failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
