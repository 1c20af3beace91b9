"""What exp tells while it runs and writes afterwards: the progress line, exp results,
the CSV, pandas, the provenance of a journal, --dry-run. Real processes throughout."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import exp
from test_exp import HERE, cli, write

ENV = {**os.environ, "PYTHONPATH": str(HERE)}


def grid(tmp_path: Path, n: int) -> Path:
    return write(tmp_path / "s.toml", f'[x]\ntype = "range"\nbounds = [0, {n}]\ndtype = "int"\n')


# ─── the progress line ───────────────────────────────────────────────────────


@pytest.mark.timeout(90)
def test_a_long_run_is_not_silent(tmp_path):
    """A 25-second run, stderr not a terminal: a line every 10 s while it runs."""
    grid(tmp_path, 1)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(25)\n    return x\n")
    proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py"],
                            cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True)
    seen, t0 = [], time.monotonic()
    for line in proc.stderr:
        seen.append((time.monotonic() - t0, line.rstrip("\n")))
    proc.wait()
    assert proc.returncode == 0
    during = [line for t, line in seen if t < 24.5 and line.startswith("exp 0:")]
    assert len(during) >= 2, seen
    assert "0/1 done: 0 ok, 0 not ok | 1 running" in during[0]
    finals = [line for _, line in seen if line.startswith("exp 0:") and "1/1 done" in line]
    assert len(finals) == 1, seen  # the last line once


def test_durations_and_rates_read_as_people_read_them():
    assert [exp._duration(s) for s in (45, 125, 4980, 57600, 187200)] == \
        ["45s", "2m 5s", "1h 23m", "16h", "2d 4h"]
    assert [exp._rate(r) for r in (250.0, 0.5, 1 / 7200)] == ["250/s", "30/min", "0.5/h"]
    assert exp._clock(3725) == "1:02:05"


@pytest.mark.timeout(60)
def test_cancel_says_how_many_runs_it_left(tmp_path):
    grid(tmp_path, 20)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.05)\n"
                               "    if x == 3:\n        raise ValueError(x)\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--cancel", cwd=tmp_path)
    assert out.returncode == 1
    left = 20 - len(exp.read_journal(tmp_path / "s.jsonl"))
    assert f"stopped at the first run that was not ok (--cancel): {left} run(s) left unrun" \
        in out.stderr and left > 0


@pytest.mark.timeout(60)
def test_the_summary_says_when_results_are_not_numbers(tmp_path):
    grid(tmp_path, 3)
    write(tmp_path / "job.py", "def run(x):\n    return 'text'\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", cwd=tmp_path)
    assert out.returncode == 0 and "results are not numbers (3 other): nothing to rank" \
        in out.stderr


# ─── exp results ─────────────────────────────────────────────────────────────


@pytest.fixture
def repeats(tmp_path):
    """Two configurations, three repeats: a is lucky once, b is steady and better on average."""
    write(tmp_path / "s.toml", '[arm]\ntype = "list"\nvalue = ["a", "b"]\n'
                               '[batch]\ntype = "value"\nvalue = 64\n')
    write(tmp_path / "job.py", """
        def run(arm, run, **kw):
            loss = {"a": [0.1, 0.9, 0.9], "b": [0.3, 0.3, 0.3]}[arm][run - 1]
            return {"loss": loss, "lr_used": 0.001234567891}
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "-r", "3", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return tmp_path


def test_repeats_are_grouped_and_ranked_by_the_mean(repeats):
    table = exp.results(repeats / "s.jsonl", objective="loss")
    assert table.grouped and [r["id"] for r in table.rows] == [1, 0]  # b wins on the mean
    assert table.columns == ["id", "runs", "status", "arm", "loss.mean", "loss.sd",
                             "lr_used.mean", "lr_used.sd", "seconds.mean"]
    b = table.rows[0]
    assert (b["runs"], b["loss.mean"], b["loss.sd"]) == (3, pytest.approx(0.3), pytest.approx(0))
    assert table.fixed == {"batch": 64}
    runs = exp.results(repeats / "s.jsonl", objective="loss", group=False)
    assert runs.rows[0]["id"] == 0 and runs.rows[0]["run"] == 1  # the lucky repeat, when asked
    out = cli("results", "s.jsonl", "--objective", "loss", cwd=repeats)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0] == f"s.jsonl: 6 run(s): 6 ok" and lines[1] == "fixed: batch=64"
    assert "0.00123457" in out.stdout and "0.001234567891" not in out.stdout  # 6 digits


