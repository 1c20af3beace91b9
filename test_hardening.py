"""Regression tests for what an adversarial review of exp found (runs that change their
own process, closed standard streams, idle workers, concurrent drivers, odd input,
signals, leftover processes, strict JSON). Real processes throughout."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import exp
from test_exp import HERE, alive_in_group, cli, journal_lines, write

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="worker processes are watched through Linux's /proc")


def shell(command: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """A command line as a shell runs it (for redirections like ``>&-``)."""
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def grid(tmp_path: Path, n: int, name: str = "s") -> Path:
    return write(tmp_path / f"{name}.toml", f'[x]\ntype = "range"\nbounds = [0, {n}]\n'
                                            'dtype = "int"\n')


# ─── runs that change their own process ──────────────────────────────────────


@pytest.mark.timeout(60)
def test_a_run_that_changes_its_process_never_crashes_the_next(tmp_path):
    """chdir with a relative --out, closed fds 1 and 2, sys.stdout = None, a closed
    sys.stderr: each run's status is its own, and every log lands where it should."""
    grid(tmp_path, 7)
    write(tmp_path / "job.py", """
        import os, sys
        def run(x):
            print("run", x)
            if x == 1:
                os.chdir("/")
            elif x == 2:
                os.close(1)
            elif x == 3:
                sys.stdout = None
            elif x == 4:
                sys.stderr.close()
                raise ValueError("after closing stderr")
            elif x == 5:
                os.close(2)
                sys.stderr = open(os.devnull, "w")
            return x
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "out", cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # only x=4 is not ok
    records = exp.read_journal(tmp_path / "out" / "s.jsonl")
    assert [r["status"] for r in records] == ["ok"] * 4 + ["failed"] + ["ok"] * 2
    assert "ValueError: after closing stderr" in records[4]["error"]
    logs = tmp_path / "out" / "s.logs"
    for x in range(7):  # every run's print reached its own log, whatever the run before did
        assert (logs / f"{x}-1.log").read_text().startswith(f"run {x}\n"), x
    assert "ValueError: after closing stderr" in (logs / "4-1.log").read_text()


@pytest.mark.timeout(60)
def test_what_a_worker_resets_between_runs_and_what_carries_over(tmp_path):
    """Each run starts in the worker's directory with its streams; os.environ and module
    globals carry over from run to run of one worker (documented)."""
    grid(tmp_path, 3)
    write(tmp_path / "job.py", """
        import os
        SEEN = []
        def run(x):
            here = os.getcwd()
            os.chdir("/tmp")
            os.environ["EXP_TEST_LAST"] = str(x)
            SEEN.append(x)
            return {"cwd": here, "env": os.environ.get("EXP_TEST_SEEN", ""), "seen": len(SEEN)}
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    results = [r["result"] for r in exp.read_journal(tmp_path / "out" / "s.jsonl")]
    assert [r["cwd"] for r in results] == [str(tmp_path)] * 3
    assert [r["seen"] for r in results] == [1, 2, 3]


@pytest.mark.timeout(60)
def test_what_the_import_prints_goes_to_the_worker_log(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", 'print("loading the model")\ndef run(x):\n    return x\n')
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    logs = tmp_path / "out" / "s.logs"
    assert (logs / "worker-0.log").read_text() == "loading the model\n"
    assert not (logs / "0-1.log").exists()  # the first run printed nothing


# ─── closed standard streams ─────────────────────────────────────────────────


@pytest.mark.timeout(60)
@pytest.mark.parametrize("redirect", [">&-", "2>&-", "2>&- -q", "<&- >&- 2>&-"])
def test_launched_with_a_closed_standard_stream(tmp_path, redirect):
    grid(tmp_path, 4)
    write(tmp_path / "job.py", 'import sys\ndef run(x):\n    print("x", x)\n'
                               '    print("e", x, file=sys.stderr)\n    return x\n')
    quiet = " -q" if redirect.endswith("-q") else ""
    redirect = redirect.removesuffix(" -q")
    out = shell(f"{sys.executable} -m exp run -p s.toml -m job.py -w 2 --out out{quiet} "
                f"{redirect}", tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "out" / "s.jsonl")
    assert [r["status"] for r in records] == ["ok"] * 4
    assert (tmp_path / "out" / "s.logs" / "2-1.log").read_text() == "x 2\ne 2\n"


# ─── scheduling ──────────────────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_few_long_runs_use_every_worker(tmp_path):
    """4 runs of 2 s on 4 workers take about 2 s, not 4: one run per worker until
    the run time is known."""
    grid(tmp_path, 4)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(2)\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "4", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "out" / "s.jsonl")
    assert len({r["worker"] for r in records}) == 4
    span = max(r["end"] for r in records) - min(r["start"] for r in records)
    assert span < 3.0, span  # 4 s when two runs queue on one worker


@pytest.mark.timeout(60)
def test_runs_queued_behind_a_long_run_move_to_an_idle_worker(tmp_path):
    """Short runs are queued several per worker; when one of them turns out long, the
    runs queued behind it are taken back by the worker that has nothing left to do."""
    grid(tmp_path, 300)
    write(tmp_path / "job.py", "import time\ndef run(x):\n"
                               "    time.sleep(3 if x == 250 else 0.002)\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "out" / "s.jsonl")
    assert len(records) == 300 and all(r["status"] == "ok" for r in records)
    long_run = records[250]
    after = [r for r in records if r["id"] > 250]
    assert max(r["end"] for r in after) < long_run["end"] - 2.0, "runs waited behind the long one"
    assert len({(r["id"], r["run"]) for r in journal_lines(tmp_path / "out" / "s.jsonl")}) \
        == len(journal_lines(tmp_path / "out" / "s.jsonl")), "a run was journaled twice"


@pytest.mark.timeout(90)
def test_taking_back_queued_runs_loses_and_repeats_none(tmp_path):
    """Very short runs fill deep queues (several batches in a worker's socket); long
    runs among them make idle workers take queued runs back, again and again: every
    run is journaled exactly once."""
    grid(tmp_path, 6000)
    write(tmp_path / "job.py", "import time\ndef run(x):\n"
                               "    if x % 1500 == 700:\n        time.sleep(1.5)\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--out", "out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    keys = [(r["id"], r["run"]) for r in journal_lines(tmp_path / "out" / "s.jsonl")]
    assert sorted(keys) == [(i, 1) for i in range(6000)]


@pytest.mark.timeout(60)
def test_a_worker_drops_every_task_taken_back_at_once(tmp_path):
    """The protocol itself: tasks taken back while some of them still wait in the
    worker's socket are all dropped, in one message, before any later task runs
    (else a later task's permit could start a taken-back one: a run twice, one never)."""
    job = write(tmp_path / "job.py", "import time\ndef run(x):\n"
                                     "    time.sleep(0.5 if x == 0 else 0)\n    return x\n")
    (tmp_path / "logs").mkdir()
    with exp._SigintHeld():
        proc = exp._Process({"runnable": str(job), "worker": 0, "gpu": None,
                             "logs": str(tmp_path / "logs"), "runnable_hash": "",
                             "names": ("x",)}, shared_state=True, permits=True)
    try:
        conn, (read_end, write_end) = proc.conn, proc.permits
        assert conn.recv_bytes() == exp._MSG_READY
        import pickle
        for batch in ([(0, 1, {"x": 0}), (1, 1, {"x": 1})], [(2, 1, {"x": 2}), (3, 1, {"x": 3})]):
            os.write(write_end, b"p" * len(batch))
            conn.send_bytes(pickle.dumps(batch))
        time.sleep(0.2)  # the worker runs x=0; its socket holds the second batch
        assert len(os.read(read_end, 3)) == 3  # take back x=1, 2, 3
        messages = []
        while not any(m[:1] == exp._MSG_DROPPED for m in messages):
            messages.append(conn.recv_bytes())
        assert messages[-1] == exp._MSG_DROPPED + b"3"
        os.write(write_end, b"p")
        conn.send_bytes(pickle.dumps([(4, 1, {"x": 4})]))
        reply = conn.recv_bytes()
        _, records, _ = exp._read_results(reply)
        assert [r["id"] for r in records] == [4]
    finally:
        proc.kill()
        proc.join()
        proc.close()


# ─── concurrent drivers, resume, exit codes ──────────────────────────────────


@pytest.mark.timeout(60)
def test_fresh_while_another_driver_runs_is_refused_and_moves_nothing(tmp_path):
    grid(tmp_path, 30)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.1)\n    return x\n")
    args = ["-m", "exp", "run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--out", "out", "-q"]
    first = subprocess.Popen([sys.executable, *args], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(HERE)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "out" / "s.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not journal.exists()
                                           or len(journal.read_text().splitlines()) < 3):
        time.sleep(0.05)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--out", "out", "--fresh", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"exp: error: out/s.jsonl is in use by another exp process "
                                  "(wait for it, or use --name)")
    assert first.wait(timeout=30) == 0, first.stderr.read()
    assert not list((tmp_path / "out").glob("*.old-*"))
    records = exp.read_journal(journal)
    assert len(records) == 30 and all(r["status"] == "ok" for r in records)


@pytest.mark.timeout(90)
def test_a_space_holding_nan_resumes(tmp_path):
    write(tmp_path / "s.toml", '[v]\ntype = "value"\nvalue = nan\n[x]\ntype = "list"\n'
                               'value = [1, 2]\n[inf]\ntype = "value"\nvalue = [inf, -inf]\n')
    write(tmp_path / "job.py", "def run(x, **kw):\n    return x\n")
    for _ in range(2):
        out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    assert "nothing to run" in out.stderr
    pytest.importorskip("skopt")
    for _ in range(2):
        out = cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "3", "-w", "1", "--out", "o",
                  "--seed", "1", cwd=tmp_path)
        assert out.returncode == 0, out.stderr


