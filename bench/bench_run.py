"""Benchmark of exp's local runner against the standard process pools.

Two targets (from the issue):

1. Throughput: 20,000 trivial runs (``run(x) -> x + 1``) on 2 workers, with
   exp's journal and per-run log capture on, must reach at least the
   throughput of ``multiprocessing.Pool(2).imap_unordered(chunksize=1)``
   (ratio exp / mp.Pool >= 1.0).
2. Latency: 200 runs of ``time.sleep(0.02)`` on 2 workers must finish within
   1.05x the ideal 2.0 s, worker start-up excluded (and reported separately).

Every contender is timed as a whole process, from launch to exit, so each one
pays for its own interpreter start, imports, pool start-up, dispatch, result
handling and shutdown (exp also for its journal, CSV and log directory). The
contenders run in a rotating order within each repetition, so drift on the
machine hits them alike; the figures are medians over the repetitions.
Byte-code caching is on (in a private folder, written by one warm-up import),
as for any installed copy, so no timed process compiles exp.py.

exp's own figures (worker start-up, the dispatch phase) are read in its process
by wrapping ``_LocalPool.start`` and ``_drive`` without changing them; the
latency target is judged on the journal: first run start to last run end.

    python bench/bench_run.py            # 5 repetitions, writes bench/run.md
    python bench/bench_run.py --quick    # 2 repetitions
    python bench/bench_run.py --exp-dir /tmp/exp_try --no-write   # try a copy of exp.py

Standard library only (joblib is measured when it is importable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
N_TASKS = 20_000
N_SLEEP = 200
SLEEP = 0.02
WORKERS = 2
THROUGHPUT_TARGET = 1.0  # exp / mp.Pool
LATENCY_TARGET = 1.05  # wall / ideal

# ─── what the contender processes run ────────────────────────────────────────

TRIVIAL = "def run(x):\n    return x + 1\n"
SLEEPER = "import time\n\n\ndef run(x):\n    time.sleep({sleep!r})\n"

# Every child prints one JSON line (its own measurements) as its last output.
# Each one checks that it got every result, so no contender can skip work.

CHILD_EXP = '''
import json, sys, time
t0 = time.perf_counter()
import exp
t_import = time.perf_counter() - t0

n, workers, runnable, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = {}
# Read exp's own start-up figure and the end of its dispatch loop without
# changing what it does: wrap two private functions when they exist.
Pool = getattr(exp, "_LocalPool", None)
if Pool is not None and hasattr(Pool, "start"):
    _start = Pool.start
    def start(self, *a, **k):
        seen["pool"] = self
        seen["t_pool_start"] = time.monotonic()
        return _start(self, *a, **k)
    Pool.start = start
if hasattr(exp, "_drive"):
    _drive = exp._drive
    def drive(*a, **k):
        try:
            return _drive(*a, **k)
        finally:
            seen["t_drive_end"] = time.monotonic()
    exp._drive = drive

if __name__ == "__main__":
    space = exp.ParamSpace()
    space.add_range("x", 0, n, dtype=int)
    t1 = time.perf_counter()
    records = exp.run_experiment(space, runnable, workers=workers, out=out, name="bench",
                                 quiet=True)
    t_run = time.perf_counter() - t1
    assert len(records) == n, len(records)
    bad = [r for r in records if r["status"] != "ok"]
    assert not bad, bad[:3]
    starts = [r["start"] for r in records]
    ends = [r["end"] for r in records]
    res = {"import": t_import, "run_experiment": t_run,
           "journal_span": max(ends) - min(starts),
           "busy": sum(r["seconds"] for r in records), "start_method": "subprocess"}
    pool = seen.get("pool")
    startup = getattr(pool, "startup_seconds", None)
    if startup:
        res["startup"] = startup
        if "t_drive_end" in seen:
            # all workers ready -> the last result journaled
            res["after_startup"] = seen["t_drive_end"] - seen["t_pool_start"] - startup
    print(json.dumps(res))
'''

CHILD_MP_POOL = '''
import json, multiprocessing as mp, sys, time
from trivial import run
if __name__ == "__main__":
    n, workers, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = mp.get_context(None if method == "default" else method)
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        total = sum(pool.imap_unordered(run, range(n), chunksize=1))
    assert total == n * (n + 1) // 2, total
    print(json.dumps({"in_process": time.perf_counter() - t0,
                      "start_method": ctx.get_start_method()}))
'''

CHILD_PPE = '''
import json, multiprocessing as mp, sys, time
from concurrent.futures import ProcessPoolExecutor
from trivial import run
if __name__ == "__main__":
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        total = sum(pool.map(run, range(n)))
    assert total == n * (n + 1) // 2, total
    print(json.dumps({"in_process": time.perf_counter() - t0,
                      "start_method": mp.get_start_method()}))
'''

CHILD_JOBLIB = '''
import json, sys, time
from joblib import Parallel, delayed
from trivial import run
if __name__ == "__main__":
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.perf_counter()
    total = sum(Parallel(n_jobs=workers)(delayed(run)(x) for x in range(n)))
    assert total == n * (n + 1) // 2, total
    print(json.dumps({"in_process": time.perf_counter() - t0, "start_method": "loky"}))
'''


# ─── running and timing ──────────────────────────────────────────────────────


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, dict]:
    """Wall seconds of a whole process, launch to exit, and the JSON it printed last."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench: {shlex.join(argv)} failed ({proc.returncode}):\n"
                 f"{proc.stdout}\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    return wall, json.loads(lines[-1]) if lines else {}


