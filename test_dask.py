"""exp on a real Dask distributed cluster: scheduler and worker processes on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import exp

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE)}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as c:
        yield c.scheduler_address


JOB = '''
import os, time

def run(x, id, **kwargs):
    if x == 3:
        raise ValueError("three")
    if x == 5:
        os._exit(7)
    print("hello", x)
    return x * 2
'''


def space(tmp_path: Path, n: int = 10) -> Path:
    return write(tmp_path / "s.toml", f"""
        [x]
        type = "range"
        bounds = [0, {n}]
        dtype = "int"
    """)


def comparable(records: list[dict]) -> list[tuple]:
    return [(r["id"], r["run"], r["params"], r["status"], r["result"],
             (r["error"] or "").strip().splitlines()[-1:]) for r in records]


@pytest.mark.timeout(120)
def test_grid_on_cluster_matches_local_pool(tmp_path, cluster):
    s, job = space(tmp_path), write(tmp_path / "job.py", JOB)
    remote = exp.run_experiment(s, str(job), out=tmp_path / "remote", cluster=cluster, quiet=True)
    local = exp.run_experiment(s, str(job), out=tmp_path / "local", workers=2, quiet=True)
    assert comparable(remote) == comparable(local)
    assert [r["status"] for r in remote].count("ok") == 8
    assert remote[5]["error"] == "worker exited with code 7"
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in remote)
    assert (tmp_path / "remote" / "s.logs" / "2-1.log").read_text() == "hello 2\n"
    assert "ValueError: three" in (tmp_path / "remote" / "s.logs" / "3-1.log").read_text()
    assert ((tmp_path / "remote" / "s.csv").read_text().splitlines()[1:]
            != [])


@pytest.mark.timeout(120)
def test_timeout_and_module_runnable_on_cluster(tmp_path, cluster):
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [0.1, 30]\n')
    write(tmp_path / "sleepy.py", "import time\ndef run(x):\n    time.sleep(x)\n    return x\n")
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "sleepy.py"), quiet=True,
                                 out=tmp_path, cluster=cluster, timeout=2)
    assert [r["status"] for r in records] == ["ok", "timeout"]
    assert records[1]["error"] == "killed after --timeout 2s"
    # a package.module runnable must be importable on the workers: this one is not
    pkg = tmp_path / "localpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "jobs.py", "def run(x):\n    return x\n")
    out = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                          "localpkg.jobs:run", "--cluster", cluster, "--name", "m"],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("exp: error: localpkg.jobs:run: cannot load it in a worker: ")
    assert "No module named 'localpkg'" in last
    assert "must be importable on every worker" in last


@pytest.mark.timeout(150)
def test_ctrl_c_and_kill_driver_then_resume_on_cluster(tmp_path, cluster):
    s = space(tmp_path, 60)
    write(tmp_path / "slow.py", "import time\ndef run(x):\n    time.sleep(0.1)\n    return x\n")
    args = [sys.executable, "-m", "exp", "run", "-p", str(s), "-m", "slow.py", "--cluster",
            cluster, "--out", str(tmp_path), "-q"]
    journal = tmp_path / "s.jsonl"

    def start_and_wait_for(lines: int) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=tmp_path, env=ENV, start_new_session=True,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists()
                                               or len(journal.read_text().splitlines()) < lines):
            time.sleep(0.05)
        return proc

    proc = start_and_wait_for(6)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: futures cancelled, journal whole, 130
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 10 and "Traceback" not in err
    first = len(exp.read_journal(journal))
    proc = start_and_wait_for(first + 6)
    proc.kill()  # kill -9: no clean-up at all
    proc.wait()
    assert first < len(exp.read_journal(journal)) < 60
    out = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in journal.read_text().splitlines()[1:] if x.strip()]
    assert sorted(r["id"] for r in lines) == list(range(60))
    assert all(r["status"] == "ok" for r in lines)


@pytest.mark.timeout(180)
def test_dask_worker_killed_mid_run_and_killed_worker(tmp_path):
    import dask
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 6]\ndtype = "int"\n')
    write(tmp_path / "slow.py", textwrap.dedent("""
        import os, signal, time
        def run(x):
            if x == 5:
                os.kill(os.getppid(), signal.SIGKILL)  # takes its Dask worker down, every time
            time.sleep(1.0)
            return x
    """))
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address="127.0.0.1:0") as c, \
            distributed.Client(c) as client:
        pids = client.run(os.getpid)

        def kill_one_worker():
            time.sleep(1.5)  # while runs are in progress
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        import threading
        threading.Thread(target=kill_one_worker, daemon=True).start()
        records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "slow.py"), quiet=True,
                                     out=tmp_path, cluster=c.scheduler_address)
    by_id = {r["id"]: r for r in records}
    assert [by_id[i]["status"] for i in range(5)] == ["ok"] * 5  # rescheduled, completed
    assert by_id[5]["status"] == "crashed"
    assert "killed the Dask workers" in by_id[5]["error"]


@pytest.mark.timeout(180)
def test_cli_scheduler_and_gpu_resources(tmp_path):
    """`dask scheduler` and `dask worker --resources GPU=2` as a user starts them."""
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                               "--scheduler-file", str(sched_file)], cwd=tmp_path, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(sched_file), "--nthreads", "4", "--resources", "GPU=2", "--host", "127.0.0.1",
             "--dashboard-address", "127.0.0.1:0"], cwd=tmp_path,
            env={**ENV, "CUDA_VISIBLE_DEVICES": "0,1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 8]\n')
        write(tmp_path / "gpujob.py", textwrap.dedent("""
            import os, time
            def run(x, gpu):
                start = time.time()
                time.sleep(0.5)
                return {"start": start, "end": time.time(), "gpu": gpu,
                        "seen": os.environ.get("CUDA_VISIBLE_DEVICES")}
        """))
        out = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                              "gpujob.py", "--scheduler-file", str(sched_file), "--gpu", "-q"],
                             cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    results = [r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")]
    assert len(results) == 8 and all(r["seen"] == "0,1" == r["gpu"] for r in results)
    events = sorted([(r["start"], 1) for r in results] + [(r["end"], -1) for r in results])
    running, peak = 0, 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2  # 4 threads, but GPU=2 and each run asks for 1


def test_cluster_flag_errors(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1]\n')
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    out = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py",
                          "--cluster", "tcp://127.0.0.1:9", "--gpus", "0,1"], cwd=tmp_path,
                         env=ENV, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("exp: error: --gpus IDS and --per-gpu pin local GPUs")


@pytest.mark.timeout(120)
def test_gopt_on_cluster_reaches_n(tmp_path, cluster):
    exp_gopt = pytest.importorskip("exp_gopt", reason="the gopt extra is not installed")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [-10, 10]\n')
    write(tmp_path / "sq.py", "def run(x):\n    return (x - 1) ** 2\n")
    result = exp_gopt.optimize(tmp_path / "s.toml", str(tmp_path / "sq.py"), n=12, seed=3,
                               out=tmp_path, cluster=cluster, quiet=True)
    records = exp.read_journal(tmp_path / "s-gopt.jsonl")
    assert sorted(r["id"] for r in records) == list(range(12))
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records)
    assert abs(result.x["x"] - 1) < 1.5


@pytest.mark.timeout(120)
def test_gopt_of_several_objectives_on_cluster(tmp_path, cluster):
    exp_gopt = pytest.importorskip("exp_gopt", reason="the gopt extra is not installed")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 1]\n'
                               '[y]\ntype = "range"\nbounds = [0, 1]\n')
    write(tmp_path / "two.py", "def run(x, y):\n"
                               "    return {'a': x, 'b': (1 - x) ** 2 + y, 'size': 10 * y}\n")
    result = exp_gopt.optimize(tmp_path / "s.toml", str(tmp_path / "two.py"), n=12, seed=3,
                               out=tmp_path, cluster=cluster, quiet=True,
                               objectives={"a": "min", "b": "min"}, constraints=["size <= 5"])
    records = exp.read_journal(tmp_path / "s-gopt.jsonl")
    assert sorted(r["id"] for r in records) == list(range(12))
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records)
    assert result.pareto and all(e.feasible for e in result.pareto)
    assert result.hypervolume > 0


@pytest.mark.timeout(120)
def test_tls_scheduler_with_cluster_security_file(tmp_path):
    """A tls:// scheduler; exp reads its client certificate settings from --cluster-security."""
    import shutil
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    from distributed.security import Security
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    files = {"tls_ca_file": str(cert), "tls_client_cert": str(cert), "tls_client_key": str(key)}
    security = Security(**files, tls_scheduler_cert=str(cert), tls_scheduler_key=str(key),
                        tls_worker_cert=str(cert), tls_worker_key=str(key),
                        require_encryption=True)
    write(tmp_path / "tls.toml", "".join(f'{k} = "{v}"\n' for k, v in files.items())
          + "require_encryption = true\n")
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1, 2, 3]\n')
    write(tmp_path / "job.py", "def run(x):\n    return x * 3\n")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  protocol="tls", host="127.0.0.1", security=security,
                                  dashboard_address="127.0.0.1:0") as c:
        assert c.scheduler_address.startswith("tls://127.0.0.1:")
        bare = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                               "job.py", "--cluster", c.scheduler_address, "-q", "--name", "bare"],
                              cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=90)
        out = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py",
                              "--cluster", c.scheduler_address, "--cluster-security", "tls.toml",
                              "-q"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                             timeout=90)
    assert out.returncode == 0, out.stderr
    assert [r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")] == [3, 6, 9]
    # without the settings: one line that says what is missing
    assert bare.returncode == 2 and len(bare.stderr.strip().splitlines()) == 1, bare.stderr
    assert bare.stderr.startswith("exp: error: --cluster tls://127.0.0.1:")
    assert "no TLS settings for the client (give --cluster-security FILE" in bare.stderr


def start_scheduler(tmp_path: Path, workers: int = 2) -> tuple[list[subprocess.Popen], Path]:
    """`dask scheduler` and `dask worker` programs on 127.0.0.1, as a user starts them."""
    sched_file = tmp_path / f"scheduler-{time.monotonic_ns()}.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                               "127.0.0.1:0", "--scheduler-file", str(sched_file)], cwd=tmp_path,
                              env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not sched_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(workers):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(sched_file), "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address",
             "127.0.0.1:0"], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    with distributed.Client(scheduler_file=str(sched_file), timeout=60) as client:
        client.wait_for_workers(workers, timeout=60)
    return procs, sched_file


def stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.kill()
        p.wait(timeout=20)


@pytest.mark.timeout(240)
def test_scheduler_death_stops_in_bounded_time_and_the_rerun_finishes(tmp_path):
    """The scheduler is killed mid-experiment: one line within LOST_AFTER seconds, exit 2,
    only finished runs journaled (none as 'cancelled'); the same command against a new
    scheduler finishes exactly what is missing."""
    space(tmp_path, 40)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.4)\n    return x\n")
    procs, sched_file = start_scheduler(tmp_path)
    try:
        args = [sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py", "-q"]
        driver = subprocess.Popen([*args, "--scheduler-file", str(sched_file)], cwd=tmp_path,
                                  env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        journal = tmp_path / "s.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists()
                                               or len(journal.read_text().splitlines()) < 5):
            time.sleep(0.05)
        procs[0].kill()
        t0 = time.monotonic()
        _, err = driver.communicate(timeout=exp._DaskPool.LOST_AFTER + 30)
        assert time.monotonic() - t0 < exp._DaskPool.LOST_AFTER + 5
        assert driver.returncode == 2, err
        assert err.startswith("exp: error: --cluster: the Dask scheduler at ") and \
            "is gone" in err and len(err.strip().splitlines()) == 1, err
        records = exp.read_journal(journal)
        assert 4 <= len(records) < 40 and all(r["status"] == "ok" for r in records)
    finally:
        stop(procs)
    procs, sched_file = start_scheduler(tmp_path)
    try:
        out = subprocess.run([*args, "--scheduler-file", str(sched_file)], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    finally:
        stop(procs)
    lines = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    assert sorted((r["id"], r["run"]) for r in lines) == [(i, 1) for i in range(40)]


@pytest.mark.timeout(120)
def test_a_submit_after_the_client_saw_the_scheduler_die_is_the_one_line(tmp_path):
    """The race a campaign found: the scheduler dies between the check of the client's
    status and the next submit, which raises ClosedClientError (not an OSError)."""
    job = write(tmp_path / "job.py", "def run(x):\n    return x\n")
    procs, sched_file = start_scheduler(tmp_path, workers=1)
    pool = exp._DaskPool(exp._parse_runnable(str(job)), address=None,
                         scheduler_file=str(sched_file), security=None, logs=tmp_path,
                         runnable_hash="h", timeout=None, workers=None, gpus_per_run=None,
                         names=["x"])
    try:
        pool.start()
        pool.submit(exp._Task(0, 1, {"x": 1}))
        assert [o.status for o in pool.wait(60)] == ["ok"]
        procs[0].kill()
        procs[0].wait()
        deadline = time.monotonic() + 60
        while pool.client.status == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        pool.client.close()  # a status that makes submit raise, whatever the timing
        pool.submit(exp._Task(1, 1, {"x": 2}))
        with pytest.raises(exp.ExpError, match="the Dask scheduler at .* is gone"):
            pool.wait(5)
    finally:
        pool.shutdown(kill=True)
        stop(procs)


@pytest.mark.timeout(240)
def test_a_frozen_scheduler_stops_the_experiment_in_bounded_time(tmp_path):
    """SIGSTOP: the connection stays open and nothing answers; the probe notices within
    PROBE_EVERY + LOST_AFTER seconds: one line, exit 2, only finished runs journaled."""
    space(tmp_path, 40)
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.4)\n    return x\n")
    procs, sched_file = start_scheduler(tmp_path)
    try:
        driver = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                                   "job.py", "-q", "--scheduler-file", str(sched_file)],
                                  cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        journal = tmp_path / "s.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists()
                                               or len(journal.read_text().splitlines()) < 5):
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        bound = exp._DaskPool.LOST_AFTER + exp._DaskPool.PROBE_EVERY
        _, err = driver.communicate(timeout=bound + 60)
        assert time.monotonic() - t0 < bound + 10
        assert driver.returncode == 2, err
        assert "has not answered for" in err and len(err.strip().splitlines()) == 1, err
        assert all(r["status"] == "ok" for r in exp.read_journal(journal))
    finally:
        procs[0].send_signal(signal.SIGCONT)
        stop(procs)


