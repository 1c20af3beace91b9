"""Benchmark of exp's early stopping (``--prune``) against Optuna's pruners, all in one run.

Workload: a small MLP (scikit-learn's ``MLPClassifier``, one hidden layer,
Adam, batch 256) trained epoch by epoch with ``partial_fit`` on a
``make_classification`` data set of 20,000 rows (20 features, 10 informative,
4 clusters per class: 12,000 train / 4,000 validation / 4,000 test rows,
standardised on the training rows), validation error after each epoch, at
most 27 epochs. Four hyper-parameters: learning rate (log-uniform on
[1e-4, 1e-1]), L2 penalty ``alpha`` (log-uniform on [1e-6, 1e-1]), hidden
width (integer, log-uniform on [4, 64]) and activation (categorical: relu,
tanh, logistic). The curves cross (a logistic net with a high learning rate
starts slowly and ends best), so pruning on early epochs has a real price.

Training is deterministic per (configuration, data seed): the data set is
``make_classification(random_state=seed)`` and the model's ``random_state`` is
fixed, one BLAS thread everywhere; so a configuration's curve is the same in
every method, and the error of a configuration trained to 27 epochs is the same
number wherever it was trained. Benchmark seed S is the data set's seed and
the seed of every sampler or optimiser, so within a seed every method sees the
same data set.

Budget and score. Every method gets 810 epochs (30 full trainings) per seed,
one worker. Epochs counted are the epochs actually trained: each training
appends a line to a ledger when it ends (exp) or to a list (Optuna), in
execution order. A method runs until its ledger reaches the budget (a run
that starts once it is reached fails at once, untrained; Optuna's study is
stopped). Its trials are then taken in execution order while the cumulative
epochs stay within 810 (the first trial that would cross it ends the
prefix). The method's best configuration is the trial of that prefix that
trained the full 27 epochs with the lowest final validation error; its score
is that error (and, as a check on over-fitting the validation set by trying
many configurations, its test error). A method with no full-length trial in
its prefix would be scored by training its best configuration (by last
reported value) to 27 epochs; the table says when that happened.

Contenders (one worker each):
- Optuna ``RandomSampler`` and ``TPESampler`` without pruning (random search
  with 810 epochs = 30 configurations is also the reference of target 2);
- Optuna TPE and random with ``MedianPruner()`` (defaults: 5 startup trials,
  no warm-up), ``SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)``
  and ``HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)``:
  the same rungs (1, 3, 9) and eta as exp's;
- ``exp run --prune asha`` on N configurations drawn at random beforehand by
  exp's own ``ParamSpace.sample_space()`` (seeded). exp's ``random``
  parameters make a product grid, not N independent draws, so the grid is one
  ``list`` parameter of the N configurations as JSON strings;
- ``exp gopt --prune hyperband`` and ``--prune asha`` (GP, EI, defaults), each
  with ``pruned_as="last"`` and ``"skip"``; ``n`` is an estimate of what the
  budget buys, and the search is resumed with a larger ``n`` (exp gopt resumes
  from its journal) while the budget is not spent;
- extra rows (not in the targets): ``exp run --prune median`` and
  ``--prune hyperband`` on the same random configurations, and ``exp run
  --prune asha`` with a runnable that waits for the verdict after each report
  (it polls ``exp.should_stop()`` for up to 20 ms before the next epoch).
  exp sends a stop back asynchronously and a run sees it at its next
  ``report``, i.e. after it has trained one more epoch; Optuna's
  ``should_prune()`` answers at once. The ledger counts that extra epoch.

Optuna objectives skip ``should_prune()`` after the 27th epoch (nothing is
left to save; Optuna's successive halving would otherwise mark a fully
trained trial pruned at its rung 27).

Targets:
1. exp's best configuration (median over seeds of the validation error) at
   least as good as the best Optuna pruner's, at 810 epochs; also given per
   seed (paired: same data set).
2. ``exp run --prune asha`` reaches the median (over seeds) error of
   full-budget random search with at most a third of the epochs: per seed,
   the epochs of the shortest prefix of its ledger whose best full-length
   configuration is at or below that error; median over seeds, as a fraction
   of 810 (a seed that never reaches it counts as infinite).
3. Cost and latency, measured in real local runs of exp with ``--prune asha``
   and nothing else running (after the contenders):
   - ``exp.report`` cost: one run calls ``exp.report(i, err=0.5)`` 100,000
     times (steps 1, 2, ...; the only run, so never pruned) and times each call
     with ``time.perf_counter_ns``; the median per call (and the mean of the
     whole loop, the 99th percentile, and the cost of the timer alone) is its
     result; also counted, the calls that found the driver's socket full (the
     kernel queues few datagrams: net.unix.max_dgram_qlen, 10 here) and left
     reports in exp's buffer. Three such runs; the one with the median median
     is shown. Target: median at most 20 us.
   - stop latency: configuration 0 reports err 0 at steps 0.1, 0.2, ... 3.0;
     then 20 configurations k = 1..20 report err 1 + k/100 every 1 ms (steps
     0.1, 0.2, ...), each worse than all before it, so the driver stops each
     at its step-1 rung (its 10th report). Each run writes
     ``time.time()`` at the moment its ``exp.report`` raises ``exp.Pruned``.
     Latency = that time minus the ``time`` of the deciding report (the
     journal's report line at step 1.0, stamped by the run when it called
     ``report``): transit to the driver, the decision, the stop datagram, and
     the wait for the run's next report (up to 1 ms). Also given: the part
     after the driver's decision, timestamped in the driver by wrapping
     ``exp._Pruner.report`` in this process (measurement only; exp is not
     changed). Target: max at most 50 ms.

By default exp is benchmarked as committed (``git show HEAD:exp.py`` and
``exp_gopt.py``, copied to a temporary folder and imported from there, so an
edit of the working tree during a run changes nothing); ``--worktree``
copies the files as they are instead. Independent (method, seed) tasks run
``--jobs`` at a time (default 2; each single-threaded, and epochs, not
seconds, are the budget); target 3 runs alone afterwards, once the 1-minute
load average is below 1 (waiting up to 10 minutes; the report gives the load
it started at, since the machine may be shared). ``--keep DIR`` keeps the
journals and ledgers, and ``DIR/results.json`` with the scores.

    python bench/bench_prune.py --seeds 10      # the full benchmark (33 min on 2 shared cores)
    python bench/bench_prune.py --quick         # 2 seeds, fewer methods: a smoke test
    python bench/bench_prune.py --replay --keep DIR  # exp's pruners replayed over full curves

``--replay`` trains the first 330 configurations exp run draws per seed to 27
epochs once (cached in DIR) and tells ``exp._Pruner`` itself their curves, in
order, under the same budget: other rungs, eta, schedulers, and a stop that
arrives before the next epoch, each without a new run of exp; it checks
itself by reproducing the ``exp run`` rows, and compares with Optuna's
``SuccessiveHalvingPruner`` on the same curves. It adds a section to --out.

Writes the tables, with the command, the machine and the commit, to
bench/prune.md. The runnables live here at the top level with only the
standard library imported, since exp's workers load this file.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THIS = str(Path(__file__).resolve())

EPOCHS = 27  # max_step
BUDGET = 30 * EPOCHS  # 810 epochs: the price of 30 full trainings
ETA = 3
LR = (1e-4, 1e-1)
ALPHA = (1e-6, 1e-1)
WIDTH = (4, 64)  # both ends included
ACTIVATIONS = ["relu", "tanh", "logistic"]
ROWS, TRAIN, VALID = 20_000, 12_000, 4_000  # the rest (4,000) is the test split
BATCH = 256
WAIT_VERDICT = 0.020  # seconds the "waits for the verdict" runnable polls should_stop()

# ─── the workload (runs in exp's workers and in Optuna's objective) ──────────

_DATA: dict[int, tuple] = {}


def _data(seed: int) -> tuple:
    """The data set of a seed: (X_train, y_train, X_valid, y_valid, X_test, y_test)."""
    if seed not in _DATA:
        from sklearn.datasets import make_classification
        from sklearn.preprocessing import StandardScaler
        X, y = make_classification(n_samples=ROWS, n_features=20, n_informative=10,
                                   n_redundant=4, n_clusters_per_class=4, flip_y=0.02,
                                   class_sep=1.0, random_state=seed)
        scaler = StandardScaler().fit(X[:TRAIN])
        X = scaler.transform(X)
        a, b = TRAIN, TRAIN + VALID
        _DATA[seed] = (X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])
    return _DATA[seed]


def curve(lr: float, alpha: float, width: int, activation: str, data_seed: int):
    """Train one configuration epoch by epoch: yields (validation error, test error)."""
    import warnings
    from sklearn.neural_network import MLPClassifier
    Xtr, ytr, Xva, yva, Xte, yte = _data(data_seed)
    model = MLPClassifier(hidden_layer_sizes=(int(width),), activation=activation,
                          solver="adam", learning_rate_init=lr, alpha=alpha, batch_size=BATCH,
                          random_state=0)
    for _ in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(Xtr, ytr, classes=[0, 1])
        yield (float((model.predict(Xva) != yva).mean()),
               float((model.predict(Xte) != yte).mean()))


def _ledger_spent(ledger: str) -> int:
    try:
        with open(ledger, encoding="utf-8") as f:
            return sum(json.loads(line)["trained"] for line in f if line.strip())
    except FileNotFoundError:
        return 0


def _train(params: dict, data_seed: int, ledger: str, budget: int, id=None,
           wait_verdict: float = 0.0):
    """One exp run: report each epoch; append what was trained to the ledger."""
    import exp
    if _ledger_spent(ledger) >= budget:
        raise RuntimeError("the epoch budget is spent (not trained)")
    entry = {"id": id, "params": params, "trained": 0, "err": None, "test_err": None,
             "status": "failed"}
    try:
        for epoch, (err, test) in enumerate(curve(data_seed=data_seed, **params), 1):
            entry.update(trained=epoch, err=err, test_err=test)
            exp.report(epoch, err=err, test_err=test)
            if wait_verdict and epoch < EPOCHS:
                deadline = time.monotonic() + wait_verdict
                while not exp.should_stop() and time.monotonic() < deadline:
                    time.sleep(0.0002)
                if exp.should_stop():
                    entry["status"] = "pruned"
                    raise exp.Pruned("stopped before training the next epoch")
        entry["status"] = "ok"
        return {"err": err, "test_err": test}
    except BaseException as e:
        if getattr(e, "_exp_pruned", False):
            entry["status"] = "pruned"
        raise
    finally:
        with open(ledger, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def train(lr, alpha, width, activation, data_seed, ledger, budget, **kwargs):
    """Runnable of exp gopt: the space's parameters."""
    params = {"lr": lr, "alpha": alpha, "width": int(width), "activation": activation}
    return _train(params, data_seed, ledger, budget, kwargs.get("id"))


