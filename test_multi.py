"""Tests of several objectives and constraints: the Pareto front, its hypervolume,
exp gopt --objective A:max --objective B:min --constraint, exp results --pareto.
Real worker processes, real scikit-optimize, outputs in tmp_path."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import exp

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE)}

SPACE = """
[x1]
type = "range"
bounds = [0.0, 1.0]
[x2]
type = "range"
bounds = [0.0, 1.0]
[x3]
type = "range"
bounds = [0.0, 1.0]
"""

# ZDT1 on three variables (front: f2 = 1 - sqrt(f1) at x2 = x3 = 0), with "acc" to
# maximise standing for -f2, and a memory that grows with x2 + x3.
ZDT = """
import math, time

def run(x1, x2, x3, pause=0.0, **kw):
    time.sleep(pause)
    g = 1 + 9 * (x2 + x3) / 2
    f2 = g * (1 - math.sqrt(x1 / g))
    return {"f1": x1, "acc": -f2, "mem": 1000 * (x2 + x3), "other": "text"}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def setup(tmp_path: Path, runnable: str = ZDT) -> tuple[Path, Path]:
    return write(tmp_path / "s.toml", SPACE), write(tmp_path / "zdt.py", runnable)


def dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exp", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=240)


# ─── the arithmetic ──────────────────────────────────────────────────────────


def test_pareto_front_keeps_exactly_the_non_dominated():
    rng = random.Random(0)
    points = [(rng.randint(0, 9), rng.randint(0, 9), rng.randint(0, 9)) for _ in range(300)]
    front = exp.pareto_front(points)
    for i, p in enumerate(points):
        beaten = any(dominates(q, p) for q in points)
        assert (i in front) == (not beaten)
    assert front == sorted(front)
    assert exp.pareto_front([(1, 2), (1, 2), (2, 1), (2, 2)]) == [0, 1, 2]  # ties both stay
    assert exp.pareto_front([]) == []


def test_hypervolume_is_exact():
    assert exp.hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert exp.hypervolume([(1, 3), (2, 2), (3, 1), (3, 3), (5, 0)], (4, 4)) == pytest.approx(6.0)
    assert exp.hypervolume([], (1, 1)) == 0.0
    assert exp.hypervolume([(0.5,)], (2,)) == pytest.approx(1.5)
    # two boxes in 3-D: inclusion-exclusion
    a, b, ref = (1, 2, 3), (2, 1, 1), (4, 4, 4)
    vol = lambda p: (ref[0] - p[0]) * (ref[1] - p[1]) * (ref[2] - p[2])  # noqa: E731
    both = vol(tuple(max(x, y) for x, y in zip(a, b)))
    assert exp.hypervolume([a, b], ref) == pytest.approx(vol(a) + vol(b) - both)
    # against a dense grid count in 3-D
    rng = random.Random(1)
    points = [(rng.random(), rng.random(), rng.random()) for _ in range(25)]
    n = 40
    cells = sum(any(all(c >= p[k] for k, c in enumerate(((i + .5) / n, (j + .5) / n,
                                                         (k + .5) / n))) for p in points)
                for i, j, k in itertools.product(range(n), repeat=3))
    assert exp.hypervolume(points, (1, 1, 1)) == pytest.approx(cells / n ** 3, abs=0.02)


def test_reference_point_is_the_worst_plus_a_tenth_of_the_range():
    assert exp.reference_point([10.0, 5.0], [0.0, 5.0]) == pytest.approx([11.0, 5.1])  # range 1
    assert exp.reference_point([10.0, 5.0], [0.0, 4.0], {1: 7.0}) == pytest.approx([11.0, 7.0])


