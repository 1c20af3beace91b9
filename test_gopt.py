"""Tests of ``exp gopt`` (exp_gopt.py): real worker processes, outputs in tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("skopt")

import exp  # noqa: E402
import exp_gopt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent

SQUARE = """
import sys, time

def run(x, **kwargs):
    # Workers never import the optimiser, and get plain Python values.
    assert "skopt" not in sys.modules and "numpy" not in sys.modules, "worker imported skopt"
    assert type(x) in (int, float), f"x is {type(x).__name__}"
    return x ** 2
"""

MIXED = """
import math

def run(x, lr, kind, flag, layers, fixed, **kwargs):
    for name, value, kinds in (("x", x, (int,)), ("lr", lr, (float,)), ("kind", kind, (str,)),
                               ("flag", flag, (bool,)), ("layers", layers, (int,))):
        assert type(value) in kinds, f"{name} is {type(value).__name__}"
    assert fixed == "const"
    return {"loss": (x - 3) ** 2 + abs(math.log10(lr) + 2) + (kind != "b") + flag + layers / 10,
            "other": 1}
"""

MIXED_TOML = """
[x]
type = "range"
bounds = [-5, 5]
dtype = "int"
[lr]
type = "random"
bounds = [1e-4, 1.0]
prior = "log-uniform"
[kind]
type = "list"
value = ["a", "b", "c"]
[flag]
type = "list"
value = [true, false]
[layers]
type = "list"
value = [1, 2, 4, 2]
[fixed]
type = "value"
value = "const"
"""


def _float_space(tmp_path: Path, dtype: str = "float") -> Path:
    p = tmp_path / "space.toml"
    p.write_text(f'[x]\ntype = "range"\nbounds = [-10, 10]\ndtype = "{dtype}"\n')
    return p


def _module(tmp_path: Path, source: str = SQUARE, name: str = "square.py") -> Path:
    p = tmp_path / name
    p.write_text(source)
    return p


def _gopt(tmp_path: Path, *args: str, space: Path | None = None, module: Path | None = None,
          name: str = "g") -> int:
    space = space or _float_space(tmp_path)
    module = module or _module(tmp_path)
    return exp.main(["gopt", "-p", str(space), "-m", str(module), "--out", str(tmp_path / "out"),
                     "--name", name, *args])


def _records(tmp_path: Path, name: str = "g", latest: bool = True) -> list[dict]:
    return exp.read_journal(tmp_path / "out" / f"{name}.jsonl", latest=latest)


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    import matplotlib.image
    assert matplotlib.image.imread(path).shape[0] > 50


# ─── the walkthrough ─────────────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_walkthrough_finds_the_minimum(tmp_path, capsys):
    assert _gopt(tmp_path, "-n", "20", "--workers", "4", "--seed", "0") == 0
    records = _records(tmp_path)
    assert [r["id"] for r in records] == list(range(20))
    assert all(r["status"] == "ok" for r in records)
    best = min(records, key=lambda r: r["result"])
    assert abs(best["params"]["x"]) < 0.5
    err = capsys.readouterr().err
    assert "best:" in err and "optimiser:" in err and "best 5 (min)" in err


@pytest.mark.timeout(60)
def test_int_dtype_explores_only_integers_in_the_closed_range(tmp_path):
    assert _gopt(tmp_path, "-n", "15", "--workers", "2", "--seed", "1",
                 space=_float_space(tmp_path, "int")) == 0
    xs = [r["params"]["x"] for r in _records(tmp_path)]
    assert all(type(x) is int and -10 <= x <= 10 for x in xs)
    assert len(set(xs)) == len(xs), "an integer point was evaluated twice"
    assert 0 in xs


@pytest.mark.timeout(60)
def test_a_finite_space_smaller_than_n_is_covered_then_revisited(tmp_path):
    space = tmp_path / "small.toml"
    space.write_text('[x]\ntype = "list"\nvalue = [-1, 0, 1]\n')
    assert _gopt(tmp_path, "-n", "5", "--workers", "2", space=space) == 0
    xs = [r["params"]["x"] for r in _records(tmp_path)]
    assert len(xs) == 5 and set(xs) == {-1, 0, 1}


# ─── surrogates, acquisitions, spaces ────────────────────────────────────────


@pytest.mark.timeout(60)
@pytest.mark.parametrize("surrogate,acquisition", [
    ("GP", "EI"), ("GP", "PI"), ("GP", "LCB"), ("GP", "gp_hedge"),
    ("RF", "EI"), ("ET", "LCB"), ("GBRT", "PI"), ("random", "EI"), ("RF", "gp_hedge")])
def test_every_surrogate_and_acquisition_runs(tmp_path, surrogate, acquisition):
    res = exp_gopt.optimize(_float_space(tmp_path), str(_module(tmp_path)), n=9, workers=2,
                            surrogate=surrogate, acquisition=acquisition, n_initial=3, seed=2,
                            out=tmp_path / "out", quiet=True)
    assert res.completed and len(res.evaluations) == 9 and res.n_ok == 9
    assert res.fun == min(e.value for e in res.evaluations)
    assert res.x == next(e.params for e in res.evaluations if e.value == res.fun)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("initial", ["random", "sobol", "lhs"])
def test_categorical_boolean_log_uniform_and_fixed_values(tmp_path, initial):
    space = tmp_path / "mixed.toml"
    space.write_text(MIXED_TOML)
    res = exp_gopt.optimize(space, str(_module(tmp_path, MIXED, "mixed.py")), n=14, workers=2,
                            objective="loss", initial=initial, n_initial=6, seed=3,
                            out=tmp_path / "out", quiet=True)
    assert res.n_ok == 14, [e.error for e in res.evaluations]
    for e in res.evaluations:
        p = e.params
        assert list(p) == ["x", "lr", "kind", "flag", "layers", "fixed"]
        assert 1e-4 <= p["lr"] <= 1.0 and p["kind"] in "abc" and p["layers"] in (1, 2, 4)
    assert res.fun < 4


def test_space_mapping():
    space = exp.ParamSpace()
    space.add_range("a", 0, 1)
    space.add_range("i", -3, 3, dtype=int)
    space.add_random("lr", 1e-3, 1.0, prior="log-uniform")
    space.add_list("c", ["x", "y", "x"])
    space.add_list("one", [7])
    space.add_value("v", [1, 2])
    m = exp_gopt._Mapping(space)
    assert m.names == ["a", "i", "lr", "c"] and m.fixed == {"one": 7, "v": [1, 2]}
    a, i, lr, c = m.dims
    assert (a.low, a.high, i.low, i.high, lr.prior) == (0, 1, -3, 3, "log-uniform")
    assert c.categories == ("x", "y")
    import numpy as np
    params = m.to_params([np.float64(0.5), np.int64(3), 0.01, np.str_("y")])
    assert params == {"a": 0.5, "i": 3, "lr": 0.01, "c": "y", "one": 7, "v": [1, 2]}
    assert [type(v) for v in params.values()] == [float, int, float, str, int, list]
    assert m.to_point(params) == [0.5, 3, 0.01, "y"]
    assert m.to_point({**params, "i": 4}) is None  # outside the bounds
    assert m.to_point({**params, "c": "z"}) is None
    assert m.to_point({**params, "one": 8}) is None  # another fixed value
    assert m.to_point({**params, "i": 2.5}) is None


def test_nothing_to_optimise_is_an_error(tmp_path):
    space = tmp_path / "fixed.toml"
    space.write_text('[x]\ntype = "value"\nvalue = 1\n')
    assert _gopt(tmp_path, "-n", "3", space=space) == 2


# ─── parallel modes ──────────────────────────────────────────────────────────


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["--async", "--sync"])
def test_async_and_sync_reach_n_exactly_without_duplicates(tmp_path, mode):
    module = _module(tmp_path, "import time\ndef run(x, id, **kw):\n"
                               "    time.sleep(0.01 * (id % 3))\n    return (x - 1) ** 2\n")
    assert _gopt(tmp_path, "-n", "13", "--workers", "3", "--n-initial", "4", mode,
                 module=module) == 0
    raw = _records(tmp_path, latest=False)
    assert sorted(r["id"] for r in raw) == list(range(13))
    points = [r["params"]["x"] for r in raw]
    assert len(set(points)) == 13


SLEEPY = """
import time