def train_json(config, data_seed, ledger, budget, wait_verdict=0.0, **kwargs):
    """Runnable of exp run: one configuration drawn beforehand, as JSON."""
    return _train(json.loads(config), data_seed, ledger, budget, kwargs.get("id"), wait_verdict)


# ─── target 3 runnables ──────────────────────────────────────────────────────


def report_cost(calls: int, **kwargs) -> dict:
    """Time ``calls`` calls of exp.report one by one; the statistics are the result."""
    import exp
    clock = time.perf_counter_ns
    samples = [0] * calls
    backlog = [0] * calls  # reports not yet sent after the call (exp's buffer; only read)
    modules = sys.modules
    t0 = clock()
    for i in range(calls):
        a = clock()
        exp.report(i + 1, err=0.5)
        samples[i] = clock() - a
        state = modules.get("_exp_reports")
        backlog[i] = len(state.buffer) if state is not None else 0
    total = clock() - t0
    empty = [0] * 10_000
    for i in range(len(empty)):
        a = clock()
        empty[i] = clock() - a
    behind = [x for x, b in zip(samples, backlog) if b]
    srt = sorted(samples)
    return {"err": 0.5, "calls": calls, "median_us": srt[calls // 2] / 1e3,
            "mean_us": total / calls / 1e3, "p99_us": srt[int(calls * 0.99)] / 1e3,
            "max_us": srt[-1] / 1e3, "timer_us": statistics.median(empty) / 1e3,
            "behind_calls": len(behind), "max_backlog": max(backlog),
            "behind_mean_us": sum(behind) / len(behind) / 1e3 if behind else 0.0,
            "behind_share": sum(behind) / total}


def latency(k: int, out_file: str, id=None, **kwargs):
    """Report every 1 ms; run 0 is good, run k > 0 worse than every run before it (so ASHA
    stops it at its first rung, ties never promote it); it writes when its report raises
    exp.Pruned."""
    import exp
    start = time.monotonic()
    n = 0
    try:
        while True:
            n += 1
            pause = start + n * 0.001 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            exp.report(n / 10, err=1.0 + k / 100 if k else 0.0)
            if not k and n >= 30:
                return {"err": 0.0}
            if n >= 5000:
                return {"err": 1.0, "note": "never pruned"}
    except BaseException as e:
        if getattr(e, "_exp_pruned", False):
            raised = time.time()
            with open(out_file, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": id, "raised": raised, "reports": n}) + "\n")
        raise


# ─── contenders (run in a pool process each) ─────────────────────────────────


def _use_exp(exp_dir: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    if exp_dir not in sys.path:
        sys.path.insert(0, exp_dir)


def _optuna(seed: int, sampler: str, pruner: str | None) -> dict:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}
    pruners = {
        None: optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "sh": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA),
        "hb": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=EPOCHS,
                                                     reduction_factor=ETA),
    }
    # A fixed study name: HyperbandPruner picks a trial's bracket from a hash of it.
    study = optuna.create_study(study_name=f"bench-prune-{seed}", sampler=samplers[sampler](seed=seed),
                                pruner=pruners[pruner]())
    trials: list[dict] = []

    def objective(trial):
        params = {"lr": trial.suggest_float("lr", *LR, log=True),
                  "alpha": trial.suggest_float("alpha", *ALPHA, log=True),
                  "width": trial.suggest_int("width", *WIDTH, log=True),
                  "activation": trial.suggest_categorical("activation", ACTIVATIONS)}
        entry = {"id": trial.number, "params": params, "trained": 0, "status": "ok"}
        trials.append(entry)
        for epoch, (err, test) in enumerate(curve(data_seed=seed, **params), 1):
            entry.update(trained=epoch, err=err, test_err=test)
            trial.report(err, epoch)
            if epoch < EPOCHS and trial.should_prune():
                entry["status"] = "pruned"
                raise optuna.TrialPruned()
        return err

    def stop(study, _trial):
        if sum(t["trained"] for t in trials) >= BUDGET:
            study.stop()

    study.optimize(objective, n_trials=100_000, callbacks=[stop])
    return {"trials": trials}