@pytest.mark.timeout(120)
def test_bad_scheduler_addresses_and_files_are_one_line_at_once(tmp_path):
    space(tmp_path, 2)
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "garbage.json").write_text("{not json")
    cases = [
        (["--cluster", "tcp://127.0.0.1"], "--cluster tcp://127.0.0.1: missing port number"),
        (["--cluster", "nonsense://x"], "--cluster nonsense://x: unknown protocol 'nonsense'"),
        (["--scheduler-file", "missing.json"], "--scheduler-file missing.json: No such file"),
        (["--scheduler-file", "empty.json"], "--scheduler-file empty.json: not a Dask scheduler"),
        (["--scheduler-file", "garbage.json"], "--scheduler-file garbage.json: not a Dask"),
    ]
    for extra, start in cases:
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py",
                              *extra], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                             timeout=60)
        assert time.monotonic() - t0 < 10, extra
        assert out.returncode == 2 and out.stderr.startswith("exp: error: " + start), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "s.jsonl").exists()


@pytest.mark.timeout(120)
def test_short_runs_go_to_dask_in_batches_with_crashes_pinned_on_their_run(tmp_path, cluster):
    space(tmp_path, 2000)
    write(tmp_path / "job.py", "import os\ndef run(x):\n    if x in (700, 1500):\n"
                               "        os._exit(3)\n    return x\n")
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), quiet=True,
                                 out=tmp_path, cluster=cluster)
    assert len(records) == 2000
    assert [r["id"] for r in records if r["status"] != "ok"] == [700, 1500]
    assert records[700]["error"] == "worker exited with code 3"
    starts = sorted(r["start"] for r in records)
    assert starts[-1] - starts[0] < 20  # one scheduler round trip per run would take longer
