"""Runs that report as they train, and early stopping (median, ASHA, hyperband), with
real worker processes, real signals and a real Dask cluster on 127.0.0.1."""

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
from test_exp import HERE, cli, write

ENV = {**os.environ, "PYTHONPATH": str(HERE)}

#: A learning curve per configuration: loss falls with the epoch towards a floor set by
#: the configuration (seeded, so every experiment sees the same curves).
TRAIN = """
import time, exp

def floor(q):
    return ((q * 7919) % 23) / 23.0

def run(q, epochs=9, pause=0.02, **kw):
    loss = None
    for epoch in range(1, epochs + 1):
        loss = floor(q) + 1.0 / epoch
        exp.report(epoch, loss=loss, acc=1 - loss)
        time.sleep(pause)
    return {"loss": loss, "acc": 1 - loss}
"""


def space(tmp_path: Path, n: int) -> Path:
    return write(tmp_path / "s.toml", f'[q]\ntype = "range"\nbounds = [0, {n}]\ndtype = "int"\n')


def statuses(journal: Path) -> dict[int, tuple]:
    """Each run's status and, when pruned, the step of the report it was stopped at."""
    return {r["id"]: (r["status"], r.get("pruned_at")) for r in exp.read_journal(journal)}


# ─── reporting ───────────────────────────────────────────────────────────────


def test_report_outside_exp_does_nothing(tmp_path):
    script = write(tmp_path / "alone.py", "import exp\nexp.report(1, loss=0.5)\n"
                                          "print(exp.should_stop())\n")
    env = {k: v for k, v in ENV.items() if not k.startswith("EXP_")}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "False\n"), out.stderr


def test_pruned_is_a_base_exception():
    assert issubclass(exp.Pruned, BaseException) and not issubclass(exp.Pruned, Exception)


@pytest.mark.timeout(60)
def test_reports_are_journaled_and_a_pruned_run_keeps_its_last_metrics(tmp_path):
    space(tmp_path, 12)
    write(tmp_path / "train.py", TRAIN)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "asha",
              "--objective", "loss", "--max-step", "9", cwd=tmp_path)
    assert out.returncode == 0, out.stderr  # pruned is not a failure
    records = exp.read_journal(tmp_path / "s.jsonl")
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned and len(pruned) < 12
    for r in pruned:
        assert r["result"] == r["reported"] and "loss" in r["result"]
        assert 1 <= r["pruned_at"] <= r["step"] < 9
        assert r["error"].startswith(f"pruned by asha at step {r['pruned_at']}: rung ")
    for r in records:
        assert r["attempt"].startswith(f"{r['id']},1,")
    reports = exp.read_reports(tmp_path / "s.jsonl")
    by_run = {}
    for rep in reports:
        by_run.setdefault(rep["id"], []).append(rep["step"])
    assert by_run[0] == list(range(1, 10))  # the first run is never pruned
    assert all(max(by_run[r["id"]]) == r["step"] for r in records)
    # nothing to run again: pruned runs are not rerun, not even with --retry-failed
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "asha",
              "--objective", "loss", "--max-step", "9", "--retry-failed", cwd=tmp_path)
    assert out.returncode == 0 and "nothing to run" in out.stderr, out.stderr


@pytest.mark.timeout(60)
def test_pruned_goes_through_except_exception_and_runs_finally(tmp_path):
    space(tmp_path, 6)
    write(tmp_path / "train.py", """
        import exp, time
        def run(q, **kw):
            try:
                for epoch in range(1, 30):
                    try:
                        exp.report(epoch, value=q + 1 / epoch)
                    except Exception:
                        pass  # a broad except in user code cannot swallow Pruned
                    time.sleep(0.01)
            finally:
                open(f"finally-{q}", "w").close()
            return q
    """)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "median",
              "--min-step", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "s.jsonl")
    assert [r["status"] for r in records[:5]] == ["ok"] * 5  # the median waits for 5 runs
    assert records[5]["status"] == "pruned"
    assert all((tmp_path / f"finally-{q}").exists() for q in range(6))


@pytest.mark.timeout(60)
def test_a_process_the_run_starts_reports_too_with_any_copy_of_exp(tmp_path):
    """The run starts a training script in a subprocess that imports a vendored copy of
    exp (another file): its reports reach the driver and the stop reaches it."""
    vendored = tmp_path / "vendor"
    vendored.mkdir()
    (vendored / "exp.py").write_bytes((HERE / "exp.py").read_bytes())
    write(tmp_path / "child.py", f"""
        import sys, time
        sys.path.insert(0, {str(vendored)!r})
        import exp
        assert exp.__file__.startswith({str(vendored)!r})
        q = int(sys.argv[1])
        try:
            for epoch in range(1, 40):
                exp.report(epoch, loss=q + 1 / epoch)
                time.sleep(0.01)
        except exp.Pruned:
            sys.exit(3)
    """)
    write(tmp_path / "train.py", """
        import subprocess, sys, exp
        def run(q):
            code = subprocess.call([sys.executable, "child.py", str(q)])
            if code == 3:
                raise exp.Pruned("the training script was stopped")
            return q
    """)
    space(tmp_path, 4)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "asha",
              "--objective", "loss", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "s.jsonl")
    assert records[0]["status"] == "ok" and records[0]["step"] == 39
    assert [r["status"] for r in records[1:]] == ["pruned"] * 3
    assert all(r["step"] < 39 and r["result"]["loss"] > 1 for r in records[1:])