@pytest.mark.timeout(60)
def test_the_exit_code_comes_from_the_space_loaded_at_the_start(tmp_path):
    grid(tmp_path, 6)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.3)\n    return x\n")
    for edit in ("[x\nthis is not toml", '[x]\ntype = "range"\nbounds = [0, 60]\n'):
        proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                                 "job.py", "-w", "2", "--out", "out", "--fresh", "-q"],
                                cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(HERE)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.4)
        (tmp_path / "s.toml").write_text(edit)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        grid(tmp_path, 6)


@pytest.mark.timeout(60)
def test_a_result_holding_a_lone_surrogate_is_journaled_and_tabled(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", 'import os\ndef run(x):\n'
                               '    return {"file": os.fsdecode(b"file-\\xff.txt"), "x": x}\n')
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "o" / "s.csv").read_text(encoding="utf-8")  # valid UTF-8
    assert "file-\\udcff.txt" in table
    out = cli("results", "o/s.jsonl", "--csv", "again.csv", cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert (tmp_path / "again.csv").read_text(encoding="utf-8") == table


# ─── odd input: one line, exit 2 ─────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_any_finite_timeout_is_accepted(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    for timeout in ("2200000", "1e10"):
        out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", "--fresh",
                  "--timeout", timeout, cwd=tmp_path)
        assert out.returncode == 0, out.stderr