def _random_configs(seed: int, n: int) -> list[dict]:
    """n configurations drawn by exp's own sampler (the same priors as the others)."""
    import exp
    space = exp.ParamSpace(seed=seed)
    space.add_random("lr", *LR, prior="log-uniform")
    space.add_random("alpha", *ALPHA, prior="log-uniform")
    space.add_random("width", WIDTH[0], WIDTH[1] + 1, prior="log-uniform", dtype=int)
    space.add_list("activation", ACTIVATIONS)
    return [space.sample_space() for _ in range(n)]


def _exp_trials(ledger: Path, journal: Path) -> dict:
    """The ledger's trials (execution order), and what the journal says they cost."""
    import exp
    trials = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    trials = [t for t in trials if t["trained"] > 0]
    records = {r["id"]: r for r in exp.read_journal(journal)}
    for t in trials:
        r = records.get(t["id"]) or {}
        t["journal_status"], t["reported"] = r.get("status"), r.get("step") or 0
    return {"trials": trials}


def _exp_run(seed: int, prune: str, work: str, n: int, wait: float = 0.0) -> dict:
    import exp
    name = f"run-{prune}{'-wait' if wait else ''}-{seed}"
    ledger = Path(work) / f"{name}.ledger"
    space = exp.ParamSpace()
    space.add_list("config", [json.dumps(c, sort_keys=True) for c in _random_configs(seed, n)])
    space.add_value("data_seed", seed)
    space.add_value("ledger", str(ledger))
    space.add_value("budget", BUDGET)
    if wait:
        space.add_value("wait_verdict", wait)
    records = exp.run_experiment(space, f"{THIS}:train_json", workers=1, prune=prune,
                                 objective="err", min_step=1, max_step=EPOCHS, eta=ETA,
                                 out=work, name=name, seed=seed, quiet=True)
    out = _exp_trials(ledger, Path(work) / f"{name}.jsonl")
    out["statuses"] = _count_statuses(records)
    return out


def _exp_gopt(seed: int, prune: str, pruned_as: str, n: int, work: str) -> dict:
    import exp
    import exp_gopt
    name = f"gopt-{prune}-{pruned_as}-{seed}"
    ledger = Path(work) / f"{name}.ledger"
    space = exp.ParamSpace()
    space.add_random("lr", *LR, prior="log-uniform")
    space.add_random("alpha", *ALPHA, prior="log-uniform")
    space.add_random("width", *WIDTH, prior="log-uniform", dtype=int)
    space.add_list("activation", ACTIVATIONS)
    space.add_value("data_seed", seed)
    space.add_value("ledger", str(ledger))
    space.add_value("budget", BUDGET)
    calls = 0
    while True:
        calls += 1
        exp_gopt.optimize(space, f"{THIS}:train", n=n, workers=1, objective="err", prune=prune,
                          min_step=1, max_step=EPOCHS, eta=ETA, pruned_as=pruned_as, seed=seed,
                          out=work, name=name, quiet=True)
        if _ledger_spent(str(ledger)) >= BUDGET or calls >= 6:
            break
        n = int(n * 1.25) + 1  # the budget is not spent: resume with more evaluations
    out = _exp_trials(ledger, Path(work) / f"{name}.jsonl")
    out["statuses"] = _count_statuses(exp.read_journal(Path(work) / f"{name}.jsonl"))
    out.update(n=n, calls=calls)
    return out