@pytest.mark.timeout(60)
def test_a_stopped_run_that_does_not_report_again_is_killed_after_the_grace(tmp_path):
    space(tmp_path, 3)
    write(tmp_path / "train.py", """
        import exp, time
        def run(q):
            try:
                exp.report(1, loss=q)
            except exp.Pruned:
                pass  # a training loop that swallows the stop, then a long epoch
            time.sleep(0 if q == 0 else 60)  # no report comes
            return q
    """)
    t0 = time.monotonic()
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "asha",
              "--objective", "loss", "--prune-grace", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 20
    records = exp.read_journal(tmp_path / "s.jsonl")
    assert [r["status"] for r in records] == ["ok", "pruned", "pruned"]
    assert records[1]["error"].endswith("killed after --prune-grace 1s without another report")
    assert records[1]["result"] == {"loss": 1}


@pytest.mark.timeout(60)
def test_bad_reports_fail_their_run_with_the_message(tmp_path):
    space(tmp_path, 3)
    write(tmp_path / "train.py", """
        import exp
        def run(q):
            exp.report(2, loss=1.0)
            if q == 1:
                exp.report(1, loss=0.5)
            if q == 2:
                exp.report(3, loss="high")
            return q
    """)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", cwd=tmp_path)
    assert out.returncode == 1
    records = exp.read_journal(tmp_path / "s.jsonl")
    assert records[0]["status"] == "ok"
    assert "exp.report: step 1 after step 2 (steps must not go backwards)" in records[1]["error"]
    assert "exp.report: metric 'loss' must be a number, got 'high'" in records[2]["error"]


@pytest.mark.parametrize("flags, message", [
    (["--prune", "asha", "--eta", "1"], "exp: error: --eta must be an integer >= 2, got 1"),
    (["--prune", "asha", "--min-step", "9", "--max-step", "3"],
     "exp: error: --min-step 9.0 must be below --max-step 3.0"),
    (["--prune", "asha", "--prune-grace", "0"],
     "exp: error: --prune-grace must be a number of seconds > 0, got 0.0"),
    (["--prune", "asha"], "exp: error: --prune reads the metric 'value', but run 0 reported "
                          "'loss', 'acc' (give --objective KEY, or report(step, value))"),
])
def test_bad_pruning_flags_are_one_line(tmp_path, flags, message):
    space(tmp_path, 3)
    write(tmp_path / "train.py", TRAIN)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", *flags, cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (2, message)


def test_an_unknown_scheduler_is_refused(tmp_path):
    with pytest.raises(exp.ExpError, match="unknown --prune 'sha' \\(valid schedulers are"):
        exp.run_experiment(space(tmp_path, 2), "x.py", prune="sha")
    out = cli("run", "-p", "s.toml", "-m", "x.py", "--prune", "sha", cwd=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'sha'" in out.stderr


# ─── the schedulers' arithmetic ──────────────────────────────────────────────


def test_asha_promotes_the_best_third_of_each_rung():
    p = exp._Pruner("asha", min_step=1, max_step=27, eta=3)
    decisions = [p.report((i, 1), 1, v) for i, v in enumerate([5, 4, 6, 3, 7, 2])]
    # n=1: best so far; n=2: 4 beats 5; n=3: 6 loses; n=4: 3 best; n=5: 7 loses;
    # n=6: keep the best 2 of [5, 4, 6, 3, 7, 2] -> 2 goes on
    assert [d is None for d in decisions] == [True, True, False, True, False, True]
    assert p.report((0, 1), 3, 1.0) is None  # the next rung is at step 3
    assert p.report((1, 1), 2, 9.0) is None  # between rungs nothing is decided


def test_hyperband_brackets_and_median():
    hb = exp._Pruner("hyperband", min_step=1, max_step=27, eta=3)
    assert [b.rate for b in hb.brackets] == [0, 1, 2, 3]
    assert hb.budgets == [27, 12, 6, 4]  # ceil(n eta^(n-1-s) / (n-s)), as Optuna's
    assert hb.bracket((5, 1)) is hb.bracket((5, 1))
    learn = exp._Pruner("hyperband", min_step=1, eta=3)
    assert learn.report((0, 1), 1, 1.0) is None and not learn.brackets
    learn.end((0, 1), "ok", 9)
    assert len(learn.brackets) == 3
    med = exp._Pruner("median", maximize=True, min_step=1)
    for i in range(5):
        for step in (1, 2):
            assert med.report((i, 1), step, 0.5 + i / 10) is None
        med.end((i, 1), "ok", 2)
    assert "worse than the median 0.7 of 5 finished runs" in med.report((9, 1), 1, 0.65)
    assert med.report((8, 1), 1, 0.75) is None
    assert med.report((8, 1), 2, 0.6) is None  # its best so far, 0.75, is above the median


# ─── resume ──────────────────────────────────────────────────────────────────


@pytest.mark.timeout(240)
@pytest.mark.parametrize("prune", ["asha", "hyperband", "median"])
def test_killed_and_resumed_decides_as_uninterrupted(tmp_path, prune):
    """The same seeded curves, once straight through and once with kill -9 of the driver
    at random moments and reruns: the same runs pruned, at the same steps."""
    write(tmp_path / "train.py", TRAIN)
    args = ["run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", prune,
            "--objective", "loss", "--min-step", "1", "--max-step", "9", "-q"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for d in (whole, broken):
        d.mkdir()
        space(d, 24)
        (d / "train.py").write_text((tmp_path / "train.py").read_text())
    out = cli(*args, cwd=whole)
    assert out.returncode == 0, out.stderr
    rng, kills = random.Random(prune), 0
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-m", "exp", *args], cwd=broken, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.5, 2.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0
        break
    else:
        pytest.fail("the experiment never completed")
    assert kills >= 1
    assert statuses(broken / "s.jsonl") == statuses(whole / "s.jsonl")
    assert {s for s, _ in statuses(whole / "s.jsonl").values()} == {"ok", "pruned"}


# ─── progress, gopt, Dask ────────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_the_progress_line_shows_the_steps_of_runs_in_flight(tmp_path):
    space(tmp_path, 2)
    write(tmp_path / "train.py", TRAIN)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "2", "--progress-every", "0.1",
              cwd=tmp_path, env={"EXP_TEST": "1"})
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("exp 0:")]
    assert any("| steps " in line and "2 running" in line for line in lines), lines


