"""Benchmark of exp gopt's multi-objective search against Optuna's samplers, all in one run.

Problems (two objectives, both minimised; 100 evaluations, 10 seeds):
- DTLZ2 on 6 variables in [0, 1]: g = sum_{i=2..6} (x_i - 0.5)^2,
  f1 = (1 + g) cos(pi x1 / 2), f2 = (1 + g) sin(pi x1 / 2); reference point
  (1.1, 1.1), best possible hypervolume 1.21 - pi / 4 = 0.4246;
- ZDT1 on 6 variables in [0, 1]: f1 = x1, g = 1 + 9/5 sum_{i=2..6} x_i,
  f2 = g (1 - sqrt(f1 / g)); reference (1.1, 6.0), best possible 6.6 - 1/3 = 6.267;
- BNH (constrained), x1 in [0, 5], x2 in [0, 3]: f1 = 4 x1^2 + 4 x2^2,
  f2 = (x1 - 5)^2 + (x2 - 5)^2, subject to c1 = (x1 - 5)^2 + x2^2 <= 25 and
  c2 = (x1 - 8)^2 + (x2 + 3)^2 >= 7.7; reference (140, 50); the best possible
  hypervolume is that of a 2001 x 1201 grid's feasible front (computed here).

Methods (seed S is the seed of each sampler or search):
- exp gopt defaults (GP surrogate, EI; with two objectives exp runs ParEGO,
  and with constraints a GP of each constraint), 1 worker;
- exp gopt with 4 async workers (the default ``sync=False``). This machine has
  2 cores, so the runnable of that configuration sleeps 0.05 s per evaluation
  (``*_slow`` below) for the 4 workers to really overlap; otherwise identical;
- Optuna ``RandomSampler``, ``NSGAIISampler()`` (default population, 50) and
  ``TPESampler()`` with Optuna's defaults: on a multi-objective study that is
  the independent TPE (``multivariate`` left None, which Optuna resolves to
  False with several objectives), 10 random startup trials, constant liar on.
  On BNH, NSGA-II and TPE get ``constraints_func`` (c1 - 25 and 7.7 - c2, met
  at <= 0; Optuna 5.0 deprecates it for ``Trial.set_constraint``, its
  FutureWarning is silenced); random search has none.

Score: every method's hypervolume is computed here the same way, with
``exp.hypervolume`` at the fixed reference point of the problem, over the
non-dominated feasible set of ALL the points the method evaluated (objective
values and feasibility recomputed from the evaluated parameters, and checked
against what exp recorded); not ``GoptResult.hypervolume``, whose reference
point moves with what a search saw.

Time per suggestion: exp, the median of ``GoptResult.optimizer_seconds`` (the
optimiser's own time for each suggestion after the initial design, apart from
run time); Optuna, per trial the time of ``study.ask()``, the
``suggest_float`` calls (where an independent sampler samples) and
``study.tell()``, i.e. everything but the objective. Both also as the median
of the last 10 suggestions (the cost near 100 points).

Targets: exp's median hypervolume at least 1.1x Optuna TPE's on DTLZ2 and ZDT1;
exp with 4 async workers at least Optuna TPE's there.

    python bench/bench_multi.py                      # the full benchmark: 10 seeds, all methods
    python bench/bench_multi.py --quick              # 3 seeds
    python bench/bench_multi.py --seeds 2 --n 40 --problems DTLZ2 --methods exp,tpe

Not in the default run: ``--methods exp4sync``, exp with the same 4 workers
and 0.05 s runs but ``sync=True`` (batches of 4), to tell the asynchronous
pending points' part from the parallelism's.

By default exp is benchmarked as committed (``git show HEAD:exp.py`` and
``exp_gopt.py`` copied to a temporary folder and imported from there, so an
edit of the working tree during a run changes nothing); ``--worktree`` copies
the files as they are instead. Tasks run one at a time (exp's evaluations run
in its own worker processes). Writes the tables, with the command, the machine and the versions, to
bench/multi.md (``--out``); ``--json FILE`` keeps every (method, problem,
seed) result. The runnables live here at the top level with only the standard
library imported, since exp's workers load this file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THIS = str(Path(__file__).resolve())

PAUSE = 0.05  # seconds each evaluation sleeps in the 4-worker configuration

# ─── the problems (the runnables) ────────────────────────────────────────────


def _dtlz2(x: list[float]) -> tuple[list[float], list[float]]:
    g = sum((v - 0.5) ** 2 for v in x[1:])
    return [(1 + g) * math.cos(math.pi * x[0] / 2), (1 + g) * math.sin(math.pi * x[0] / 2)], []


def _zdt1(x: list[float]) -> tuple[list[float], list[float]]:
    f1 = x[0]
    g = 1 + 9 / (len(x) - 1) * sum(x[1:])
    return [f1, g * (1 - math.sqrt(f1 / g))], []


def _bnh(x: list[float]) -> tuple[list[float], list[float]]:
    x1, x2 = x
    return ([4 * x1 ** 2 + 4 * x2 ** 2, (x1 - 5) ** 2 + (x2 - 5) ** 2],
            [(x1 - 5) ** 2 + x2 ** 2, (x1 - 8) ** 2 + (x2 + 3) ** 2])


def _result(fn, kwargs: dict, names: list[str]) -> dict:
    f, c = fn([float(kwargs[k]) for k in names])
    out = {"f1": f[0], "f2": f[1]}
    out.update({f"c{i + 1}": v for i, v in enumerate(c)})
    return out


X6 = [f"x{i}" for i in range(1, 7)]


def dtlz2(**kwargs) -> dict:
    return _result(_dtlz2, kwargs, X6)


def zdt1(**kwargs) -> dict:
    return _result(_zdt1, kwargs, X6)


def bnh(**kwargs) -> dict:
    return _result(_bnh, kwargs, ["x1", "x2"])


def dtlz2_slow(**kwargs) -> dict:
    time.sleep(PAUSE)
    return dtlz2(**kwargs)


def zdt1_slow(**kwargs) -> dict:
    time.sleep(PAUSE)
    return zdt1(**kwargs)


def bnh_slow(**kwargs) -> dict:
    time.sleep(PAUSE)
    return bnh(**kwargs)


#: the constraints as exp takes them, and as slacks (met at <= 0) for Optuna and scoring
BNH_CONSTRAINTS = ["c1 <= 25", "c2 >= 7.7"]


def _bnh_slacks(c: list[float]) -> list[float]:
    return [c[0] - 25.0, 7.7 - c[1]]


#: name: (function, runnable name, bounds, reference point, best possible hypervolume
#: (None: computed), exp's constraints, slacks of the constraint values)
PROBLEMS = {
    "DTLZ2": (_dtlz2, "dtlz2", {k: (0.0, 1.0) for k in X6}, (1.1, 1.1),
              1.21 - math.pi / 4, [], None),
    "ZDT1": (_zdt1, "zdt1", {k: (0.0, 1.0) for k in X6}, (1.1, 6.0), 6.6 - 1 / 3, [], None),
    "BNH": (_bnh, "bnh", {"x1": (0.0, 5.0), "x2": (0.0, 3.0)}, (140.0, 50.0), None,
            BNH_CONSTRAINTS, _bnh_slacks),
}

#: Median hypervolumes measured earlier with Optuna, for reference (from the issue).
REFERENCE = {"Optuna random": {"DTLZ2": 0.162, "ZDT1": 4.42},
             "Optuna NSGA-II": {"DTLZ2": 0.161, "ZDT1": 4.22},
             "Optuna TPE": {"DTLZ2": 0.300, "ZDT1": 5.26}}


def evaluate(problem: str, params: dict) -> tuple[list[float], bool]:
    """(objective values, feasible) of a configuration, recomputed from its parameters."""
    fn, _, bounds, _, _, _, slacks = PROBLEMS[problem]
    f, c = fn([float(params[k]) for k in bounds])
    return f, (all(s <= 0 for s in slacks(c)) if slacks else True)


def score(problem: str, points: list[tuple[list[float], bool]]) -> float:
    """Hypervolume of the feasible points at the problem's fixed reference point."""
    import exp
    ref = PROBLEMS[problem][3]
    return exp.hypervolume([f for f, ok in points if ok], list(ref))