@pytest.mark.timeout(120)
def test_gopt_takes_any_integer_seed_and_refuses_huge_integer_bounds(tmp_path):
    pytest.importorskip("skopt")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 10]\n')
    write(tmp_path / "job.py", "def run(x, **kw):\n    return (x - 3) ** 2\n")
    for seed in ("-1", "4294967296", str(2 ** 80)):
        out = cli("gopt", "-p", "s.toml", "-m", "job.py", "-n", "4", "-w", "1", "--out", "o",
                  "--seed", seed, "--fresh", "-q", cwd=tmp_path)
        assert out.returncode == 0, (seed, out.stderr)
    write(tmp_path / "big.toml", f'[x]\ntype = "value"\nvalue = 1\n[k]\ntype = "random"\n'
                                 f'bounds = [0, {2 ** 70}]\ndtype = "int"\n')
    out = cli("gopt", "-p", "big.toml", "-m", "job.py", "-n", "4", "--out", "o", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("exp: error: big.toml: [k]: exp gopt needs integer bounds "
                                 "within ±2**53")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "big-gopt.jsonl").exists()


def test_random_values_on_the_widest_bounds_are_spread():
    ps = exp.ParamSpace(seed=3)
    ps.add_random("w", -1e308, 1e308, n=50)
    values = ps.grid_values()["w"]
    assert len(set(values)) == 50 and all(-1e308 <= v < 1e308 for v in values)
    assert min(values) < -1e306 and max(values) > 1e306


