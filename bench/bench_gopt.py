"""Benchmark of ``exp gopt`` against its peers, all measured in one run.

Quality: median regret (best value found minus the known minimum) over the
same seeds and budgets for random search, Optuna's default TPE sampler,
scikit-optimize's ``gp_minimize`` (defaults, and with EI), exp gopt with its
defaults (one worker) and, on Hartmann6, with 4 async workers.
Speed: the optimiser's seconds per suggestion after 40, 100 and 150 points,
exp's GP against the ``gp_minimize`` defaults.

    python bench/bench_gopt.py            # 10 seeds, several minutes
    python bench/bench_gopt.py --quick    # 3 seeds
    python bench/bench_gopt.py --exp-only # exp gopt alone, printed, nothing written

Writes the table, with the command and the machine, to bench/gopt.md. The
test functions live here at the top level with only ``math`` imported, since
exp's workers load this file as the runnable and must stay light.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# ─── test functions (the runnables) ──────────────────────────────────────────


def branin(x1: float, x2: float, **kwargs) -> float:
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_HA = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_HP = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
       [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
       [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
       [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
_HALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(**kwargs) -> float:
    x = [kwargs[f"x{i}"] for i in range(6)]
    return -sum(a * math.exp(-sum(A[j] * (x[j] - P[j]) ** 2 for j in range(6)))
                for a, A, P in zip(_HALPHA, _HA, _HP))


def ackley(**kwargs) -> float:
    x = [kwargs[f"x{i}"] for i in range(5)]
    n = len(x)
    return (-20 * math.exp(-0.2 * math.sqrt(sum(v * v for v in x) / n))
            - math.exp(sum(math.cos(2 * math.pi * v) for v in x) / n) + 20 + math.e)


#: name: (function, bounds per parameter, known minimum, evaluations)
PROBLEMS = {
    "Branin": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, 0.397887, 40),
    "Hartmann6": (hartmann6, {f"x{i}": (0.0, 1.0) for i in range(6)}, -3.32237, 60),
    "Ackley-5D": (ackley, {f"x{i}": (-5.0, 5.0) for i in range(5)}, 0.0, 60),
}

#: Median regret measured earlier, for reference (from the issue).
REFERENCE = {
    "random search": (1.31, 1.53, 6.29), "Optuna TPE": (0.117, 0.245, 3.07),
    "gp_minimize defaults": (0.0017, 0.119, 2.2), "gp_minimize EI": (0.0006, 0.070, 2.24),
}

# ─── peers ───────────────────────────────────────────────────────────────────


def _call(func, bounds, point):
    return func(**dict(zip(bounds, point)))


def peer_random(problem: str, seed: int) -> float:
    import random
    func, bounds, _, n = PROBLEMS[problem]
    rng = random.Random(seed)
    return min(_call(func, bounds, [rng.uniform(lo, hi) for lo, hi in bounds.values()])
               for _ in range(n))


def peer_optuna(problem: str, seed: int) -> float:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    func, bounds, _, n = PROBLEMS[problem]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda t: func(**{k: t.suggest_float(k, lo, hi)
                                     for k, (lo, hi) in bounds.items()}), n_trials=n)
    return study.best_value


def peer_gp_minimize(problem: str, seed: int, **kwargs) -> float:
    import warnings
    from skopt import gp_minimize
    func, bounds, _, n = PROBLEMS[problem]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gp_minimize(lambda p: _call(func, bounds, p), list(bounds.values()), n_calls=n,
                          random_state=seed, **kwargs)
    return float(res.fun)


def peer_exp_gopt(problem: str, seed: int, workers: int = 1) -> float:
    import exp
    import exp_gopt
    func, bounds, _, n = PROBLEMS[problem]
    space = exp.ParamSpace()
    for name, (lo, hi) in bounds.items():
        space.add_range(name, lo, hi)
    with tempfile.TemporaryDirectory() as out:
        res = exp_gopt.optimize(space, f"{__file__}:{func.__name__}", n=n, workers=workers,
                                seed=seed, out=out, quiet=True)
    return res.fun


PEERS = {
    "random search": peer_random,
    "Optuna TPE": peer_optuna,
    "gp_minimize defaults": peer_gp_minimize,
    "gp_minimize EI": lambda p, s: peer_gp_minimize(p, s, acq_func="EI"),
    "exp gopt defaults": peer_exp_gopt,
}

# ─── overhead ────────────────────────────────────────────────────────────────


def _hartmann_data(n: int, seed: int):
    import numpy as np
    rng = np.random.RandomState(seed)
    X = rng.rand(n + 1, 6).tolist()
    y = [hartmann6(**{f"x{i}": v for i, v in enumerate(p)}) for p in X]
    return X, y


def overhead_gp_minimize(n: int, seed: int) -> float:
    """One suggestion as gp_minimize makes it (tell fits and optimises, ask returns)."""
    import warnings
    from skopt import Optimizer
    from skopt.utils import cook_estimator
    X, y = _hartmann_data(n, seed)
    dims = [(0.0, 1.0)] * 6
    est = cook_estimator("GP", space=dims, random_state=seed, noise="gaussian")
    opt = Optimizer(dims, est, acq_func="gp_hedge", acq_optimizer="lbfgs", random_state=seed,
                    n_initial_points=10, acq_optimizer_kwargs={"n_points": 10000,
                                                                "n_restarts_optimizer": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.tell(X[:-1], y[:-1])
        t = time.perf_counter()
        opt.tell(X[-1], y[-1])
        opt.ask()
    return time.perf_counter() - t


def overhead_exp(n: int, seed: int) -> float:
    """One suggestion of exp's GP (fit once on the new data, then the acquisition)."""
    import exp_gopt
    from skopt.space import Real
    X, y = _hartmann_data(n, seed)
    opt = exp_gopt._Optimizer([Real(0.0, 1.0, name=f"x{i}") for i in range(6)], seed=seed)
    for p, v in zip(X[:-1], y[:-1]):
        opt.tell(p, v)
    opt.ask()  # the fit a long search would have done before
    opt.tell(X[-1], y[-1])
    t = time.perf_counter()
    opt.ask()
    return time.perf_counter() - t