def best_possible(problem: str) -> float:
    """The known best hypervolume, or that of a fine grid's feasible front (BNH)."""
    known = PROBLEMS[problem][4]
    if known is not None:
        return known
    import exp
    import numpy as np
    (lo1, hi1), (lo2, hi2) = PROBLEMS[problem][2].values()
    x1, x2 = np.meshgrid(np.linspace(lo1, hi1, 2001), np.linspace(lo2, hi2, 1201))
    x1, x2 = x1.ravel(), x2.ravel()
    f1, f2 = 4 * x1 ** 2 + 4 * x2 ** 2, (x1 - 5) ** 2 + (x2 - 5) ** 2
    ok = ((x1 - 5) ** 2 + x2 ** 2 <= 25) & ((x1 - 8) ** 2 + (x2 + 3) ** 2 >= 7.7)
    f1, f2 = f1[ok], f2[ok]
    order = np.lexsort((f2, f1))
    f1, f2 = f1[order], f2[order]
    keep = f2 < np.minimum.accumulate(np.concatenate([[np.inf], f2[:-1]]))  # the staircase
    return exp.hypervolume(np.column_stack([f1[keep], f2[keep]]).tolist(),
                           list(PROBLEMS[problem][3]))


# ─── the methods ─────────────────────────────────────────────────────────────