def test_a_name_too_long_in_bytes_is_refused(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--name", "é" * 122, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("exp: error: --name must be a plain file name of at most "
                                 "200 bytes") and "(244 bytes)" in out.stderr
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--name", "é" * 100, "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.timeout(60)
def test_an_import_that_hangs_is_stopped_by_the_load_timeout(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", 'import time\nprint("waiting for a lock")\ntime.sleep(600)\n'
                               "def run(x):\n    return x\n")
    t0 = time.monotonic()
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--load-timeout", "2",
              cwd=tmp_path)
    assert time.monotonic() - t0 < 10
    assert (out.returncode, out.stderr.strip()) == (
        2, "exp: error: job.py: loading it in a worker took longer than 2s (--load-timeout); "
           "its last output: waiting for a lock")
    ps = subprocess.run(["pgrep", "-f", str(tmp_path / "job.py")], capture_output=True)
    assert ps.stdout == b""


# ─── signals ─────────────────────────────────────────────────────────────────


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_end_the_experiment_like_ctrl_c(tmp_path, signum):
    grid(tmp_path, 40)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.1)\n    return x\n")
    proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py",
                             "-w", "2", "--out", "out"], cwd=tmp_path, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(HERE)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "out" / "s.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not journal.exists()
                                           or len(journal.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted; the journal is whole" in err and "Traceback" not in err
    done = exp.read_journal(journal)
    assert 4 <= len(done) < 40
    assert len((tmp_path / "out" / "s.csv").read_text().splitlines()) == len(done) + 1
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--out", "out", "-q",
              cwd=tmp_path)
    assert out.returncode == 0 and len(exp.read_journal(journal)) == 40


# ─── processes a run leaves behind ───────────────────────────────────────────


@pytest.mark.timeout(60)
def test_processes_a_run_starts_do_not_outlive_the_experiment(tmp_path):
    """In its process group, in a new session, or a grandchild whose parent exited:
    all are gone when exp exits; a run killed by --timeout takes its children along."""
    grid(tmp_path, 4)
    marker = f"exp-leftover-{os.getpid()}"
    code = f"import time; time.sleep(120)  # {marker}"
    write(tmp_path / "job.py", f"""
        import subprocess, sys, time
        def run(x):
            code = {code!r}
            if x == 0:
                subprocess.Popen([sys.executable, "-c", code])
            elif x == 1:
                subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
            elif x == 2:  # a daemon: its parent exits at once
                subprocess.Popen([sys.executable, "-c",
                                  "import subprocess, sys; subprocess.Popen([sys.executable, "
                                  "'-c', {code!r}], start_new_session=True)"]).wait()
            else:
                subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
                time.sleep(60)
            return x
    """)
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "2", "--timeout", "3", "--out", "o",
              cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # x=3 timed out
    assert [r["status"] for r in exp.read_journal(tmp_path / "o" / "s.jsonl")] == \
        ["ok", "ok", "ok", "timeout"]
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left == "", left