@pytest.mark.timeout(120)
def test_grouped_top_in_flat_memory_ranks_as_the_full_table_does(tmp_path):
    """--top K of a grid with repeats takes a two-pass path that keeps 9 bytes a run:
    its table must equal the one built from every run (some runs fail, some return no
    value, one configuration is retried)."""
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 30]\ndtype = "int"\n'
                               '[k]\ntype = "list"\nvalue = ["p", "q"]\n')
    write(tmp_path / "job.py", """
        import math
        def run(x, k, run, **kw):
            if (x + run) % 7 == 0:
                raise ValueError("unlucky")
            if x % 5 == 0 and run == 2:
                return {"acc": math.nan, "other": 1}
            return {"acc": ((x * 37 + run * 11) % 17) / 17 + (k == "q") * 0.01, "other": x}
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "-r", "3", "-q", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "-r", "3", "-q",
              "--retry-failed", cwd=tmp_path)  # every failed run journaled twice
    journal = tmp_path / "s.jsonl"
    for maximize in (False, True):
        for top in (1, 5, 100):
            fast = exp.results(journal, top=top, sort="acc", maximize=maximize)
            full = exp.results(journal, top=top, sort="acc", maximize=maximize,
                               where=["id>=0"])  # a condition: the general path
            assert fast.grouped and full.grouped
            assert fast.rows == full.rows, (maximize, top)
            assert fast.columns == full.columns and fast.counts == full.counts
            assert fast.shown == full.shown == 60
        by_id = exp.results(journal, top=top)  # no objective: the first by id
        assert by_id.rows == exp.results(journal, top=top, where=["id>=0"]).rows
    with pytest.raises(exp.ExpError, match="--sort 'nope': no such column"):
        exp.results(journal, top=5, sort="nope")


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_formats(repeats, fmt):
    out = cli("results", "s.jsonl", "--objective", "loss", "--no-group", "--format", fmt,
              cwd=repeats)
    assert out.returncode == 0, out.stderr
    if fmt == "csv":
        rows = list(csv.DictReader(out.stdout.splitlines()))
        assert len(rows) == 6 and rows[0]["loss"] == "0.1"
    elif fmt == "json":
        rows = json.loads(out.stdout)
        assert len(rows) == 6 and rows[0]["loss"] == 0.1 and rows[0]["arm"] == "a"
    else:
        lines = out.stdout.splitlines()
        assert lines[0].startswith("| id | run | status | arm | loss |")
        assert lines[1].startswith("| ---: | ---: | --- | --- | ---: |") and len(lines) == 8


def test_top_sort_status_where(repeats):
    out = cli("results", "s.jsonl", "--no-group", "--top", "2", "--sort", "loss", "--maximize",
              cwd=repeats)
    rows = [line.split() for line in out.stdout.splitlines()[4:6]]
    assert [r[4] for r in rows] == ["0.9", "0.9"]
    assert "… 4 more run(s) (--top all shows every one)" in out.stdout
    out = cli("results", "s.jsonl", "--no-group", "--top", "all", "--where", "loss<0.5",
              "--where", "arm==a", cwd=repeats)
    assert out.returncode == 0 and out.stdout.splitlines()[0].endswith("1 run(s): 1 ok")
    out = cli("results", "s.jsonl", "--status", "failed", cwd=repeats)
    assert "(no run to show)" in out.stdout
    for args, message in [(["--top", "-3"], "--top must be a number >= 0 or 'all', got '-3'"),
                          (["--sort", "nope"], "--sort 'nope': no such column"),
                          (["--objective", "acc"], "--objective 'acc': no result has that key "
                                                   "(result keys: 'loss', 'lr_used')"),
                          (["--where", "loss~1"], "--where 'loss~1': expected KEY OP VALUE"),
                          (["--status", "great"], "--status 'great': unknown")]:
        out = cli("results", "s.jsonl", *args, cwd=repeats)
        assert out.returncode == 2 and out.stderr.startswith("exp: error: " + message), \
            (args, out.stderr)


def test_objective_on_numbers_is_an_error_naming_what_there_is(tmp_path):
    grid(tmp_path, 3)
    write(tmp_path / "job.py", "def run(x):\n    return x * 2\n")
    assert cli("run", "-p", "s.toml", "-m", "job.py", "-q", cwd=tmp_path).returncode == 0
    out = cli("results", "s.jsonl", "--objective", "acc", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        2, "exp: error: --objective 'acc': no result has that key (the results are numbers, "
           "not dicts)")
    out = cli("results", "s.jsonl", cwd=tmp_path)  # numbers: ranked by the result
    assert out.stdout.splitlines()[3].split()[:4] == ["0", "1", "ok", "0"]


@pytest.mark.timeout(60)
def test_results_of_a_running_experiment_say_so(tmp_path):
    grid(tmp_path, 30)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.2)\n    return x\n")
    proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py",
                             "-w", "1", "-q"], cwd=tmp_path, env=ENV)
    journal = tmp_path / "s.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not journal.exists()
                                           or len(journal.read_text().splitlines()) < 3):
        time.sleep(0.05)
    out = cli("results", "s.jsonl", cwd=tmp_path)
    proc.kill()
    proc.wait()
    assert out.returncode == 0
    assert out.stdout.startswith("note: the experiment is still running")
    assert "table s.csv" not in out.stdout  # no CSV yet: none is named


# ─── the CSV and pandas ──────────────────────────────────────────────────────


COLLIDING = """
def run(seconds, status, **kw):
    return {"error": "none", "seconds": 99, "id": -1, "nested": {"a": [1, 2]},
            "status": "fine"}
"""


@pytest.mark.timeout(60)
def test_no_column_overwrites_another(tmp_path):
    write(tmp_path / "s.toml", '[seconds]\ntype = "list"\nvalue = [1, 2]\n'
                               '[status]\ntype = "value"\nvalue = "p"\n')
    write(tmp_path / "job.py", COLLIDING)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 2
    row = rows[1]
    assert (row["id"], row["status"], row["param.seconds"], row["param.status"]) == \
        ("1", "ok", "2", "p")
    assert (row["result.error"], row["result.seconds"], row["result.id"], row["result.status"]) \
        == ("none", "99", "-1", "fine")
    assert json.loads(row["result.nested"]) == {"a": [1, 2]}  # JSON, not a Python repr
    assert float(row["seconds"]) < 5 and row["error"] == ""
    assert list(csv.DictReader(open(tmp_path / "s.csv"))) == rows  # rewritten the same


def test_the_csv_written_as_runs_end_equals_the_one_from_the_journal(tmp_path):
    """The CSV of a fresh experiment is written row by row (a fast path for the usual
    record); exp results --csv writes it from the journal: the two are the same bytes."""
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 12]\ndtype = "int"\n'
                               '[tag]\ntype = "list"\nvalue = ["a", "b,c", "q\\"uote"]\n')
    write(tmp_path / "job.py", """
        import exp
        def run(x, tag):
            if x == 3:
                raise ValueError("three\\nlines")
            if x == 5:
                exp.report(1, acc=0.5)
                raise RuntimeError("after a report")
            if x == 7:
                return {"acc": 1.0, "flag": True}  # a key the first run did not have
            return {"acc": x / 10, "flag": x % 2 == 0, "nested": {"t": tag}, "none": None}
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "-q", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    out = cli("results", "s.jsonl", "--csv", "again.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    write(tmp_path / "job.py", "def run(x, tag):\n    return x if x != 4 else None\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "-q", "--name", "scalar",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cli("results", "scalar.jsonl", "--csv", "scalar2.csv", cwd=tmp_path)
    assert (tmp_path / "scalar.csv").read_bytes() == (tmp_path / "scalar2.csv").read_bytes()


@pytest.mark.timeout(60)
def test_dataframe_has_the_csv_columns(tmp_path):
    pandas = pytest.importorskip("pandas")
    write(tmp_path / "s.toml", '[seconds]\ntype = "list"\nvalue = [1, 2]\n'
                               '[status]\ntype = "value"\nvalue = "p"\n')
    write(tmp_path / "job.py", COLLIDING)
    assert cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q",
               cwd=tmp_path).returncode == 0
    df = exp.dataframe(tmp_path / "s.jsonl")
    assert isinstance(df, pandas.DataFrame) and len(df) == 2
    assert list(df.columns[:5]) == ["id", "run", "status", "param.seconds", "param.status"]
    assert df["result.seconds"].tolist() == [99, 99] and df["param.seconds"].tolist() == [1, 2]
    from_csv = pandas.read_csv(tmp_path / "s.csv")
    assert from_csv["result.seconds"].tolist() == [99, 99]


def test_dataframe_without_pandas_is_one_line(tmp_path, monkeypatch):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    assert cli("run", "-p", "s.toml", "-m", "job.py", "-q", cwd=tmp_path).returncode == 0
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(exp.ExpError, match="^exp.dataframe needs pandas"):
        exp.dataframe(tmp_path / "s.jsonl")


# ─── provenance and --dry-run ────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_the_header_records_what_reproduces_the_experiment(tmp_path):
    if shutil_which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path / "project"
    project.mkdir()
    grid(project, 2)
    write(project / "job.py", "def run(x):\n    return x\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=project, capture_output=True,  # noqa: E731
                                    check=True, text=True).stdout.strip()
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    commit = git("rev-parse", "HEAD")
    (project / "job.py").write_text("def run(x):\n    return x + 1\n")  # dirty
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-q", "--name", "prov", cwd=project)
    assert out.returncode == 0, out.stderr
    header = json.loads((project / "prov.jsonl").read_text().splitlines()[0])
    assert header["argv"][1:] == ["run", "-p", "s.toml", "-m", "job.py", "-q", "--name", "prov"]
    assert header["cwd"] == str(project) and header["exp"] == exp.__version__
    assert header["python"] == ".".join(map(str, sys.version_info[:3]))
    assert header["host"] and header["platform"]
    assert header["git"]["commit"] == commit and header["git"]["dirty"] in (True, None)
    out = cli("results", "prov.jsonl", "--info", cwd=project)
    assert out.returncode == 0 and f"git           {commit}" in out.stdout
    outside = tmp_path / "plain"
    outside.mkdir()
    grid(outside, 1)
    write(outside / "job.py", "def run(x):\n    return x\n")
    assert cli("run", "-p", "s.toml", "-m", "job.py", "-q", cwd=outside).returncode == 0
    assert json.loads((outside / "s.jsonl").read_text().splitlines()[0])["git"] is None


def shutil_which(name):
    import shutil
    return shutil.which(name)


@pytest.mark.timeout(60)
def test_dry_run_shows_what_the_run_will_use(tmp_path):
    write(tmp_path / "s.toml", '[lr]\ntype = "random"\nbounds = [1e-4, 1e-1]\n'
                               'prior = "log-uniform"\nn = 3\n')
    write(tmp_path / "job.py", "def run(lr):\n    return lr\n")
    first = cli("run", "-p", "s.toml", "-m", "job.py", "--dry-run", cwd=tmp_path)
    assert first.returncode == 0
    seed = int(first.stderr.split("random values from seed ")[1].split(":")[0])
    assert f"exp run -p s.toml -m job.py --seed {seed} runs exactly these" in first.stderr
    again = cli("run", "-p", "s.toml", "-m", "job.py", "--dry-run", "--seed", str(seed),
                cwd=tmp_path)
    assert again.stdout == first.stdout
    assert cli("run", "-p", "s.toml", "-m", "job.py", "--seed", str(seed), "-q",
               cwd=tmp_path).returncode == 0
    ran = [r["params"]["lr"] for r in exp.read_journal(tmp_path / "s.jsonl")]
    assert ran == [json.loads(line)["lr"] for line in first.stdout.splitlines()]
    # with a journal, the recorded seed is the one: no --seed needed
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--dry-run", cwd=tmp_path)
    assert out.stdout == "" and "0 run(s) of 3 configuration(s); 3 finished run(s) kept" \
        in out.stderr


@pytest.mark.timeout(60)
def test_gopt_stops_when_the_first_results_are_not_numbers(tmp_path):
    pytest.importorskip("skopt")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 1]\n')
    write(tmp_path / "job.py", "def run(x):\n    return [x, x]\n")
    out = cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "10", "-w", "1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().endswith("exp gopt minimises a number: return a float, or a "
                                       "dict and name its key with --objective KEY")
    assert len(exp.read_journal(tmp_path / "s-gopt.jsonl")) == 1