def run_exp(problem: str, seed: int, n: int, work: str, workers: int = 1,
            sync: bool = False) -> dict:
    import exp_gopt
    _, func, bounds, _, _, constraints, _ = PROBLEMS[problem]
    space = Path(work) / f"{problem}.toml"
    space.write_text("".join(f'[{k}]\ntype = "range"\nbounds = [{lo!r}, {hi!r}]\n'
                             for k, (lo, hi) in bounds.items()), encoding="utf-8")
    runnable = f"{THIS}:{func}{'_slow' if workers > 1 else ''}"
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = exp_gopt.optimize(space, runnable, n=n, workers=workers, seed=seed, out=work,
                                name=f"{problem}-w{workers}{'-sync' if sync else ''}-{seed}", quiet=True,
                                objectives={"f1": "min", "f2": "min"},
                                constraints=constraints, sync=sync, fresh=True)
    wall = time.perf_counter() - t
    points, statuses, mismatch = [], {}, 0
    for e in res.evaluations:
        statuses[e.status] = statuses.get(e.status, 0) + 1
        if e.status != "ok" or not e.values:
            continue
        f, ok = evaluate(problem, e.params)
        if (max(abs(a - b) for a, b in zip(f, (e.values["f1"], e.values["f2"]))) > 1e-9
                or (constraints and bool(e.feasible) != ok)):
            mismatch += 1
        points.append((f, ok))
    seen: dict[str, int] = {}
    for w in caught:
        key = f"{w.category.__name__}: {str(w.message).splitlines()[0][:120]}"
        seen[key] = seen.get(key, 0) + 1
    return {"points": points, "seconds": list(res.optimizer_seconds), "wall": wall,
            "run_seconds": sum(e.seconds or 0.0 for e in res.evaluations),
            "statuses": statuses, "mismatch": mismatch, "warnings": seen,
            "exp_hypervolume": res.hypervolume, "completed": res.completed}


