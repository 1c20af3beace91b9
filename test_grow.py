"""A sweep grows without losing it: a run is its configuration and repeat, not its
position in the grid. Real processes; each kind of change and each refusal."""

import json
from pathlib import Path

import pytest

import exp
from test_exp import cli, write

JOB = "def run(x, **kw):\n    return x * 10\n"


def space(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "s.toml", text)


def ran(tmp_path: Path) -> list[tuple]:
    """(params, run) of every run record in the journal, in order."""
    lines = (tmp_path / "s.jsonl").read_text().splitlines()[1:]
    return [(json.dumps(r["params"], sort_keys=True), r["run"]) for r in map(json.loads, lines)
            if "status" in r]


def run(tmp_path: Path, *extra: str) -> "subprocess.CompletedProcess":  # noqa: F821
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q", *extra, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("before, after, new", [
    ('[x]\ntype = "list"\nvalue = [1, 2]\n', '[x]\ntype = "list"\nvalue = [1, 2, 3]\n', 1),
    ('[x]\ntype = "range"\nbounds = [0, 2]\n', '[x]\ntype = "range"\nbounds = [0, 3]\n', 1),
    ('[x]\ntype = "range"\nbounds = [0, 2]\n',
     '[x]\ntype = "range"\nbounds = [0, 2]\nstep = 0.5\n', 2),  # refined: 0, 0.5, 1, 1.5
])
def test_a_grown_space_keeps_what_it_holds_and_runs_what_is_missing(tmp_path, before, after, new):
    write(tmp_path / "job.py", JOB)
    space(tmp_path, before)
    run(tmp_path)
    first = ran(tmp_path)
    space(tmp_path, after)
    dry = cli("run", "-p", "s.toml", "-m", "job.py", "--dry-run", cwd=tmp_path)
    assert f"{new} run(s) of " in dry.stderr and f"{len(first)} finished run(s) kept" in dry.stderr
    assert len(dry.stdout.splitlines()) == new
    run(tmp_path)
    assert ran(tmp_path)[:len(first)] == first  # kept, not rerun
    assert len(ran(tmp_path)) == len(first) + new
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    changes = [json.loads(x) for x in lines if '"kind":"space"' in x]
    assert len(changes) == 1 and changes[0]["space"] == exp.ParamSpace(tmp_path / "s.toml").to_dict()
    records = exp.results(tmp_path / "s.jsonl", top=None)
    assert len(records.rows) == len(first) + new
    ids = sorted(r["id"] for r in records.rows)
    assert ids == list(range(len(ids)))  # the ids of the current space


@pytest.mark.timeout(60)
def test_more_repeats_and_a_space_that_shrank(tmp_path):
    write(tmp_path / "job.py", JOB)
    space(tmp_path, '[x]\ntype = "list"\nvalue = [1, 2, 3]\n')
    run(tmp_path, "-r", "2")
    run(tmp_path, "-r", "3")
    assert sorted(r for _, r in ran(tmp_path)) == [1] * 3 + [2] * 3 + [3] * 3
    space(tmp_path, '[x]\ntype = "list"\nvalue = [3, 1]\n')  # 2 is gone, the order changed
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-r", "3", "--dry-run", cwd=tmp_path)
    assert "0 run(s) of 2 configuration(s); 6 finished run(s) kept from the journal, 3 no " \
           "longer in the space" in out.stderr
    out = run(tmp_path, "-r", "3")
    assert "3 finished run(s) are not runs of this experiment" in out.stderr
    table = exp.results(tmp_path / "s.jsonl", top=None, group=False)
    assert sorted((r["id"], r["x"]) for r in table.rows) == [(0, 3)] * 3 + [(1, 1)] * 3
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 6
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-r", "3", "-c", "1", "-q", cwd=tmp_path)
    assert out.returncode == 0  # -c takes the ids of the current space: x=1, done


@pytest.mark.timeout(60)
def test_a_new_parameter_needs_what_earlier_runs_had(tmp_path):
    write(tmp_path / "job.py", JOB)
    space(tmp_path, '[x]\ntype = "list"\nvalue = [1, 2]\n')
    run(tmp_path)
    space(tmp_path, '[x]\ntype = "list"\nvalue = [1, 2]\n[opt]\ntype = "list"\n'
                    'value = ["sgd", "adam"]\n')
    out = cli("run", "-p", "s.toml", "-m", "job.py", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        "belongs to another experiment: this space adds the parameter 'opt', which its runs did "
        "not have (say the value they had with --assume opt=VALUE) (use --fresh to start over, "
        "or --name for a new journal)")
    run(tmp_path, "--assume", 'opt="sgd"')
    assert [p for p, _ in ran(tmp_path)] == ['{"x": 1}', '{"x": 2}', '{"opt": "adam", "x": 1}',
                                            '{"opt": "adam", "x": 2}']
    out = run(tmp_path, "--assume", "opt=sgd")
    assert "0 run(s)" in cli("run", "-p", "s.toml", "-m", "job.py", "--assume", "opt=sgd",
                             "--dry-run", cwd=tmp_path).stderr


@pytest.mark.timeout(60)
def test_still_refused_another_runnable_or_seed(tmp_path):
    write(tmp_path / "job.py", JOB)
    write(tmp_path / "other.py", JOB)
    space(tmp_path, '[x]\ntype = "random"\nn = 2\n')
    run(tmp_path, "--seed", "1")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--seed", "2", cwd=tmp_path)
    assert out.returncode == 2 and "it was run with seed 1, not 2 (its random values would " \
                                   "differ)" in out.stderr
    out = cli("run", "-p", "s.toml", "-m", "other.py", "--name", "s", cwd=tmp_path)
    assert out.returncode == 2 and "it is for the runnable 'job.py:run', not 'other.py:run'" \
        in out.stderr


@pytest.mark.timeout(120)
def test_gopt_refuses_a_changed_space_and_says_how_to_warm_start(tmp_path):
    pytest.importorskip("skopt")
    write(tmp_path / "job.py", "def run(x, **kw):\n    return (x - 1) ** 2\n")
    space(tmp_path, '[x]\ntype = "range"\nbounds = [0, 2]\n')
    assert cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "4", "-w", "1", "-q",
               cwd=tmp_path).returncode == 0
    space(tmp_path, '[x]\ntype = "range"\nbounds = [0, 3]\n')
    out = cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "6", cwd=tmp_path)
    assert out.returncode == 2
    assert "a search keeps its space: start another that learns from this one with --name NEW " \
           "--warm-start s-gopt.jsonl" in out.stderr
    out = cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "6", "-w", "1", "-q", "--name", "new",
              "--warm-start", "s-gopt.jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