def run(x, id, **kwargs):
    time.sleep({sleep})
    return (x - 2) ** 2
"""


@pytest.mark.timeout(90)
def test_seeded_sync_suggestions_do_not_depend_on_timing(tmp_path):
    seqs = []
    for k, sleep in enumerate(["0.03 * (id % 2)", "0.03 * ((id + 1) % 2)"]):
        module = _module(tmp_path, SLEEPY.format(sleep=sleep), f"sleepy{k}.py")
        res = exp_gopt.optimize(_float_space(tmp_path), str(module), n=10, workers=2, sync=True,
                                n_initial=3, seed=5, out=tmp_path / f"out{k}", quiet=True)
        seqs.append([e.params["x"] for e in res.evaluations])
    assert seqs[0] == seqs[1]


@pytest.mark.timeout(60)
def test_same_seed_same_suggestions_with_one_worker(tmp_path):
    runs = [exp_gopt.optimize(_float_space(tmp_path), str(_module(tmp_path)), n=8, workers=1,
                              seed=11, out=tmp_path / f"o{k}", quiet=True) for k in range(2)]
    assert [e.params for e in runs[0].evaluations] == [e.params for e in runs[1].evaluations]


def test_pending_points_are_never_suggested_twice():
    from skopt.space import Integer
    opt = exp_gopt._Optimizer([Integer(0, 3, name="i")], seed=0)
    for i in (0, 1):
        opt.tell([i], float(i))
    pending = []
    for _ in range(2):
        pending.append(opt.ask(pending))
    assert sorted(pending) == [[2], [3]]
    assert opt.ask(pending + [[0], [1]]) is None  # every point pending
    assert opt.ask(pending) in ([0], [1])  # evaluated may come again once all are used



def test_the_gp_surrogate_is_scikit_optimizes_and_refits_warm():
    from skopt.learning import GaussianProcessRegressor
    from skopt.space import Real
    rng = np.random.RandomState(0)
    opt = exp_gopt._Optimizer([Real(0.0, 1.0, name="a"), Real(0.0, 1.0, name="b")], seed=0)
    for x in rng.rand(12, 2):
        opt.tell(list(x), float(((x - 0.3) ** 2).sum()))
    point = opt.ask()
    assert isinstance(opt.models[0], GaussianProcessRegressor)
    first = opt.models[0].kernel_.k1
    opt.tell(point, float(((np.asarray(point) - 0.3) ** 2).sum()))
    opt.ask([[0.9, 0.9]])  # refits once on the new result, lies at the pending point
    assert opt.models[0].kernel.k1.get_params()["k2__length_scale"].tolist() == \
        first.get_params()["k2__length_scale"].tolist()  # started from the last fit
    mean, std = opt._gp.predict_std(np.array([[0.3, 0.3], [1.0, 0.0]]))
    assert mean[0] < mean[1] and (std > 0).all()

# ─── failures ────────────────────────────────────────────────────────────────

FLAKY = """
import math, os