def run_optuna(problem: str, seed: int, n: int, sampler: str) -> dict:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn, _, bounds, _, _, _, slacks = PROBLEMS[problem]

    def constraints_func(trial):
        return trial.user_attrs["slacks"]

    kw = {"seed": seed}
    if slacks and sampler != "random":
        kw["constraints_func"] = constraints_func
    samplers = {"random": optuna.samplers.RandomSampler, "nsga2": optuna.samplers.NSGAIISampler,
                "tpe": optuna.samplers.TPESampler}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)  # constraints_func: deprecated in 5.0
        study = optuna.create_study(directions=["minimize", "minimize"],
                                    sampler=samplers[sampler](**kw))
        points, seconds = [], []
        t0 = time.perf_counter()
        for _ in range(n):
            a = time.perf_counter()
            trial = study.ask()
            x = [trial.suggest_float(k, lo, hi) for k, (lo, hi) in bounds.items()]
            b = time.perf_counter()
            f, c = fn(x)
            if slacks:
                trial.set_user_attr("slacks", slacks(c))
            c_ = time.perf_counter()
            study.tell(trial, f)
            seconds.append((b - a) + (time.perf_counter() - c_))
            points.append((f, all(s <= 0 for s in slacks(c)) if slacks else True))
    return {"points": points, "seconds": seconds, "wall": time.perf_counter() - t0}


#: name: (key for --methods, runner)
METHODS = {
    "exp gopt (1 worker)": ("exp", lambda p, s, n, w: run_exp(p, s, n, w)),
    "exp gopt (4 async workers, 0.05 s runs)": ("exp4", lambda p, s, n, w: run_exp(p, s, n, w, 4)),
    "Optuna random": ("random", lambda p, s, n, w: run_optuna(p, s, n, "random")),
    "Optuna NSGA-II": ("nsga2", lambda p, s, n, w: run_optuna(p, s, n, "nsga2")),
    "Optuna TPE": ("tpe", lambda p, s, n, w: run_optuna(p, s, n, "tpe")),
    # not in the default run (--methods exp4sync): the same 4 workers in batches
    "exp gopt (4 sync workers, 0.05 s runs)": (
        "exp4sync", lambda p, s, n, w: run_exp(p, s, n, w, 4, sync=True)),
}
DEFAULT = ["exp", "exp4", "random", "nsga2", "tpe"]
EXP1, EXP4, TPE = "exp gopt (1 worker)", "exp gopt (4 async workers, 0.05 s runs)", "Optuna TPE"