def _count_statuses(records) -> dict:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


#: name: (kind, arguments); exp's n are estimates of the configurations 810 epochs buy
METHODS = {
    "random search": ("optuna", ("random", None)),
    "Optuna TPE": ("optuna", ("tpe", None)),
    "Optuna TPE + MedianPruner": ("optuna", ("tpe", "median")),
    "Optuna TPE + SuccessiveHalving": ("optuna", ("tpe", "sh")),
    "Optuna TPE + Hyperband": ("optuna", ("tpe", "hb")),
    "Optuna random + MedianPruner": ("optuna", ("random", "median")),
    "Optuna random + SuccessiveHalving": ("optuna", ("random", "sh")),
    "Optuna random + Hyperband": ("optuna", ("random", "hb")),
    "exp run --prune asha": ("run", ("asha", 300)),
    "exp gopt --prune hyperband (last)": ("gopt", ("hyperband", "last", 90)),
    "exp gopt --prune hyperband (skip)": ("gopt", ("hyperband", "skip", 90)),
    "exp gopt --prune asha (last)": ("gopt", ("asha", "last", 140)),
    "exp gopt --prune asha (skip)": ("gopt", ("asha", "skip", 140)),
    # extra rows, outside the targets
    "exp run --prune median (extra)": ("run", ("median", 200)),
    "exp run --prune hyperband (extra)": ("run", ("hyperband", 250)),
    "exp run --prune asha, waits for the verdict (extra)": ("run", ("asha", 400, WAIT_VERDICT)),
}
QUICK = ["random search", "Optuna TPE", "Optuna TPE + SuccessiveHalving",
         "Optuna TPE + Hyperband", "exp run --prune asha", "exp gopt --prune hyperband (last)",
         "exp gopt --prune hyperband (skip)", "exp gopt --prune asha (last)"]
OPTUNA_PRUNERS = [m for m in METHODS if m.startswith("Optuna") and "+" in m]
EXP_TARGETED = [m for m in METHODS if m.startswith("exp") and "extra" not in m]


def run_task(method: str, seed: int, exp_dir: str, work: str) -> dict:
    """One (method, seed): its trials in execution order, and its wall time."""
    _use_exp(exp_dir)
    kind, args = METHODS[method]
    t = time.perf_counter()
    if kind == "optuna":
        out = _optuna(seed, *args)
    elif kind == "run":
        out = _exp_run(seed, args[0], work, *args[1:])
    else:
        out = _exp_gopt(seed, *args, work)
    out.update(method=method, seed=seed, seconds=time.perf_counter() - t)
    return out


# ─── scoring ─────────────────────────────────────────────────────────────────


def score(out: dict) -> dict:
    """The budget prefix of a method's trials and its best full-length configuration."""
    prefix, spent = [], 0
    for t in out["trials"]:
        if spent + t["trained"] > BUDGET:
            break
        spent += t["trained"]
        prefix.append(t)
    full = [t for t in prefix if t["trained"] == EPOCHS]
    fallback = False
    if full:
        best = min(full, key=lambda t: t["err"])
        err, test = best["err"], best["test_err"]
    else:  # no full-length trial within budget: train the best by last value to 27 epochs
        fallback = True
        best = min(prefix, key=lambda t: t["err"])
        *_, (err, test) = curve(data_seed=out["seed"], **best["params"])
    # target 2: epochs after which the best full-length configuration so far is known
    progress, cum, best_so_far = [], 0, math.inf
    for t in prefix:
        cum += t["trained"]
        if t["trained"] == EPOCHS:
            best_so_far = min(best_so_far, t["err"])
        progress.append((cum, best_so_far))
    return {"err": err, "test_err": test, "epochs": spent, "trials": len(prefix),
            "full": len(full), "fallback": fallback, "best": best["params"],
            "progress": progress,
            "reported": sum(t.get("reported", t["trained"]) for t in prefix)}


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


# ─── target 3 ────────────────────────────────────────────────────────────────


REPEATS = 3  # report-cost runs; the one with the median median is shown