# ─── running and reporting ───────────────────────────────────────────────────


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 10, --quick 3)")
    parser.add_argument("--exp-only", action="store_true",
                        help="only exp gopt (regrets, async, overhead); print, write nothing")
    parser.add_argument("--out", default=str(HERE / "gopt.md"), help="markdown table to write")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    seeds = range(args.seeds or (3 if args.quick else 10))
    t_start = time.time()

    regrets: dict[str, dict[str, float]] = {}
    peers = {"exp gopt defaults": peer_exp_gopt} if args.exp_only else PEERS
    for peer, fn in peers.items():
        for problem, (_, _, fmin, _) in PROBLEMS.items():
            t = time.perf_counter()
            values = [fn(problem, s) - fmin for s in seeds]
            regrets.setdefault(peer, {})[problem] = statistics.median(values)
            print(f"{peer:22} {problem:10} median regret {statistics.median(values):.4g} "
                  f"({time.perf_counter() - t:.0f}s)", flush=True)
    async4 = statistics.median(peer_exp_gopt("Hartmann6", s, workers=4) - PROBLEMS["Hartmann6"][2]
                               for s in seeds)
    print(f"exp gopt 4 async workers Hartmann6 median regret {async4:.4g}", flush=True)

    overhead = {}
    for n in (40, 100, 150):
        overhead[n] = (statistics.median(overhead_gp_minimize(n, s) for s in range(3)),
                       statistics.median(overhead_exp(n, s) for s in range(3)))
        print(f"seconds per suggestion at {n} points: gp_minimize {overhead[n][0]:.3f}, "
              f"exp {overhead[n][1]:.3f}", flush=True)

    if args.exp_only:
        return 0
    text = _markdown(args, len(seeds), regrets, async4, overhead, time.time() - t_start)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


def _markdown(args, n_seeds, regrets, async4, overhead, seconds) -> str:
    import numpy
    import optuna
    import skopt
    names = list(PROBLEMS)
    budgets = " / ".join(f"{p} {PROBLEMS[p][3]}" for p in names)
    cmd = "python bench/bench_gopt.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds else "")
    lines = [
        "## exp gopt against its peers",
        "",
        f"`{cmd}` ({n_seeds} seeds; evaluations: {budgets}; {seconds / 60:.0f} min), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"scikit-optimize {skopt.__version__}, Optuna {optuna.__version__}, "
        f"numpy {numpy.__version__}.",
        "",
        "Median regret (best found minus the known minimum; lower is better):",
        "",
        "| method | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for peer, row in regrets.items():
        lines.append(f"| {peer} | " + " | ".join(f"{row[p]:.3g}" for p in names) + " |")
    lines += ["", "Measured earlier, for reference: " + "; ".join(
        f"{peer} {' / '.join(map(str, ref))}" for peer, ref in REFERENCE.items()) + ".", ""]
    ours, tpe, gpm = regrets["exp gopt defaults"], regrets["Optuna TPE"], \
        regrets["gp_minimize defaults"]
    for p in names:
        ok = ours[p] <= tpe[p] / 2 and ours[p] <= gpm[p]
        lines.append(f"- {p}: exp gopt {ours[p]:.3g}, target at most half of TPE "
                     f"({tpe[p] / 2:.3g}) and at most gp_minimize defaults ({gpm[p]:.3g}): "
                     f"{'met' if ok else 'MISSED'}")
    seq = ours["Hartmann6"]
    lines.append(f"- Hartmann6 with 4 async workers: {async4:.3g} against {seq:.3g} "
                 f"sequential ({async4 / seq:.2f}x; target within 1.5x: "
                 f"{'met' if async4 <= 1.5 * seq else 'MISSED'})")
    lines += ["", "Optimiser seconds per suggestion (Hartmann6, median of 3):", "",
              "| points told | gp_minimize defaults | exp gopt GP |", "| ---: | ---: | ---: |"]
    for n, (theirs, mine) in overhead.items():
        lines.append(f"| {n} | {theirs:.3f} | {mine:.3f} |")
    lines.append("")
    lines.append(f"Target: exp at or under 0.3 s at 150 points: "
                 f"{'met' if overhead[150][1] <= 0.3 else 'MISSED'}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