def test_objectives_and_constraints_parse_or_say_why():
    assert exp.objectives_of(None) == [(None, False)]
    assert exp.objectives_of(None, True) == [(None, True)]
    assert exp.objectives_of(["acc:max", "latency_ms:min", "loss"]) == [
        ("acc", True), ("latency_ms", False), ("loss", False)]
    assert exp.objectives_of(["score"], True) == [("score", True)]
    assert exp.objectives_of(["val:acc"]) == [("val:acc", False)]  # not a direction: a key
    with pytest.raises(exp.ExpError, match="given twice"):
        exp.objectives_of(["acc:max", "acc:min"])
    with pytest.raises(exp.ExpError, match="give the direction once"):
        exp.objectives_of(["acc:max"], True)
    assert exp.parse_constraint("memory_mb <= 8000") == ("memory_mb", "<=", 8000.0)
    assert exp.parse_constraint("acc>=0.9") == ("acc", ">=", 0.9)
    for bad in ("memory_mb < 8000", "memory_mb <= lots", "<= 3", "memory_mb <= nan"):
        with pytest.raises(exp.ExpError, match="expected"):
            exp.parse_constraint(bad)
    goal = exp.Goal.of({"acc": "max", "lat": "min"}, ["mem <= 10"])
    assert goal.read({"acc": 0.9, "lat": 3, "mem": 12}) == ([-0.9, 3.0], [2.0], None)
    vector, _, why = goal.read({"acc": 0.9, "mem": 1})
    assert vector is None and "'lat'" in why and "'acc'" in why  # says the keys it has
    with pytest.raises(exp.ExpError, match="which is an objective"):
        exp.Goal.of({"acc": "max"}, ["acc >= 0.5"])


# ─── exp gopt with several objectives ────────────────────────────────────────