def _wait_quiet(limit: float = 600.0) -> float:
    """Wait (up to ``limit`` s) until the 1-minute load average is below 1; returns it.
    The machine may be shared, and a timing of microseconds needs it quiet."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def measure_overhead(exp_dir: str, work: str, calls: int, pruned_runs: int,
                     quiet_wait: float) -> dict:
    _use_exp(exp_dir)
    import exp
    load = _wait_quiet(quiet_wait)
    costs = []
    for rep in range(REPEATS):
        space = exp.ParamSpace()
        space.add_value("calls", calls)
        records = exp.run_experiment(space, f"{THIS}:report_cost", workers=1, prune="asha",
                                     objective="err", min_step=1, max_step=EPOCHS, eta=ETA,
                                     out=work, name=f"report-cost-{rep}", quiet=True)
        if records[0]["status"] != "ok":
            raise RuntimeError(f"report_cost run: {records[0]['status']}: "
                               f"{records[0].get('error')}")
        cost = records[0]["result"]
        costs.append(cost)
        print(f"exp.report: median {cost['median_us']:.2f} us per call, mean "
              f"{cost['mean_us']:.2f}, p99 {cost['p99_us']:.2f}, timer alone "
              f"{cost['timer_us']:.3f} us; {cost['behind_calls']} calls with reports waiting "
              f"(at most {cost['max_backlog']}), {cost['behind_mean_us']:.1f} us on average, "
              f"{100 * cost['behind_share']:.0f}% of the loop", flush=True)
    cost = sorted(costs, key=lambda c: c["median_us"])[len(costs) // 2]

    decisions: dict[int, float] = {}
    original = exp._Pruner.report

    def timed(self, key, step, value):
        reason = original(self, key, step, value)
        if reason is not None:
            decisions.setdefault(key[0], time.time())
        return reason

    exp._Pruner.report = timed
    out_file = Path(work) / "latency.out"
    # configuration 0 is good, then pruned_runs bad ones (ids 1..pruned_runs)
    space = exp.ParamSpace()
    space.add_range("k", 0, pruned_runs + 1, dtype=int)
    space.add_value("out_file", str(out_file))
    try:
        exp.run_experiment(space, f"{THIS}:latency", workers=1, prune="asha",
                           objective="err", min_step=1, max_step=EPOCHS, eta=ETA,
                           out=work, name="latency", quiet=True)
    finally:
        exp._Pruner.report = original
    raised = {e["id"]: e["raised"] for e in map(json.loads, out_file.read_text().splitlines())}
    deciding: dict[int, float] = {}
    for rep in exp.read_reports(Path(work) / "latency.jsonl"):
        if rep["step"] >= 1 and rep["id"] not in deciding:
            deciding[rep["id"]] = rep["time"]
    ids = sorted(raised)
    from_report = [(raised[i] - deciding[i]) * 1e3 for i in ids]
    from_decision = [(raised[i] - decisions[i]) * 1e3 for i in ids if i in decisions]
    to_decision = [(decisions[i] - deciding[i]) * 1e3 for i in ids if i in decisions]
    result = {"cost": cost, "costs": costs, "load": load, "pruned": len(ids),
              "expected": pruned_runs,
              "from_report": from_report, "from_decision": from_decision,
              "to_decision": to_decision}
    print(f"stop latency over {len(ids)} pruned runs: median {statistics.median(from_report):.2f} "
          f"ms, max {max(from_report):.2f} ms from the deciding report; after the decision "
          f"median {statistics.median(from_decision):.2f} ms", flush=True)
    return result


# ─── replays (--replay): exp's pruners over known curves ─────────────────────

REPLAY_CONFIGS = 330  # the first configurations exp run --prune asha draws (it uses < 300)
#: (label, kind, min_step, eta, extra epoch per pruned run)
REPLAYS = [
    ("asha, min-step 1, eta 3, as exp runs it (one more epoch after the stop)", "asha", 1, 3, 1),
    ("asha, min-step 1, eta 3, stopped at the deciding report", "asha", 1, 3, 0),
    ("asha, min-step 3, eta 3, as exp runs it", "asha", 3, 3, 1),
    ("asha, min-step 3, eta 3, stopped at the deciding report", "asha", 3, 3, 0),
    ("asha, min-step 9 (one rung), as exp runs it", "asha", 9, 3, 1),
    ("asha, min-step 1, eta 2, as exp runs it", "asha", 1, 2, 1),
    ("asha, min-step 1, eta 4, as exp runs it", "asha", 1, 4, 1),
    ("hyperband, min-step 1, eta 3, as exp runs it", "hyperband", 1, 3, 1),
    ("hyperband, min-step 1, eta 3, stopped at the deciding report", "hyperband", 1, 3, 0),
    ("median, as exp runs it", "median", 1, 3, 1),
]


def _curves(seed: int, cache: Path) -> list[list[float]]:
    """Full validation curves of the configurations exp run draws for ``seed`` (cached)."""
    path = cache / f"curves-{seed}.json"
    if path.exists():
        return json.loads(path.read_text())["curves"]
    configs = _random_configs(seed, REPLAY_CONFIGS)
    curves = [[v for v, _ in curve(data_seed=seed, **c)] for c in configs]
    path.write_text(json.dumps({"configs": configs, "curves": curves}))
    return curves


def _curves_task(seed: int, exp_dir: str, cache: str) -> int:
    _use_exp(exp_dir)
    _curves(seed, Path(cache))
    return seed


def replay(curves: list[list[float]], kind: str, min_step: float, eta: int,
           extra: int) -> tuple[float, list[tuple]]:
    """exp's own pruner (``exp._Pruner``) told the curves in order, one worker, the bench's
    budget: (the best full-length error, the trials (index, epochs trained, status)).
    ``extra`` 1: a stopped run trains one more epoch before it sees the stop."""
    import exp
    pruner = exp._Pruner(kind, min_step=min_step, max_step=EPOCHS, eta=eta)
    spent, trials = 0, []
    for i, c in enumerate(curves):
        trained, status = EPOCHS, "ok"
        for epoch in range(1, EPOCHS + 1):
            if pruner.report((i, 1), epoch, c[epoch - 1]):
                trained, status = min(EPOCHS, epoch + extra), "pruned"
                break
        pruner.end((i, 1), status, trained - extra if status == "pruned" else trained)
        if spent + trained > BUDGET:
            break
        spent += trained
        trials.append((i, trained, status))
    full = [curves[i][-1] for i, t, st in trials if t == EPOCHS and st == "ok"]
    return (min(full) if full else math.nan), trials


def _optuna_sh_on(curves: list[list[float]]) -> float:
    """Optuna's SuccessiveHalvingPruner (min_resource 1, eta 3) on the same curves in the
    same order: a check that exp's rung rule is Optuna's."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=ETA))
    done: list[tuple[int, int]] = []

    def objective(trial):
        c = curves[trial.number]
        for epoch in range(1, EPOCHS + 1):
            trial.report(c[epoch - 1], epoch)
            if epoch < EPOCHS and trial.should_prune():
                done.append((trial.number, epoch))
                raise optuna.TrialPruned()
        done.append((trial.number, EPOCHS))
        return c[-1]

    def stop(study, _trial):
        if sum(e for _, e in done) >= BUDGET:
            study.stop()

    study.optimize(objective, n_trials=len(curves), callbacks=[stop])
    spent, full = 0, []
    for i, e in done:
        if spent + e > BUDGET:
            break
        spent += e
        if e == EPOCHS:
            full.append(curves[i][-1])
    return min(full)