def run(x, id, **kwargs):
    if id == 1:
        raise ValueError("bad luck")
    if id == 2:
        return float("nan")
    if id == 3:
        return "not a number"
    if id == 4:
        os._exit(3)
    if id == 5:
        return None
    return x ** 2
"""


@pytest.mark.timeout(60)
def test_failing_runs_do_not_stop_the_search(tmp_path, capsys):
    module = _module(tmp_path, FLAKY, "flaky.py")
    assert _gopt(tmp_path, "-n", "12", "--workers", "2", "--n-initial", "7",
                 module=module) == 1
    records = {r["id"]: r for r in _records(tmp_path)}
    assert len(records) == 12
    assert records[1]["status"] == "failed" and "bad luck" in records[1]["error"]
    assert records[2]["status"] == "failed" and "not finite" in records[2]["error"]
    assert records[3]["status"] == "failed" and "not a number" in records[3]["error"]
    assert records[4]["status"] == "crashed"
    assert records[5]["status"] == "failed" and "None" in records[5]["error"]
    assert sum(r["status"] == "ok" for r in records.values()) == 7
    assert "7 ok, 5 not ok" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_cancel_stops_at_the_first_failure(tmp_path):
    module = _module(tmp_path, FLAKY, "flaky.py")
    assert _gopt(tmp_path, "-n", "12", "--workers", "1", "--cancel", module=module) == 1
    assert len(_records(tmp_path)) < 12


@pytest.mark.timeout(60)
def test_timeouts_are_journaled_and_the_search_goes_on(tmp_path):
    module = _module(tmp_path, "import time\ndef run(x, id, **kw):\n"
                               "    if id == 0:\n        time.sleep(30)\n    return x * x\n")
    assert _gopt(tmp_path, "-n", "6", "--workers", "2", "--timeout", "1", module=module) == 1
    records = _records(tmp_path)
    assert [r["status"] for r in records].count("timeout") == 1 and len(records) == 6


@pytest.mark.timeout(60)
def test_dict_results_need_an_objective_and_can_be_maximised(tmp_path, capsys):
    module = _module(tmp_path, "def run(x, **kw):\n    return {'score': -(x - 4) ** 2}\n",
                     "d.py")
    assert _gopt(tmp_path, "-n", "4", "--workers", "1", module=module) == 2
    assert "--objective KEY" in capsys.readouterr().err
    assert _gopt(tmp_path, "-n", "14", "--workers", "2", "--objective", "score", "--maximize",
                 "--seed", "1", module=module, name="m") == 0
    best = max(_records(tmp_path, "m"), key=lambda r: r["result"]["score"])
    assert abs(best["params"]["x"] - 4) < 1


# ─── resume and warm start ───────────────────────────────────────────────────


@pytest.mark.timeout(90)
def test_kill_and_resume_gives_n_without_reevaluating(tmp_path):
    space = _float_space(tmp_path)
    module = _module(tmp_path, "import time\ndef run(x, **kw):\n"
                               "    time.sleep(0.15)\n    return x * x\n", "slow.py")
    journal = tmp_path / "out" / "g.jsonl"
    cmd = [sys.executable, "-m", "exp", "gopt", "-p", str(space), "-m", str(module),
           "--out", str(tmp_path / "out"), "--name", "g", "-n", "16", "--workers", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if journal.exists() and len(exp.read_journal(journal)) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r["id"]: r for r in exp.read_journal(journal)}
    assert 5 <= len(before) < 16
    # the resume, in this process: replays the journal, then asks and tells live
    result = exp_gopt.optimize(space, str(module), out=tmp_path / "out", name="g", n=16,
                               workers=2, quiet=True)
    raw = exp.read_journal(journal, latest=False)
    assert sorted(r["id"] for r in raw) == list(range(16))  # each id once: nothing rerun
    for r in raw:
        if r["id"] in before:
            assert r == before[r["id"]]
    # the optimiser after the resume knows exactly what one built from the journal knows
    assert len(result.optimizer_state["told"]) == 16
    assert result.optimizer_state == exp_gopt.journal_state(space, journal)


@pytest.mark.timeout(60)
def test_rerun_with_larger_n_evaluates_only_the_difference(tmp_path):
    assert _gopt(tmp_path, "-n", "6", "--workers", "2", "--seed", "4") == 0
    first = _records(tmp_path)
    assert _gopt(tmp_path, "-n", "9", "--workers", "2", "--seed", "4") == 0
    raw = _records(tmp_path, latest=False)
    assert len(raw) == 9 and raw[:6] == first or sorted(r["id"] for r in raw) == list(range(9))
    assert _gopt(tmp_path, "-n", "9", "--workers", "2", "--seed", "4") == 0
    assert len(_records(tmp_path, latest=False)) == 9
    assert _gopt(tmp_path, "-n", "9", "--seed", "5") == 2  # another experiment


@pytest.mark.timeout(60)
def test_retry_failed_reruns_failed_points(tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("1")
    module = _module(tmp_path, f"import os\ndef run(x, id, **kw):\n"
                               f"    if id == 2 and os.path.exists({str(flag)!r}):\n"
                               f"        raise RuntimeError('not yet')\n    return x * x\n",
                     "retry.py")
    assert _gopt(tmp_path, "-n", "5", "--workers", "1", module=module) == 1
    failed = _records(tmp_path)[2]
    flag.unlink()
    assert _gopt(tmp_path, "-n", "5", "--workers", "1", "--retry-failed", module=module) == 0
    records = _records(tmp_path)
    assert len(records) == 5 and records[2]["status"] == "ok"
    assert records[2]["params"] == failed["params"]


@pytest.mark.timeout(60)
def test_warm_start_from_a_grid_journal(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[x]\ntype = "range"\nbounds = [-20, 20]\nstep = 4\n')
    module = _module(tmp_path)
    assert exp.main(["run", "-p", str(grid), "-m", str(module), "--out", str(tmp_path / "out"),
                     "-q", "--workers", "2"]) == 0
    grid_journal = tmp_path / "out" / "grid.jsonl"
    mapping = exp_gopt._Mapping(exp.ParamSpace(_float_space(tmp_path)))
    warm = exp_gopt._warm_points([grid_journal], mapping, exp.Goal([(None, False)]))
    assert sorted(p[0] for p, _, _ in warm) == [-8, -4, 0, 4, 8]  # only points inside the space
    res = exp_gopt.optimize(_float_space(tmp_path), str(module), n=4, workers=1, seed=0,
                            warm_start=[grid_journal], out=tmp_path / "out", quiet=True)
    # The grid already holds x = 0; no initial design, the model goes around it.
    assert len(res.evaluations) == 4 and all(abs(e.params["x"]) < 4 for e in res.evaluations)


# ─── plots and results ───────────────────────────────────────────────────────


@pytest.mark.timeout(90)
def test_plot_writes_valid_pngs_headless_and_results_redraws(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    space = tmp_path / "two.toml"
    space.write_text('[x]\ntype = "range"\nbounds = [-10, 10]\ndtype = "float"\n'
                     '[c]\ntype = "list"\nvalue = ["a", "b"]\n')
    module = _module(tmp_path, "def run(x, c, **kw):\n    return x * x + (c == 'a')\n", "two.py")
    assert _gopt(tmp_path, "-n", "10", "--workers", "2", "--plot", space=space,
                 module=module) == 0
    out = tmp_path / "out"
    for kind in ("convergence", "objective", "evaluations"):
        _assert_png(out / f"g_{kind}.png")
    (out / "g_convergence.png").unlink()
    capsys.readouterr()
    assert exp.main(["results", str(out / "g.jsonl"), "--plot"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert [Path(p).name for p in printed[-2:]] == ["g_convergence.png", "g_slices.png"]
    _assert_png(out / "g_convergence.png")
    _assert_png(out / "g_slices.png")


@pytest.mark.timeout(60)
def test_results_reads_a_gopt_journal(tmp_path, capsys):
    assert _gopt(tmp_path, "-n", "6", "--workers", "2", "-q") == 0
    journal = tmp_path / "out" / "g.jsonl"
    csv_path = tmp_path / "g.csv"
    assert exp.main(["results", str(journal), "--top", "3", "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "6 run(s): 6 ok" in out and "… 3 more run(s)" in out
    best = min(r["result"] for r in exp.read_journal(journal))
    assert float(out.splitlines()[3].split()[4]) == pytest.approx(best, rel=1e-5)  # sorted
    assert len(csv_path.read_text().splitlines()) == 7


# ─── the extra ───────────────────────────────────────────────────────────────


def test_missing_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "exp_gopt")
    for name in [m for m in sys.modules if m == "skopt" or m.startswith("skopt.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import skopt now fails
    assert _gopt(tmp_path, "-n", "3") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'exp[gopt]'" in err


def test_option_errors_are_one_line(tmp_path, capsys):
    assert _gopt(tmp_path, "-n", "0") == 2
    assert "n must be >= 1" in capsys.readouterr().err
    with pytest.raises(exp.ExpError, match="unknown surrogate 'XX'"):
        exp_gopt.optimize(_float_space(tmp_path), str(_module(tmp_path)), surrogate="XX")
    journal = tmp_path / "j.jsonl"
    journal.write_text(json.dumps({"kind": "header", "command": "gopt", "space": {
        "x": {"type": "range", "bounds": [0, 1], "step": 1, "dtype": "float"}}}) + "\n")
    with pytest.raises(exp.ExpError, match="no usable result"):
        exp_gopt.plot_journal(journal)



@pytest.mark.timeout(60)
def test_objective_typo_stops_at_once_and_default_name(tmp_path):
    (tmp_path / "s.toml").write_text('[x]\ntype = "range"\nbounds = [-1, 1]\n')
    (tmp_path / "job.py").write_text("def run(x):\n    return {'loss': x * x}\n")
    args = ["gopt", "-p", str(tmp_path / "s.toml"), "-m", str(tmp_path / "job.py"), "-n", "8",
            "-w", "1", "--out", str(tmp_path), "-q"]
    assert exp.main([*args, "--objective", "los"]) == 2
    records = exp.read_journal(tmp_path / "s-gopt.jsonl")
    assert len(records) == 1  # stopped at the first result, not after the whole budget
    assert exp.main([*args, "--objective", "loss", "--fresh"]) == 0
    assert len(exp.read_journal(tmp_path / "s-gopt.jsonl")) == 8