def have_joblib() -> bool:
    try:
        import joblib  # noqa: F401
    except ImportError:
        return False
    return True


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if len(values) > 1 else ""


# ─── the benchmark ───────────────────────────────────────────────────────────


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 repetitions instead of 5")
    p.add_argument("--reps", type=int, help="repetitions (default 5, or 2 with --quick)")
    p.add_argument("--tasks", type=int, default=N_TASKS, help=f"trivial runs (default {N_TASKS})")
    p.add_argument("--sleep-runs", type=int, default=N_SLEEP,
                   help=f"runs of sleep({SLEEP}) (default {N_SLEEP})")
    p.add_argument("--workers", type=int, default=WORKERS, help=f"workers (default {WORKERS})")
    p.add_argument("--exp-dir", type=Path, default=REPO,
                   help="folder holding the exp.py to measure (default: this repository)")
    p.add_argument("--md", type=Path, default=REPO / "bench" / "run.md",
                   help="markdown report to write (default bench/run.md)")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--only", choices=("throughput", "latency"), help="run one part only")
    p.add_argument("--no-others", action="store_true",
                   help="measure exp against mp.Pool only (skip the other pools)")
    args = p.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    exp_dir = args.exp_dir.resolve()
    if not (exp_dir / "exp.py").is_file():
        sys.exit(f"bench: no exp.py in {exp_dir}")
    n, w, py = args.tasks, args.workers, sys.executable

    work = Path(tempfile.mkdtemp(prefix="exp-bench-"))
    try:
        (work / "trivial.py").write_text(TRIVIAL)
        (work / "sleeper.py").write_text(SLEEPER.format(sleep=SLEEP))
        for name, code in (("child_exp.py", CHILD_EXP), ("child_mp_pool.py", CHILD_MP_POOL),
                           ("child_ppe.py", CHILD_PPE), ("child_joblib.py", CHILD_JOBLIB)):
            (work / name).write_text(textwrap.dedent(code))
        # Byte-code caching on (into a private folder), as in any installed copy; one
        # warm-up import writes the caches so that no timed process compiles exp.py.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(exp_dir), str(work)]),
                   PYTHONPYCACHEPREFIX=str(work / "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("CUDA_VISIBLE_DEVICES", None)
        warm = "import exp, trivial, sleeper, multiprocessing.pool, concurrent.futures"
        subprocess.run([py, "-c", warm + (", joblib" if have_joblib() else "")], env=env,
                       cwd=work, check=True)

        def exp_out() -> str:
            return tempfile.mkdtemp(prefix="out-", dir=work)

        def run_exp(runnable: str, count: int) -> tuple[float, dict]:
            out = exp_out()
            try:
                return timed([py, str(work / "child_exp.py"), str(count), str(w),
                              str(work / runnable), out], env, work)
            finally:
                shutil.rmtree(out, ignore_errors=True)

        contenders = {
            "exp run_experiment": lambda: run_exp("trivial.py", n),
            "mp.Pool imap_unordered(chunksize=1)": lambda: timed(
                [py, str(work / "child_mp_pool.py"), str(n), str(w), "default"], env, work),
            "mp.Pool imap_unordered(chunksize=1), spawn": lambda: timed(
                [py, str(work / "child_mp_pool.py"), str(n), str(w), "spawn"], env, work),
            "ProcessPoolExecutor.map": lambda: timed(
                [py, str(work / "child_ppe.py"), str(n), str(w)], env, work),
        }
        if args.no_others:
            contenders = dict(list(contenders.items())[:2])
        elif have_joblib():
            contenders["joblib Parallel (loky)"] = lambda: timed(
                [py, str(work / "child_joblib.py"), str(n), str(w)], env, work)
        walls: dict[str, list[float]] = {k: [] for k in contenders}
        infos: dict[str, list[dict]] = {k: [] for k in contenders}
        sleep_walls: list[float] = []
        sleep_infos: list[dict] = []

        names = list(contenders)
        for rep in range(reps):
            if args.only != "latency":
                order = names[rep % len(names):] + names[:rep % len(names)]
                for name in order:
                    wall, info = contenders[name]()
                    walls[name].append(wall)
                    infos[name].append(info)
                    print(f"rep {rep + 1}/{reps} {name}: {wall:.3f}s "
                          f"({n / wall:,.0f} tasks/s)", file=sys.stderr)
            if args.only != "throughput":
                wall, info = run_exp("sleeper.py", args.sleep_runs)
                sleep_walls.append(wall)
                sleep_infos.append(info)
                print(f"rep {rep + 1}/{reps} sleep: span {info['journal_span']:.3f}s "
                      f"startup {info.get('startup', float('nan')):.3f}s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = render(args, argv, reps, exp_dir, walls, infos, sleep_walls, sleep_infos)
    print(report)
    if not args.no_write:
        args.md.write_text(report)
        print(f"wrote {args.md}", file=sys.stderr)
    return 0


def render(args, argv, reps, exp_dir, walls, infos, sleep_walls, sleep_infos) -> str:
    n, w = args.tasks, args.workers
    command = shlex.join(["python", "bench/bench_run.py", *(sys.argv[1:] if argv is None
                                                          else argv)])
    exp_py = exp_dir / "exp.py"
    try:
        commit = subprocess.run(["git", "-C", str(exp_dir), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(exp_dir), "status", "--porcelain", "exp.py"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    lines = [
        "# exp runner benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPU(s), {platform.platform()}, Python "
        f"{platform.python_version()}; exp.py sha256 "
        f"{hashlib.sha256(exp_py.read_bytes()).hexdigest()[:12]}"
        + (f" (commit {commit}{', modified' if dirty else ''})" if commit else "")
        + f"; {reps} repetition(s), medians (min-max).",
        "",
    ]
    if any(walls.values()):
        ref_name = "mp.Pool imap_unordered(chunksize=1)"
        ref = median(walls[ref_name])
        lines += [
            f"## Throughput: {n:,} trivial runs, {w} workers",
            "",
            "Each contender is one whole process timed from launch to exit (interpreter, "
            "imports, pool start-up, dispatch, results, shutdown). exp runs with its journal, "
            "per-run log capture, CSV and summary records (library `run_experiment`, "
            "`quiet=True`, a fresh output folder each time); its workers are fresh "
            "interpreters started with subprocess (never fork).",
            "",
            "| contender | start method | wall s | tasks/s | vs mp.Pool |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for name, values in walls.items():
            methods = {i.get("start_method", "spawn") for i in infos[name]}
            med = median(values)
            lines.append(f"| {name} | {', '.join(sorted(methods))} | {med:.3f} "
                         f"({spread(values)}) | {n / med:,.0f} | {ref / med:.2f}x |")
        exp_walls = walls["exp run_experiment"]
        ratio = ref / median(exp_walls)
        per_rep = [r / e for r, e in zip(walls[ref_name], exp_walls)]
        lines += [
            "",
            f"exp / mp.Pool throughput: **{ratio:.2f}x** (per repetition "
            f"{', '.join(f'{x:.2f}' for x in per_rep)}); target >= {THROUGHPUT_TARGET:.2f}x: "
            f"**{'met' if ratio >= THROUGHPUT_TARGET else 'missed'}**.",
        ]
        ei = infos["exp run_experiment"]
        if ei and "startup" in ei[0]:
            lines += [
                "",
                f"Inside the exp process (medians): import exp "
                f"{median([i['import'] for i in ei]):.3f}s, run_experiment "
                f"{median([i['run_experiment'] for i in ei]):.3f}s, of which worker start-up "
                f"{median([i['startup'] for i in ei]):.3f}s and dispatch after start-up "
                f"{median([i['after_startup'] for i in ei]):.3f}s.",
            ]
        pi = infos[ref_name]
        if pi:
            lines += ["", f"Inside the mp.Pool process: {median([i['in_process'] for i in pi]):.3f}s "
                      "from creating the pool to closing it."]
        lines.append("")
    if sleep_infos:
        ideal = args.sleep_runs * SLEEP / w
        span = [i["journal_span"] for i in sleep_infos]
        after = [i["after_startup"] for i in sleep_infos if "after_startup" in i]
        startup = [i["startup"] for i in sleep_infos if "startup" in i]
        busy = [i["busy"] for i in sleep_infos]
        ratio = median(span) / ideal
        lines += [
            f"## Latency: {args.sleep_runs} runs of sleep({SLEEP}), {w} workers",
            "",
            f"Ideal {ideal:.3f}s ({args.sleep_runs} x {SLEEP}s / {w}). Worker start-up "
            "(launch to every worker ready) is excluded and reported on its own line.",
            "",
            "| measure | seconds | vs ideal |",
            "| --- | ---: | ---: |",
            f"| journal: first run start to last run end | {median(span):.3f} ({spread(span)}) "
            f"| {ratio:.3f}x |",
        ]
        if after:
            lines.append(f"| driver: every worker ready to last result journaled | "
                         f"{median(after):.3f} ({spread(after)}) | {median(after) / ideal:.3f}x |")
        lines += [
            f"| sum of run seconds / {w} (time inside sleep) | {median(busy) / w:.3f} | "
            f"{median(busy) / w / ideal:.3f}x |",
        ]
        if startup:
            lines.append(f"| worker start-up (excluded above) | {median(startup):.3f} "
                         f"({spread(startup)}) | |")
        lines += [
            f"| whole process, launch to exit | {median(sleep_walls):.3f} "
            f"({spread(sleep_walls)}) | |",
            "",
            f"Journal span / ideal: **{ratio:.3f}x**; target <= {LATENCY_TARGET:.2f}x: "
            f"**{'met' if ratio <= LATENCY_TARGET else 'missed'}**.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