def _replay_markdown(seeds: list[int], all_curves: dict[int, list], bar: float | None) -> str:
    lines = ["## Replays: exp's pruners over the same curves", "",
             f"`python bench/bench_prune.py --replay` trains the first {REPLAY_CONFIGS} "
             "configurations that `exp run --prune asha` draws for each seed to 27 epochs once, "
             "then tells exp's own pruner (`exp._Pruner`) their curves in order with the "
             f"benchmark's budget ({BUDGET} epochs, every epoch trained counted). The first "
             "row reproduces the `exp run` rows of the table above exactly.", "",
             "| scheduler | val. error, median | per seed | target 2: epochs to the bar, "
             "median |", "| --- | ---: | --- | ---: |"]

    def to_bar(curves, trials):
        cum, best = 0, math.inf
        for i, t, st in trials:
            cum += t
            if t == EPOCHS and st == "ok":
                best = min(best, curves[i][-1])
            if bar is not None and best <= bar:
                return cum
        return math.inf

    for label, *v in REPLAYS:
        runs = [replay(all_curves[s], *v) for s in seeds]
        errs = [r[0] for r in runs]
        need = statistics.median(to_bar(all_curves[s], r[1]) for s, r in zip(seeds, runs))
        lines.append(f"| {label} | {_fmt(statistics.median(errs))} | "
                     f"{' '.join(_fmt(e) for e in errs)} | "
                     + ("never" if need == math.inf else f"{need:.0f} ({need / BUDGET:.2f})")
                     + " |")
    sh = [_optuna_sh_on(all_curves[s]) for s in seeds]
    lines.append(f"| Optuna SuccessiveHalvingPruner on the same curves | "
                 f"{_fmt(statistics.median(sh))} | {' '.join(_fmt(e) for e in sh)} | |")
    lines.append("")
    seen_top = {1: 0, 3: 0, 9: 0, EPOCHS: 0}
    for s in seeds:
        c = all_curves[s]
        _, trials = replay(c, "asha", 1, ETA, 1)
        status = {i: (t, st) for i, t, st in trials}
        for i in sorted(status, key=lambda i: c[i][-1])[:5]:
            t, st = status[i]
            stop = t - 1 if st == "pruned" else EPOCHS
            seen_top[stop] = seen_top.get(stop, 0) + 1
    lines.append("Where `exp run --prune asha` stopped the 5 best configurations it saw (by "
                 f"their 27-epoch error), over {len(seeds)} seeds: "
                 + ", ".join(f"{v} at step {k}" if k < EPOCHS else f"{v} trained to the end"
                             for k, v in sorted(seen_top.items())) + ".")
    return "\n".join(lines) + "\n"


def main_replay(args, seeds: list[int]) -> int:
    tmp = tempfile.TemporaryDirectory(prefix="bench-prune-")
    work = Path(args.keep).resolve() if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    exp_dir, _ = _exp_snapshot(None if args.worktree else "HEAD", Path(tmp.name) / "exp")
    _use_exp(exp_dir)
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for seed in pool.map(_curves_task, seeds, [exp_dir] * len(seeds),
                             [str(work)] * len(seeds)):
            print(f"curves of seed {seed} ready", flush=True)
    all_curves = {s: _curves(s, work) for s in seeds}
    bar = None
    results = work / "results.json"
    if results.exists():  # the full run's random-search median: target 2's bar
        rs = json.loads(results.read_text())["results"].get("random search")
        bar = statistics.median(r["err"] for r in rs.values()) if rs else None
    text = _replay_markdown(seeds, all_curves, bar)
    if not args.no_write:
        out = Path(args.out)
        old = out.read_text(encoding="utf-8") if out.exists() else ""
        head, sep, rest = old.partition("## Replays")
        tail = rest.partition("\n## ")[2] if sep else ""  # what followed the old section
        out.write_text(head.rstrip("\n") + "\n\n" + text + ("\n## " + tail if tail else ""),
                       encoding="utf-8")
    print(text)
    tmp.cleanup()
    return 0


# ─── running and reporting ───────────────────────────────────────────────────