@pytest.mark.timeout(240)
def test_gopt_finds_a_front_and_prints_it_sorted(tmp_path):
    setup(tmp_path)
    out = cli("gopt", "-p", "s.toml", "-m", "zdt.py", "-n", "30", "-w", "2", "--seed", "3",
              "--objective", "f1:min", "--objective", "acc:max", "--constraint", "mem <= 600",
              "--progress-every", "0.2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| front " in out.stderr and "| hypervolume " in out.stderr  # the progress line
    assert "best 5" not in out.stderr  # one objective's ranking would mislead
    assert "goal: min f1, max acc (subject to mem <= 600)" in out.stderr
    journal = tmp_path / "s-gopt.jsonl"
    header = json.loads(journal.read_text().splitlines()[0])
    assert header["objectives"] == [["f1", "min"], ["acc", "max"]]
    assert header["constraints"] == ["mem <= 600"]
    records = exp.read_journal(journal)
    assert len(records) == 30 and all(r["status"] == "ok" for r in records)
    usable = [(r["id"], (r["result"]["f1"], -r["result"]["acc"]), r["result"]["mem"] <= 600)
              for r in records]
    feasible = [(i, v) for i, v, ok in usable if ok]
    expected = sorted((v, i) for i, v in feasible if not any(dominates(w, v) for _, w in feasible))
    # the summary's front, sorted by f1
    lines = out.stderr.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("pareto front:"))
    assert f"pareto front: {len(expected)} of {len(feasible)} feasible" in lines[at]
    ids = [int(line.split()[0]) for line in lines[at + 3:at + 3 + len(expected)]]
    assert ids == [i for _, i in expected]
    # exp results --pareto reads the same front from the journal alone
    shown = cli("results", "s-gopt.jsonl", "--pareto", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert [row["id"] for row in json.loads(shown.stdout)] == [i for _, i in expected]
    text = cli("results", "s-gopt.jsonl", "--pareto", cwd=tmp_path).stdout
    assert "pareto front of min f1, max acc (subject to mem <= 600)" in text
    assert "hypervolume" in text and "reference point f1=" in text
    # the front moved towards the true one: x2 + x3 small on most of it
    near = [r for r in records if r["id"] in ids and r["params"]["x2"] + r["params"]["x3"] < 0.1]
    assert len(near) >= len(ids) // 2


@pytest.mark.timeout(240)
def test_library_front_hypervolume_and_reference(tmp_path):
    pytest.importorskip("skopt")
    import exp_gopt
    space, module = setup(tmp_path)
    result = exp_gopt.optimize(space, str(module), n=24, workers=2, seed=5, out=tmp_path,
                               objectives={"f1": "min", "acc": "max"},
                               constraints=["mem <= 900"], quiet=True)
    assert result.completed and len(result.evaluations) == 24
    usable = [e for e in result.evaluations if e.values is not None]
    assert all(e.feasible == (e.params["x2"] + e.params["x3"] <= 0.9) for e in usable)
    vectors = {e.id: (e.values["f1"], -e.values["acc"]) for e in usable if e.feasible}
    front = {i for i, v in vectors.items() if not any(dominates(w, v) for w in vectors.values())}
    assert {e.id for e in result.pareto} == front
    assert [e.values["f1"] for e in result.pareto] == sorted(e.values["f1"] for e in result.pareto)
    worst = [max(e.values["f1"] for e in usable), min(e.values["acc"] for e in usable)]
    best = [min(e.values["f1"] for e in usable), max(e.values["acc"] for e in usable)]
    assert result.reference["f1"] == pytest.approx(worst[0] + 0.1 * (worst[0] - best[0]))
    assert result.reference["acc"] == pytest.approx(worst[1] - 0.1 * (best[1] - worst[1]))
    ref = (result.reference["f1"], -result.reference["acc"])
    assert result.hypervolume == pytest.approx(exp.hypervolume(list(vectors.values()), ref))
    assert result.x == result.pareto[0].params and result.fun == result.pareto[0].value
    # the library's exp.pareto agrees, and takes a reference point
    got = exp.pareto(result.journal, ref={"f1": 2.0, "acc": -10.0})
    assert [r["id"] for r in got.table.rows] == [e.id for e in result.pareto]
    assert got.reference == {"f1": 2.0, "acc": -10.0}
    assert got.hypervolume == pytest.approx(exp.hypervolume(list(vectors.values()), (2.0, 10.0)))
    again = exp_gopt.optimize(space, str(module), n=24, workers=2, out=tmp_path, quiet=True,
                              objectives={"f1": "min", "acc": "max"}, constraints=["mem <= 900"],
                              ref={"f1": 2.0, "acc": -10.0})
    assert again.hypervolume == pytest.approx(got.hypervolume)


@pytest.mark.timeout(240)
def test_a_constraint_no_early_run_meets_is_found_by_its_model(tmp_path):
    pytest.importorskip("skopt")
    import exp_gopt
    space = write(tmp_path / "s.toml", SPACE)
    module = write(tmp_path / "tight.py", "def run(x1, x2, x3):\n"
                   "    return {'f1': x1 + x3, 'f2': 1 - x1 + x3, 'a': 100 * x2, 'b': 100 * x3}\n")
    # feasible: x2 <= 0.06 and x3 <= 0.06, a third of a percent of the space
    result = exp_gopt.optimize(space, str(module), n=25, workers=1, seed=2, out=tmp_path,
                               objectives={"f1": "min", "f2": "min"}, n_initial=5,
                               constraints=["a <= 6", "b <= 6"], quiet=True)
    early = result.evaluations[:5]
    assert not any(e.feasible for e in early), "the initial design met the constraints"
    feasible = [e for e in result.evaluations if e.feasible]
    assert len(feasible) >= 5, [e.params for e in result.evaluations]
    assert result.pareto and all(e.feasible for e in result.pareto)
    # and while none is feasible, the summary says so rather than showing a front
    none = exp_gopt.optimize(space, str(module), n=3, workers=1, seed=2, out=tmp_path,
                             name="none", objectives={"f1": "min", "f2": "min"},
                             constraints=["a <= -1"], quiet=True)
    assert none.pareto == [] and none.hypervolume == 0.0
    assert "no feasible result yet" in exp_gopt._report(none)


@pytest.mark.timeout(240)
def test_sync_with_a_seed_suggests_the_same_points_again(tmp_path):
    setup(tmp_path)
    args = ["gopt", "-p", "s.toml", "-m", "zdt.py", "-n", "12", "-w", "2", "--sync",
            "--seed", "7", "--objective", "f1", "--objective", "acc:max",
            "--constraint", "mem <= 1200", "-q"]
    for name in ("a", "b"):
        assert cli(*args, "--name", name, cwd=tmp_path).returncode == 0
    points = [[r["params"] for r in exp.read_journal(tmp_path / f"{n}.jsonl")] for n in "ab"]
    assert points[0] == points[1]


@pytest.mark.timeout(240)
def test_kill_9_and_resume_rebuilds_the_state_of_the_journal(tmp_path):
    pytest.importorskip("skopt")
    import exp_gopt
    space, module = setup(tmp_path, ZDT.replace("pause=0.0", "pause=0.1"))
    journal = tmp_path / "g.jsonl"
    cmd = [sys.executable, "-m", "exp", "gopt", "-p", str(space), "-m", str(module), "-q",
           "--out", str(tmp_path), "--name", "g", "-n", "18", "-w", "2",
           "--objective", "f1:min", "--objective", "acc:max", "--constraint", "mem <= 700"]
    proc = subprocess.Popen(cmd, env=ENV, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(exp.read_journal(journal)) >= 7:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r["id"]: r for r in exp.read_journal(journal)}
    assert 7 <= len(before) < 18
    # the resume names no goal: the journal's is kept
    result = exp_gopt.optimize(space, str(module), out=tmp_path, name="g", n=18, workers=2,
                               quiet=True)
    raw = exp.read_journal(journal, latest=False)
    assert sorted(r["id"] for r in raw) == list(range(18))  # nothing evaluated twice
    assert all(r == before[r["id"]] for r in raw if r["id"] in before)
    assert result.objectives == [("f1", False), ("acc", True)]
    assert len(result.optimizer_state["told"]) == 18
    assert result.optimizer_state == exp_gopt.journal_state(space, journal)
    # a different goal on the same journal is another search
    with pytest.raises(exp.ExpError, match="is a search to min f1, max acc"):
        exp_gopt.optimize(space, str(module), out=tmp_path, name="g", n=20, quiet=True,
                          objectives={"f1": "min", "mem": "min"})


@pytest.mark.timeout(240)
def test_warm_start_from_a_search_of_several_objectives(tmp_path):
    pytest.importorskip("skopt")
    import exp_gopt
    space, module = setup(tmp_path)
    goal = dict(objectives={"f1": "min", "acc": "max"}, constraints=["mem <= 800"])
    first = exp_gopt.optimize(space, str(module), n=8, workers=2, seed=1, out=tmp_path,
                              name="first", quiet=True, **goal)
    second = exp_gopt.optimize(space, str(module), n=4, workers=2, seed=1, out=tmp_path,
                               name="second", warm_start=[first.journal], quiet=True, **goal)
    assert len(second.optimizer_state["told"]) == 12  # the 8 warm points and its own 4
    firsts = {json.dumps(e.params, sort_keys=True) for e in first.evaluations}
    assert not any(json.dumps(e.params, sort_keys=True) in firsts for e in second.evaluations)


@pytest.mark.timeout(240)
def test_pruning_watches_the_first_objective(tmp_path):
    space = write(tmp_path / "s.toml", '[q]\ntype = "range"\nbounds = [0, 40]\ndtype = "int"\n')
    write(tmp_path / "train.py", """
import exp, time

def run(q):
    floor = ((q * 7919) % 23) / 23.0
    for epoch in range(1, 10):
        loss = floor + 1.0 / epoch
        exp.report(epoch, loss=loss, size=q)
        time.sleep(0.01)
    return {"loss": loss, "size": q}
""")
    out = cli("gopt", "-p", space.name, "-m", "train.py", "-n", "24", "-w", "2", "--seed", "1",
              "--objective", "loss", "--objective", "size:min", "--prune", "median",
              "--max-step", "9", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "s-gopt.jsonl")
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned and all("median" in r["error"] for r in pruned)
    front = exp.pareto(tmp_path / "s-gopt.jsonl")
    assert front.table.rows and all(r["status"] == "ok" for r in front.table.rows)


# ─── bad input ───────────────────────────────────────────────────────────────


@pytest.mark.timeout(120)
def test_bad_goals_are_one_line_errors(tmp_path):
    setup(tmp_path)
    base = ["gopt", "-p", "s.toml", "-m", "zdt.py", "-n", "6", "-w", "1", "-q"]
    cases = [
        (["--objective", "f1", "--objective", "f1:max"], "'f1' is given twice"),
        (["--objective", "acc:max", "--maximize"], "give the direction once"),
        (["--objective", "f1", "--objective", "acc:max", "--constraint", "mem < 3"],
         "expected \"KEY <= NUMBER\""),
        (["--objective", "f1", "--objective", "acc:max", "--ref", "nope=3"], "--ref nope=3"),
        (["--objective", "f1", "--ref", "f1=3"], "only several objectives have"),
    ]
    for extra, message in cases:
        out = cli(*base, *extra, cwd=tmp_path)
        assert out.returncode == 2, (extra, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert not (tmp_path / "s-gopt.jsonl").exists()
    run = cli("run", "-p", "s.toml", "-m", "zdt.py", "--objective", "f1", "--objective", "acc",
              cwd=tmp_path)
    assert run.returncode == 2 and "one --objective" in run.stderr


@pytest.mark.timeout(120)
def test_an_objective_the_runs_do_not_return_stops_at_the_first(tmp_path):
    setup(tmp_path)
    out = cli("gopt", "-p", "s.toml", "-m", "zdt.py", "-n", "8", "-w", "1", "-q",
              "--objective", "f1", "--objective", "latency:min", cwd=tmp_path)
    assert out.returncode == 2
    assert "--objective 'latency'" in out.stderr and "'acc'" in out.stderr
    records = exp.read_journal(tmp_path / "s-gopt.jsonl")
    assert len(records) == 1 and records[0]["status"] == "failed"
    assert "keys: 'f1', 'acc', 'mem', 'other'" in records[0]["error"]
    out = cli("gopt", "-p", "s.toml", "-m", "zdt.py", "-n", "8", "-w", "1", "-q", "--fresh",
              "--objective", "f1", "--objective", "acc:max", "--constraint", "memory <= 3",
              cwd=tmp_path)
    assert out.returncode == 2 and "--constraint 'memory'" in out.stderr


@pytest.mark.timeout(120)
def test_results_pareto_of_a_grid(tmp_path):
    write(tmp_path / "g.toml", '[a]\ntype = "range"\nbounds = [0, 4]\ndtype = "int"\n'
                               '[b]\ntype = "range"\nbounds = [0, 4]\ndtype = "int"\n')
    write(tmp_path / "g.py", "def run(a, b):\n    return {'cost': a + b, 'gain': a * b - b * b}\n")
    assert cli("run", "-p", "g.toml", "-m", "g.py", "-r", "2", "-q", cwd=tmp_path).returncode == 0
    out = cli("results", "g.jsonl", "--pareto", "--objective", "cost:min",
              "--objective", "gain:max", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    configs = {(r["params"]["a"], r["params"]["b"]) for r in exp.read_journal(tmp_path / "g.jsonl")}
    assert len(configs) >= 16
    points = {(a, b): (a + b, -(a * b - b * b)) for a, b in configs}
    front = sorted(v for v in points.values() if not any(dominates(w, v) for w in points.values()))
    assert sorted({(r["cost.mean"], -r["gain.mean"]) for r in rows}) == sorted(set(front))
    one = cli("results", "g.jsonl", "--pareto", "--objective", "cost", cwd=tmp_path)
    assert one.returncode == 2 and "give two or more" in one.stderr


@pytest.mark.timeout(240)
def test_plots_draw_the_front(tmp_path):
    pytest.importorskip("matplotlib")
    import exp_gopt
    space, module = setup(tmp_path)
    result = exp_gopt.optimize(space, str(module), n=12, workers=2, seed=1, out=tmp_path,
                               objectives={"f1": "min", "acc": "max", "mem": "min"},
                               plot=True, quiet=True)
    names = {p.name for p in result.plots}
    assert {"s-gopt_pareto.png", "s-gopt_convergence.png", "s-gopt_objective_f1.png",
            "s-gopt_objective_acc.png", "s-gopt_objective_mem.png"} <= names
    assert all(p.stat().st_size > 10_000 for p in result.plots)
    pngs = exp_gopt.plot_journal(result.journal)
    assert any(p.endswith("s-gopt_pareto.png") for p in pngs)