@pytest.mark.timeout(180)
def test_gopt_with_hyperband_and_resume_by_replay(tmp_path):
    exp_gopt = pytest.importorskip("exp_gopt")
    write(tmp_path / "s.toml", '[q]\ntype = "range"\nbounds = [0, 22]\ndtype = "int"\n')
    write(tmp_path / "train.py", TRAIN)
    result = exp_gopt.optimize(tmp_path / "s.toml", str(tmp_path / "train.py"), n=16,
                               workers=1, objective="loss", prune="hyperband", max_step=9,
                               out=tmp_path, seed=2, quiet=True)
    statuses_ = [e.status for e in result.evaluations]
    assert len(statuses_) == 16 and "pruned" in statuses_ and "ok" in statuses_
    assert result.fun == min(e.value for e in result.evaluations if e.status == "ok")
    assert result.optimizer_state == exp_gopt.journal_state(
        tmp_path / "s.toml", tmp_path / "s-gopt.jsonl", objective="loss")
    told = len(result.optimizer_state["told"])
    n_ok = statuses_.count("ok")
    assert told == n_ok  # pruned runs are not told (pruned_as="skip")...
    assert len(result.optimizer_state["evaluated"]) == 16  # ...only not suggested again
    last = exp_gopt.optimize(tmp_path / "s.toml", str(tmp_path / "train.py"), n=16,
                             workers=1, objective="loss", prune="hyperband", max_step=9,
                             out=tmp_path, name="last", seed=2, quiet=True, pruned_as="last")
    assert len(last.optimizer_state["told"]) == 16  # told at their last reported value


@pytest.mark.timeout(180)
def test_reports_and_stops_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    space(tmp_path, 10)
    write(tmp_path / "train.py", TRAIN.replace("epochs=9, pause=0.02", "epochs=9, pause=0.2"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as c:
        records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "train.py"),
                                     cluster=c.scheduler_address, prune="asha", objective="loss",
                                     max_step=9, out=tmp_path, quiet=True)
    assert len(records) == 10
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned and all(r["step"] < 9 and r["result"]["loss"] for r in pruned)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["step"] == 9 for r in ok)
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert sum('"kind":"report"' in line for line in lines) >= 10
    assert json.loads(lines[0])["kind"] == "header"


@pytest.mark.timeout(120)
def test_a_stopped_run_stops_at_the_report_that_decided(tmp_path):
    """The verdict comes back to the report that asked: a run stopped at step 1 does not
    train a second epoch."""
    write(tmp_path / "train.py", """
        import exp, time
        def run(q):
            for epoch in range(1, 10):
                time.sleep(0.05)
                with open(f"trained-{q}", "a") as f:
                    f.write(f"{epoch}\\n")
                exp.report(epoch, loss=q + 1 / epoch)
            return {"loss": q + 1 / 9}
    """)
    space(tmp_path, 6)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "1", "--prune", "asha",
              "--objective", "loss", "--max-step", "9", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pruned = [r for r in exp.read_journal(tmp_path / "s.jsonl") if r["status"] == "pruned"]
    assert pruned
    for r in pruned:
        trained = (tmp_path / f"trained-{r['params']['q']}").read_text().split()
        assert int(trained[-1]) == r["pruned_at"] == r["step"], r