def _exp_snapshot(rev: str | None, into: Path) -> tuple[str, str]:
    """Copy exp.py and exp_gopt.py (of git revision ``rev``, or the working tree) into
    ``into``; returns (the folder, a description of what was copied)."""
    into.mkdir(parents=True, exist_ok=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "exp.py", "exp_gopt.py"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for name in ("exp.py", "exp_gopt.py"):
        if rev is None:
            (into / name).write_bytes((ROOT / name).read_bytes())
        else:
            data = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            (into / name).write_bytes(data)
    if rev is None:
        what = "the working tree" + (" (exp.py or exp_gopt.py modified since the commit)"
                                     if dirty else " (same as the commit)")
    else:
        what = f"`git show {rev}:exp.py` and `exp_gopt.py`"
    return str(into), what


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, fewer methods")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 10, --quick 2)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="(method, seed) tasks at a time (default 2)")
    parser.add_argument("--methods", nargs="+", help="only these methods (names as in the table)")
    parser.add_argument("--worktree", action="store_true",
                        help="benchmark exp.py as it is on disk, not as committed")
    parser.add_argument("--keep", metavar="DIR", help="keep journals and ledgers in DIR")
    parser.add_argument("--out", default=str(HERE / "prune.md"), help="markdown report to write")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument("--replay", action="store_true",
                        help="replay exp's pruners over full curves (adds a section to --out; "
                             "with the --keep DIR of a full run, target 2's bar comes from it)")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    seeds = list(range(args.seeds or (2 if args.quick else 10)))
    if args.replay:
        return main_replay(args, seeds)
    methods = args.methods or (QUICK if args.quick else list(METHODS))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    t_start = time.time()
    tmp = tempfile.TemporaryDirectory(prefix="bench-prune-")
    work = Path(args.keep).resolve() if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    exp_dir, exp_what = _exp_snapshot(None if args.worktree else "HEAD", Path(tmp.name) / "exp")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"exp from {exp_what}, commit {commit}; work in {work}; {len(methods)} methods x "
          f"{len(seeds)} seeds, {args.jobs} at a time", flush=True)

    # the slowest tasks first (exp gopt asks its GP once per configuration)
    order = {"gopt": 0, "run": 1, "optuna": 2}
    tasks = sorted(((m, s) for m in methods for s in seeds),
                   key=lambda ms: (order[METHODS[ms[0]][0]], ms[1]))
    results: dict[str, dict[int, dict]] = {m: {} for m in methods}
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_task, m, s, exp_dir, str(work)): (m, s) for m, s in tasks}
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            m, s = futures[fut]
            out = fut.result()
            sc = score(out)
            sc.update(seconds=out["seconds"], raw_trials=len(out["trials"]),
                      statuses=out.get("statuses"), calls=out.get("calls"), n=out.get("n"),
                      spent=sum(t["trained"] for t in out["trials"]))
            results[m][s] = sc
            print(f"[{i}/{len(tasks)} {time.time() - t_start:5.0f}s] {m:52} seed {s}: "
                  f"err {sc['err']:.4f} (test {sc['test_err']:.4f}) epochs {sc['epochs']} "
                  f"trials {sc['trials']} full {sc['full']}"
                  + (" FALLBACK" if sc["fallback"] else "")
                  + (f" reported {sc['reported']}" if sc["reported"] != sc["epochs"] else "")
                  + (f" SPENT ONLY {sc['spent']}" if sc["spent"] < BUDGET else "")
                  + (f" calls {sc['calls']} n {sc['n']}" if sc["calls"] else "")
                  + f" ({out['seconds']:.0f}s)", flush=True)

    overhead = measure_overhead(exp_dir, str(work), 20_000 if args.quick else 100_000,
                                5 if args.quick else 20, 30 if args.quick else 600)
    text = _markdown(args, seeds, methods, results, overhead, commit, exp_what,
                     time.time() - t_start)
    if not args.no_write:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.keep:  # the scores per (method, seed) and target 3's raw figures, for analysis
        (work / "results.json").write_text(json.dumps(
            {"results": {m: {str(s): r for s, r in rows.items()} for m, rows in results.items()},
             "overhead": overhead}, default=str), encoding="utf-8")
    print(text)
    tmp.cleanup()
    return 0


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _markdown(args, seeds, methods, results, overhead, commit, exp_what, seconds) -> str:
    import numpy
    import optuna
    import skopt
    import sklearn
    cmd = "python bench/bench_prune.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds else "") + (
        " --worktree" if args.worktree else "") + (
        f" --jobs {args.jobs}" if args.jobs != min(2, os.cpu_count() or 1) else "") + (
        " --methods " + " ".join(f"'{m}'" for m in args.methods) if args.methods else "")
    n = len(seeds)
    lines = [
        "## exp's early stopping against Optuna's pruners",
        "",
        f"`{cmd}` ({n} seeds, {len(methods)} methods; {seconds / 60:.0f} min, {args.jobs} tasks "
        f"at a time), commit {commit}, exp from {exp_what}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Optuna {optuna.__version__}, "
        f"scikit-learn {sklearn.__version__}, scikit-optimize {skopt.__version__}, "
        f"numpy {numpy.__version__}.",
        "",
        f"Workload: an MLP (1 hidden layer, Adam) trained epoch by epoch with `partial_fit` on "
        f"`make_classification` ({ROWS:,} rows: {TRAIN:,} train, {VALID:,} validation, "
        f"{ROWS - TRAIN - VALID:,} test), at most {EPOCHS} epochs; learning rate and alpha "
        f"log-uniform, width an integer, activation categorical. Budget {BUDGET} epochs "
        f"(30 full trainings) per method and seed, one worker; every epoch trained counts. "
        f"Score: validation error of the best configuration trained to {EPOCHS} epochs "
        f"within the budget (lower is better); the method's docstring has the details.",
        "",
        "| method | val. error, median | q1 - q3 | paired vs random search | "
        "test error, median | epochs used | configurations | full-length | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    med = {}
    for m in methods:
        rows = [results[m][s] for s in seeds]
        q1, q2, q3 = _quartiles([r["err"] for r in rows])
        med[m] = q2
        fb = sum(r["fallback"] for r in rows)
        paired = ""
        if "random search" in methods:
            diffs = [results[m][s]["err"] - results["random search"][s]["err"] for s in seeds]
            paired = (f"{statistics.median(diffs):+.4f} ({sum(d < 0 for d in diffs)} better, "
                      f"{sum(d > 0 for d in diffs)} worse)")
        lines.append(
            f"| {m} | {_fmt(q2)} | {_fmt(q1)} - {_fmt(q3)} | {paired} | "
            f"{_fmt(statistics.median(r['test_err'] for r in rows))} | "
            f"{statistics.median(r['epochs'] for r in rows):.0f} | "
            f"{statistics.median(r['trials'] for r in rows):.0f} | "
            f"{statistics.median(r['full'] for r in rows):.0f}"
            + (f" ({fb} seeds: none, trained after)" if fb else "") + " | "
            f"{statistics.median(r['seconds'] for r in rows):.0f} |")
    lines += ["", "Paired vs random search: the median over seeds of (this method's error minus "
              "random search's on the same data set), and on how many seeds it is lower or "
              "higher. Epochs used, configurations and full-length trainings are medians over "
              "seeds of the budget prefix; seconds are wall time per seed with "
              f"{args.jobs} tasks sharing the machine.", ""]

    exp_rows = [m for m in methods if m.startswith("exp")]
    if exp_rows:
        lines += ["What exp's runs cost beyond what they report (medians over seeds): exp tells "
                  "a run to stop asynchronously and the run sees it at its next `report`, after "
                  "training one more epoch.", "",
                  "| method | epochs trained | epochs reported (journal steps) | statuses "
                  "(all runs, seed 0) | gopt n, calls |", "| --- | ---: | ---: | --- | --- |"]
        for m in exp_rows:
            rows = [results[m][s] for s in seeds]
            st = rows[0].get("statuses") or {}
            lines.append(f"| {m} | {statistics.median(r['epochs'] for r in rows):.0f} | "
                         f"{statistics.median(r['reported'] for r in rows):.0f}"
                         f" | {', '.join(f'{k} {v}' for k, v in sorted(st.items()))} | "
                         + (f"{rows[0]['n']}, {rows[0]['calls']}" if rows[0].get("calls") else "")
                         + " |")
        lines.append("")

    lines += ["Per seed (validation error of the best full-length configuration):", "",
              "| method | " + " | ".join(str(s) for s in seeds) + " |",
              "| --- | " + " | ".join("---:" for _ in seeds) + " |"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(results[m][s]["err"]) for s in seeds) + " |")
    lines.append("")

    # targets
    lines += ["### Targets", ""]
    optuna_p = [m for m in OPTUNA_PRUNERS if m in methods]
    exp_t = [m for m in EXP_TARGETED if m in methods]
    if optuna_p and exp_t:
        best_o = min(optuna_p, key=lambda m: med[m])
        lines.append(f"1. exp's best configuration at least as good as the best Optuna pruner's "
                     f"({best_o}, median {_fmt(med[best_o])}) at {BUDGET} epochs:")
        for m in exp_t:
            wins = sum(results[m][s]["err"] < results[best_o][s]["err"] for s in seeds)
            ties = sum(results[m][s]["err"] == results[best_o][s]["err"] for s in seeds)
            lines.append(f"   - {m}: {_fmt(med[m])}, "
                         f"{'met' if med[m] <= med[best_o] else 'MISSED'} (per seed: {wins} "
                         f"better, {ties} equal, {n - wins - ties} worse)")
        best_e = min(exp_t, key=lambda m: med[m])
        lines.append(f"   - overall (exp's best method, {best_e}): "
                     f"{'met' if med[best_e] <= med[best_o] else 'MISSED'}")
    if "random search" in methods and "exp run --prune asha" in methods:
        ref = statistics.median(results["random search"][s]["err"] for s in seeds)
        needed = []
        for s in seeds:
            hit = next((cum for cum, best in results["exp run --prune asha"][s]["progress"]
                        if best <= ref), math.inf)
            needed.append(hit)
        frac = statistics.median(needed) / BUDGET
        own = []  # the same with each seed's own random-search error as the bar
        for s in seeds:
            bar = results["random search"][s]["err"]
            own.append(next((cum for cum, best in results["exp run --prune asha"][s]["progress"]
                             if best <= bar), math.inf))
        own_frac = statistics.median(own) / BUDGET

        def words(xs):
            return ", ".join("never" if x == math.inf else str(x) for x in xs)

        def share(f):
            return "never" if f == math.inf else f"{f:.2f}"

        lines.append(f"2. exp run --prune asha reaches the median error of full-budget random "
                     f"search ({_fmt(ref)}) with at most a third of the epochs: per seed "
                     f"{words(needed)} epochs; median {share(frac)} of {BUDGET}: "
                     f"{'met' if frac <= 1 / 3 else 'MISSED'}. (Paired, with each seed's own "
                     f"random-search error as the bar: {words(own)}; median {share(own_frac)}.)")
    cost = overhead["cost"]
    medians = ", ".join(f"{c['median_us']:.2f}" for c in overhead["costs"])
    fr, fd, td = overhead["from_report"], overhead["from_decision"], overhead["to_decision"]
    lines.append(f"3. exp.report cost at most 20 us per call inside a local run: median "
                 f"{cost['median_us']:.2f} us over {cost['calls']:,} calls (the median of "
                 f"{len(overhead['costs'])} runs: "
                 f"{medians} us; "
                 f"in that run the mean of the loop {cost['mean_us']:.2f} us, p99 "
                 f"{cost['p99_us']:.2f} us, max {cost['max_us']:.0f} us, the timer alone "
                 f"{cost['timer_us']:.3f} us; {cost['behind_calls']:,} calls could not send, "
                 f"the driver's socket being full, with up to {cost['max_backlog']} reports "
                 f"waiting, and cost {cost['behind_mean_us']:.1f} us on average; 1-minute load "
                 f"average {overhead['load']:.2f} before measuring): "
                 f"{'met' if cost['median_us'] <= 20 else 'MISSED'}.")
    lines.append(f"   A stop decision reaches a reporting run within 50 ms: over "
                 f"{overhead['pruned']} pruned runs (of {overhead['expected']}) reporting every "
                 f"1 ms, from the deciding report to `Pruned` raised in the run median "
                 f"{statistics.median(fr):.2f} ms, max {max(fr):.2f} ms (of which report to the "
                 f"driver's decision median {statistics.median(td):.2f} ms, max {max(td):.2f}; "
                 f"decision to `Pruned` median {statistics.median(fd):.2f}, max {max(fd):.2f}): "
                 f"{'met' if max(fr) <= 50 and overhead['pruned'] == overhead['expected'] else 'MISSED'}.")
    lines.append("")

    pairs = [("exp gopt --prune hyperband (last)", "exp gopt --prune hyperband (skip)"),
             ("exp gopt --prune asha (last)", "exp gopt --prune asha (skip)")]
    pairs = [p for p in pairs if all(x in methods for x in p)]
    if pairs:
        lines += ["### pruned_as", ""]
        for a, b in pairs:
            wins = sum(results[a][s]["err"] < results[b][s]["err"] for s in seeds)
            losses = sum(results[a][s]["err"] > results[b][s]["err"] for s in seeds)
            lines.append(f"- {a.rsplit(' (', 1)[0]}: last {_fmt(med[a])}, skip {_fmt(med[b])} "
                         f"(median); per seed last better {wins}, skip better {losses}, "
                         f"equal {n - wins - losses}")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