# ─── the journal ─────────────────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_the_journal_is_strict_json_and_non_finite_numbers_read_back(tmp_path):
    grid(tmp_path, 3)
    write(tmp_path / "job.py", 'def run(x):\n    return [float("nan"), float("inf"), '
                               '-float("inf"), 1.5][x] if x < 2 else {"loss": float("nan")}\n')
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr

    def refuse(word):
        raise ValueError(f"bare {word} in the journal")

    lines = (tmp_path / "o" / "s.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=refuse) for line in lines[1:]]
    assert [r["result"] for r in records] == ["NaN", "Infinity", {"loss": "NaN"}]
    back = exp.read_journal(tmp_path / "o" / "s.jsonl")
    assert back[0]["result"] != back[0]["result"] and back[1]["result"] == float("inf")


@pytest.mark.timeout(60)
def test_records_outside_the_space_are_left_out_with_a_warning(tmp_path):
    grid(tmp_path, 4)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", cwd=tmp_path)
    journal = tmp_path / "o" / "s.jsonl"
    line = journal_lines(journal)[0]
    with open(journal, "a") as f:
        for cid, run in ((7, 1), (2, 3)):
            f.write(json.dumps({**line, "id": cid, "run": run}) + "\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2 finished run(s) are not runs of this experiment" in out.stderr
    assert "4 run(s): 4 ok" in out.stderr


def test_a_journal_of_a_newer_format_is_refused(tmp_path):
    grid(tmp_path, 2)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    assert cli("run", "-p", "s.toml", "-m", "job.py", "-q", cwd=tmp_path).returncode == 0
    journal = tmp_path / "s.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(journal=99, exp="7.0.0")
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    for args in (["run", "-p", "s.toml", "-m", "job.py"], ["results", "s.jsonl"]):
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 2
        assert out.stderr.strip() == (
            f"exp: error: s.jsonl was written by exp '7.0.0' in journal format 99; this exp "
            f"{exp.__version__} reads formats up to 2 (upgrade exp, or use --name for a new "
            "journal)")


# ─── flat memory in the workers ──────────────────────────────────────────────


@pytest.mark.timeout(120)
def test_a_worker_does_not_grow_with_the_runs_it_has_run(tmp_path):
    """Each run's identity is in the environment (EXP_RUN, for exp.report in any
    process of the run); glibc keeps every value setenv was given, about 76 bytes a
    run, 11 MB of heap over these 150,000 (a worker's RSS grew 19 MB over 500,000).
    The worker rewrites one buffer in place. Measured as glibc's heap in use."""
    grid(tmp_path, 150_000)
    write(tmp_path / "job.py", """
        import ctypes, os, subprocess

        class Info(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost")]

        def heap():
            mallinfo2 = ctypes.CDLL(None).mallinfo2
            mallinfo2.restype = Info
            return mallinfo2().uordblks

        def run(x, id, run):
            if x in (5000, 149_999):
                seen = subprocess.run(["sh", "-c", "echo $EXP_RUN"], capture_output=True,
                                      text=True).stdout.split(",")[:2]
                return {"heap": heap(), "env": os.environ["EXP_RUN"].split(",")[:2],
                        "child": seen, "me": [str(id), str(run)]}
            return x
    """)
    try:
        import ctypes
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("no glibc mallinfo2 to measure the heap with")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "--out", "out", "-q",
              cwd=tmp_path, timeout=110)
    assert out.returncode == 0, out.stderr
    probes = [r["result"] for r in exp.read_journal(tmp_path / "out" / "s.jsonl")
              if isinstance(r["result"], dict)]
    assert len(probes) == 2
    for p in probes:  # the run, and a process it starts, see the run in progress
        assert p["env"] == p["child"] == p["me"], p
    grew = (probes[1]["heap"] - probes[0]["heap"]) / 2 ** 20
    assert grew < 2, f"the worker's heap grew {grew:.1f} MiB over 145,000 runs"