# ─── running and reporting ───────────────────────────────────────────────────


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def _list(text: str, choices: list[str]) -> list[str]:
    picked = [t.strip() for t in text.replace(",", " ").split() if t.strip()]
    lower = {c.lower(): c for c in choices}
    bad = [p for p in picked if p.lower() not in lower]
    if bad:
        raise SystemExit(f"unknown: {', '.join(bad)} (choose from {', '.join(choices)})")
    return [lower[p.lower()] for p in picked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    parser.add_argument("--seeds", type=int, help="number of seeds, 0..S-1 (default 10, --quick 3)")
    parser.add_argument("--n", type=int, default=100, help="evaluations per search (default 100)")
    parser.add_argument("--problems", default=",".join(PROBLEMS),
                        help=f"comma-separated, of {', '.join(PROBLEMS)} (default all)")
    keys = [k for k, _ in METHODS.values()]
    parser.add_argument("--methods", default=",".join(DEFAULT),
                        help=f"comma-separated, of {', '.join(keys)} (default "
                             f"{','.join(DEFAULT)})")
    parser.add_argument("--out", default=str(HERE / "multi.md"), help="markdown to write")
    parser.add_argument("--json", help="also write every (method, problem, seed) result here")
    parser.add_argument("--worktree", action="store_true",
                        help="benchmark exp.py and exp_gopt.py as they are, not as committed")
    args = parser.parse_args()
    problems = _list(args.problems, list(PROBLEMS))
    wanted = _list(args.methods, keys)
    methods = [m for m, (k, _) in METHODS.items() if k in wanted]
    seeds = list(range(args.seeds or (3 if args.quick else 10)))
    t_start = time.time()
    load = [os.getloadavg()[0]]  # the machine may be shared: the 1-minute load, start and end

    results: dict[str, dict[str, dict[int, dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-multi-") as work:
        exp_what = _exp_snapshot(args.worktree, Path(work) / "exp")
        import exp
        print(f"exp {exp.__version__} from {exp.__file__}: {exp_what}", flush=True)
        for problem in problems:
            for method in methods:
                runner = METHODS[method][1]
                t = time.perf_counter()
                for s in seeds:
                    out = runner(problem, s, args.n, work)
                    out["hv"] = score(problem, out["points"])
                    out["feasible"] = sum(ok for _, ok in out["points"])
                    results.setdefault(method, {}).setdefault(problem, {})[s] = out
                    extra = ""
                    if "statuses" in out:
                        extra = (f", statuses {out['statuses']}, wall {out['wall']:.1f}s, "
                                 f"optimiser {sum(out['seconds']):.1f}s")
                        if out["warnings"]:
                            extra += f", warnings {sum(out['warnings'].values())}"
                        if out["mismatch"]:
                            extra += f", {out['mismatch']} MISMATCHED evaluations"
                    print(f"  {method:40} {problem:6} seed {s}: hv {out['hv']:.4g}, "
                          f"feasible {out['feasible']}/{len(out['points'])}, "
                          f"s/suggestion {statistics.median(out['seconds']):.4f}{extra}",
                          flush=True)
                hvs = [results[method][problem][s]["hv"] for s in seeds]
                print(f"{method:42} {problem:6} median hv {statistics.median(hvs):.4g} "
                      f"({time.perf_counter() - t:.0f}s)", flush=True)
    seconds = time.time() - t_start
    load.append(os.getloadavg()[0])
    best = {p: best_possible(p) for p in problems}
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "best": best, "load": load,
                                               "results": results}, indent=1), encoding="utf-8")
    text = _markdown(args, seeds, problems, methods, results, best, seconds, load, exp_what)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


def _exp_snapshot(worktree: bool, into: Path) -> str:
    """Copy exp.py and exp_gopt.py (HEAD's, or the working tree's) into ``into`` and import
    exp from there, so an edit of the working tree during a run changes nothing; says what
    was copied."""
    into.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "exp.py", "exp_gopt.py"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for name in ("exp.py", "exp_gopt.py"):
        if worktree:
            (into / name).write_bytes((ROOT / name).read_bytes())
        else:
            (into / name).write_bytes(subprocess.run(
                ["git", "show", f"{commit}:{name}"], cwd=ROOT, check=True,
                capture_output=True).stdout)
    sys.path.insert(0, str(into))
    if worktree:
        return f"the working tree at commit {commit}" + (
            " (exp.py or exp_gopt.py modified since the commit)" if dirty else "")
    return f"commit {commit} (`git show {commit}:exp.py` and `exp_gopt.py`)"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _markdown(args, seeds, problems, methods, results, best, seconds, load, exp_what) -> str:
    import exp
    import numpy
    import optuna
    import skopt
    cmd = "python bench/bench_multi.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds else "") + (
        f" --n {args.n}" if args.n != 100 else "") + (
        f" --problems {args.problems}" if args.problems != ",".join(PROBLEMS) else "") + (
        f" --methods {args.methods}" if args.methods != ",".join(DEFAULT)
        else "") + (" --worktree" if args.worktree else "")
    med = {m: {p: statistics.median(results[m][p][s]["hv"] for s in seeds) for p in problems}
           for m in methods}
    lines = [
        "## exp gopt's multi-objective search against Optuna",
        "",
        f"`{cmd}` ({len(seeds)} seeds, {args.n} evaluations per search; {seconds / 60:.0f} min, "
        f"one task at a time; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at "
        f"the end), exp from {exp_what}; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, exp {exp.__version__}, scikit-optimize "
        f"{skopt.__version__}, Optuna {optuna.__version__}, numpy {numpy.__version__}.",
        "",
        "Hypervolume (higher is better) of each method's feasible non-dominated evaluations at "
        "a fixed reference point: DTLZ2 (1.1, 1.1), ZDT1 (1.1, 6.0), BNH (140, 50). "
        "Best possible: " + ", ".join(f"{p} {best[p]:.4g}" for p in problems) + ". "
        "Seconds per suggestion: the median over the search (exp: the optimiser's own time per "
        "model-based suggestion; Optuna: ask, suggest and tell), then the median of the last 10.",
        "",
        "| method | problem | HV median | q1 - q3 | / best | / TPE | s/suggestion | "
        "last 10 | feasible |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in problems:
        for m in methods:
            rs = [results[m][p][s] for s in seeds]
            q1, q2, q3 = _quartiles([r["hv"] for r in rs])
            ratio = f"{q2 / med[TPE][p]:.2f}" if TPE in med and med[TPE][p] > 0 else ""
            per = statistics.median(statistics.median(r["seconds"]) for r in rs)
            last = statistics.median(statistics.median(r["seconds"][-10:]) for r in rs)
            feas = statistics.median(r["feasible"] for r in rs)
            lines.append(f"| {m} | {p} | {_fmt(q2)} | {_fmt(q1)} - {_fmt(q3)} | "
                         f"{q2 / best[p]:.2f} | {ratio} | {per:.4f} | {last:.4f} | "
                         f"{feas:g}/{args.n} |")
    lines += ["", "Feasible: median over seeds of the evaluations that met every constraint "
              "(all of them without constraints).", ""]
    refs = [f"{m} " + " / ".join(f"{p} {v}" for p, v in row.items())
            for m, row in REFERENCE.items()]
    lines += ["Measured earlier with Optuna, for reference: " + "; ".join(refs) + ".", ""]

    lines += ["Per seed (hypervolume):", "",
              "| method | problem | " + " | ".join(str(s) for s in seeds) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in seeds) + " |"]
    for p in problems:
        for m in methods:
            lines.append(f"| {m} | {p} | " + " | ".join(_fmt(results[m][p][s]["hv"])
                                                      for s in seeds) + " |")
    lines.append("")

    exp_methods = [m for m in methods if m.startswith("exp")]
    if exp_methods:
        lines += ["exp's runs (medians over seeds): wall time of a search, the optimiser's "
                  "part of it, the evaluations' own time, and what else happened.", "",
                  "| method | problem | wall s | optimiser s | runs s | statuses (all seeds) | "
                  "warnings (all seeds) |", "| --- | --- | ---: | ---: | ---: | --- | --- |"]
        for m in exp_methods:
            for p in problems:
                rs = [results[m][p][s] for s in seeds]
                statuses: dict[str, int] = {}
                warned: dict[str, int] = {}
                for r in rs:
                    for k, v in r["statuses"].items():
                        statuses[k] = statuses.get(k, 0) + v
                    for k, v in r["warnings"].items():
                        warned[k] = warned.get(k, 0) + v
                mism = sum(r["mismatch"] for r in rs)
                lines.append(
                    f"| {m} | {p} | {statistics.median(r['wall'] for r in rs):.1f} | "
                    f"{statistics.median(sum(r['seconds']) for r in rs):.1f} | "
                    f"{statistics.median(r['run_seconds'] for r in rs):.2f} | "
                    + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
                    + (f", {mism} values differing from recomputed" if mism else "") + " | "
                    + ("; ".join(f"{k} ({v})" for k, v in sorted(warned.items())) or "none")
                    + " |")
        lines.append("")

    lines += ["### Targets", ""]
    for p in [q for q in ("DTLZ2", "ZDT1") if q in problems]:
        if TPE not in med:
            break
        tpe = med[TPE][p]
        if EXP1 in med:
            ok = med[EXP1][p] >= 1.1 * tpe
            lines.append(f"- {p}: exp gopt {_fmt(med[EXP1][p])}, at least 1.1x Optuna TPE "
                         f"({_fmt(tpe)}, so {_fmt(1.1 * tpe)}): {med[EXP1][p] / tpe:.2f}x, "
                         f"{'met' if ok else 'MISSED'}")
        if EXP4 in med:
            ok = med[EXP4][p] >= tpe
            lines.append(f"- {p}: exp gopt with 4 async workers {_fmt(med[EXP4][p])}, at least "
                         f"Optuna TPE ({_fmt(tpe)}): {med[EXP4][p] / tpe:.2f}x, "
                         f"{'met' if ok else 'MISSED'}")
    lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
