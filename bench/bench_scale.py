"""Benchmark of exp at scale: millions of runs in flat memory, fast resume, results and Ctrl-C.

Seven targets (from the issue), each measured on whole ``exp`` processes
(``python -m exp ...`` with this repository's exp.py first on PYTHONPATH) on
trivial runs, ``def run(a, b): return a + b`` over a grid of two int ranges,
2 workers:

1. a 10^6-run grid (1000 x 1000) completes with the driver's peak RSS at most
   100 MB (wall time and runs/s reported);
2. resuming that finished journal decides "nothing to run" in at most 3 s
   (whole command; its peak RSS reported);
3. ``exp results OUT/NAME.jsonl --top 10`` on it prints the table in at most
   3 s and 100 MB;
4. ``--dry-run`` of a 10^7-configuration grid prints its count at once: the
   time from launch until the count line (printed first, on stderr) is read,
   with stdout to /dev/null, and with stdout to a pipe closed after one line
   (there also the time to exit and the exit code); target <= 0.5 s ("instant";
   a 10-configuration grid is measured beside it for reference);
5. a 10^7-run experiment (10000 x 1000) holds the same flat memory: driver
   peak RSS <= 100 MB (wall time, runs/s reported); then, as extra rows
   without targets, "nothing to run", ``exp results`` and a Ctrl-C while
   reading at start, on its 2 GB journal; its files are deleted afterwards;
6. Ctrl-C stays fast at any size: a journal of about 1.4 million lines
   (1400 x 1000 runs returning ``{"sum": a + b, "pad": 100 characters}``,
   about 460 MB) is resumed with ``-r 2`` (1.4 million runs left to do), and
   SIGINT is sent to the driver's process group (as a terminal's Ctrl-C does)
   once while it is still reading the journal at start (seen in
   /proc/PID/fdinfo: a read-only descriptor of the journal part-way through)
   and once runs are under way (the journal has grown); target: exit 130
   within 1 s of the signal, journal whole. Then ``exp results --top 10`` on
   that journal (<= 3 s, <= 100 MB) and ``exp results --top 10 --csv FILE``
   (time reported, rows counted);
7. Dask: 20,000 trivial runs (200 x 100) through a local 2-worker Dask
   cluster (``LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
   host="127.0.0.1", dashboard_address=None)``) against exp's local pool with
   2 workers, side by side in one process, median of 3 each, alternating:
   ``exp.run_experiment(..., cluster=scheduler_address, records=False)`` and
   the same call with ``workers=2``, the call timed (cluster start-up
   excluded, reported apart); target: throughput ratio dask / local >= 0.2.

Peak RSS of the driver. Every exp process is launched as
``/usr/bin/time -f "%M %x" -o FILE python -m exp ...``; two figures, both of
the driver process:

- ``maxrss``: GNU time's ``%M``, the ``ru_maxrss`` that wait4 returns for the
  driver (what ``/usr/bin/time -v`` prints as "Maximum resident set size").
  Linux folds into it the largest ``ru_maxrss`` of the children the driver
  itself reaped (its workers): it is max(driver's own peak, largest worker's
  peak), never a sum, so an upper bound of the driver's own peak. Targets are
  judged on it. GNU time is the launcher because a process forked straight from
  this (larger) Python process would carry this process's RSS at the fork into
  its ``ru_maxrss`` (Linux records the old image's high-water mark at exec);
  GNU time forks the driver from its own 1 MB image.
- ``VmHWM``: the driver's own high-water mark read from /proc/PID/status
  every 0.1 s while it runs (the last value read before it exits), the
  driver alone, missing at most its last 0.1 s. The workers' VmHWM is sampled
  the same way and reported, so one can see which of the two ``maxrss`` is.

Times are wall seconds from launch to exit (``time.perf_counter`` around
``Popen`` ... ``wait4`` of GNU time, which exits as soon as the driver has); for
a signal, from just before ``os.killpg`` to that exit. Byte-code caching is on, into a private folder written by one
warm-up import, as for an installed copy. Other processes on the machine slow
everything down: the load average at the start and at the end is in the report.

    python bench/bench_scale.py               # everything, writes bench/scale.md
    python bench/bench_scale.py --skip-huge   # without step 5 (the 10^7-run experiment)
    python bench/bench_scale.py --quick       # 10^5-sized versions, a smoke test
    python bench/bench_scale.py --only 2,3    # some steps only (1 runs when 2, 3 or 6 need it)

Standard library only (step 7 needs ``distributed``; it is skipped without it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HAVE_TIME = os.access("/usr/bin/time", os.X_OK)
WORKERS = 2
MB = 1e6  # targets are in MB (10^6 bytes); figures are given in MB and MiB
RSS_TARGET_MB = 100.0
RESUME_TARGET_S = 3.0
RESULTS_TARGET_S = 3.0
DRY_TARGET_S = 0.5
SIGINT_TARGET_S = 1.0
DASK_TARGET = 0.2
PAD = 100  # characters of padding in each result of step 6's journal

TRIVIAL = "def run(a, b):\n    return a + b\n"
PADDED = f"PAD = 'x' * {PAD}\n\n\ndef run(a, b):\n    return {{'sum': a + b, 'pad': PAD}}\n"

SIZES = {  # (a values, b values) of each grid
    "full": {"grid": (1000, 1000), "dry": (10000, 1000), "huge": (10000, 1000),
             "pad": (1400, 1000), "dask": (200, 100)},
    "quick": {"grid": (1000, 100), "dry": (1000, 100), "huge": (1000, 100),
              "pad": (140, 1000), "dask": (20, 100)},
}

DASK_CHILD = '''
import json, shutil, sys, tempfile, time
from pathlib import Path
import exp

def count_lines(path):
    with open(path, "rb") as f:
        return sum(buf.count(b"\\n") for buf in iter(lambda: f.read(1 << 20), b""))

if __name__ == "__main__":
    space, job, n, reps, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    from distributed import LocalCluster
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    started = time.perf_counter() - t0
    res = {"cluster_start": started, "dask": [], "local": []}
    try:
        for rep in range(reps):
            order = ["local", "dask"] if rep % 2 == 0 else ["dask", "local"]
            for engine in order:
                out = tempfile.mkdtemp(prefix=f"dask-{engine}-", dir=work)
                kw = ({"cluster": cluster.scheduler_address} if engine == "dask"
                      else {"workers": 2})
                t1 = time.perf_counter()
                recs = exp.run_experiment(space, job, out=out, quiet=True, records=False, **kw)
                wall = time.perf_counter() - t1
                lines = count_lines(Path(out) / (Path(space).stem + ".jsonl"))
                ok = bool(recs.complete) and lines >= n + 1
                res[engine].append({"wall": wall, "complete": bool(recs.complete),
                                    "lines": lines, "ok": ok})
                print(f"  dask step rep {rep + 1}/{reps} {engine}: {wall:.3f}s "
                      f"({n / wall:,.0f} runs/s){'' if ok else ' INCOMPLETE'}",
                      file=sys.stderr, flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        t2 = time.perf_counter()
        cluster.close()
        res["cluster_close"] = time.perf_counter() - t2
    print(json.dumps(res))
'''


# ─── processes, timed and sampled ────────────────────────────────────────────


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process in bytes ({} once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return kids


TIME = "/usr/bin/time"  # GNU time: the launcher that measures the driver's peak RSS


class Proc:
    """One whole process, launched through GNU time in its own process group, sampled.

    ``/usr/bin/time -f "%M %x" -o FILE exp ...``: time forks the driver from its own
    small image and reports the driver's ru_maxrss from wait4. (A process forked
    from this benchmark directly would carry this benchmark's own RSS at the fork
    into its ru_maxrss: Linux records the old image's high-water mark at exec.)
    GNU time ignores SIGINT while it waits, so a signal to the group reaches the
    driver and its workers as a terminal's Ctrl-C does."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, *, stdout=None,
                 stderr=None, sample: float = 0.1):
        self.argv = argv
        self.tfile = cwd / f".time-{time.monotonic_ns()}"
        launch = [TIME, "-f", "%M %x %U %S", "-o", str(self.tfile), *argv] if HAVE_TIME else argv
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(launch, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=stdout, stderr=stderr, start_new_session=True)
        self.pgid = self.p.pid
        self.pid = self.p.pid if not HAVE_TIME else self._driver_pid()
        self.hwm = 0  # the driver's VmHWM, last read
        self.worker_hwm = 0  # the largest VmHWM seen of any child
        self.workers_seen: set[int] = set()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, args=(sample,), daemon=True)
        self._sampler.start()
        self.rc: int | None = None
        self.wall = self.maxrss = 0.0
        self.cpu = float("nan")  # user + sys seconds: the driver and the children it reaped

    def _driver_pid(self) -> int:
        """The one child of GNU time (the driver), as soon as it is forked."""
        while True:
            kids = children(self.p.pid)
            if kids:
                return kids[0]
            if self.p.poll() is not None:
                return self.p.pid
            time.sleep(0.0005)

    def _sample(self, every: float) -> None:
        while not self._stop.is_set():
            st = proc_status(self.pid)
            if "VmHWM" in st:
                self.hwm = max(self.hwm, st["VmHWM"])
            for kid in children(self.pid):
                self.workers_seen.add(kid)
                k = proc_status(kid)
                if "VmHWM" in k:
                    self.worker_hwm = max(self.worker_hwm, k["VmHWM"])
            self._stop.wait(every)

    def wait(self) -> "Proc":
        _, status, ru = os.wait4(self.p.pid, 0)
        self.t_end = time.perf_counter()
        self.wall = self.t_end - self.t0
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc
        self.maxrss = ru.ru_maxrss * 1024  # KiB on Linux
        if HAVE_TIME:
            try:
                words = self.tfile.read_text().strip().splitlines()[-1].split()
                self.maxrss, self.rc = int(words[0]) * 1024, int(words[1])
                self.cpu = float(words[2]) + float(words[3])
                self.tfile.unlink()
            except (OSError, ValueError, IndexError):
                pass
        self._stop.set()
        self._sampler.join()
        return self

    def group_left(self) -> int:
        """How many processes of its process group are still alive (not zombies)."""
        n = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pgid and fields[0] != "Z":
                n += 1
        return n

    def signal_group(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass


def run_proc(argv: list[str], env: dict, cwd: Path, tag: str, *, check: bool = True,
             expect_rc: tuple[int, ...] = (0,)) -> tuple[Proc, str, str]:
    out_f, err_f = cwd / f"{tag}.out", cwd / f"{tag}.err"
    with open(out_f, "wb") as o, open(err_f, "wb") as e:
        p = Proc(argv, env, cwd, stdout=o, stderr=e).wait()
    out, err = out_f.read_text(errors="replace"), err_f.read_text(errors="replace")
    out_f.unlink()
    err_f.unlink()
    if check and p.rc not in expect_rc:
        sys.exit(f"bench: {shlex.join(argv)} exited {p.rc}:\n{out[-3000:]}\n{err[-3000:]}")
    return p, out, err


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str = ".3f") -> str:
    return f" ({min(values):{fmt}}-{max(values):{fmt}})" if len(values) > 1 else ""


def mb(n: float) -> str:
    return f"{n / MB:.1f} MB ({n / 2**20:.1f} MiB)"


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


def journal_whole(path: Path) -> bool:
    """Ends with a newline and its last line is a JSON object."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 65536))
        tail = f.read()
    if not tail.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(tail.splitlines()[-1]), dict)
    except ValueError:
        return False


def grid_toml(na: int, nb: int) -> str:
    return (f'[a]\ntype = "range"\nbounds = [0, {na}]\ndtype = "int"\n\n'
            f'[b]\ntype = "range"\nbounds = [0, {nb}]\ndtype = "int"\n')


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "?"


def summary_line(err: str) -> str:
    for line in err.splitlines():
        if "this time in" in line:
            return line.strip()
    return ""


def reading_pos(pid: int, journal: Path) -> int | None:
    """The offset of a read-only descriptor of ``journal`` in process ``pid`` that is
    part-way through the file, or None."""
    size = journal.stat().st_size
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != str(journal):
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("\n")
        except OSError:
            continue
        pos = flags = None
        for line in info:
            if line.startswith("pos:"):
                pos = int(line.split()[1])
            elif line.startswith("flags:"):
                flags = int(line.split()[1], 8)
        if pos is not None and flags is not None and flags & 3 == os.O_RDONLY and 0 < pos < size:
            return pos
    return None


# ─── the benchmark ───────────────────────────────────────────────────────────


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.size = SIZES["quick" if args.quick else "full"]
        self.reps = args.reps or 3
        self.py = sys.executable
        self.work = Path(tempfile.mkdtemp(prefix="exp-scale-", dir=args.work_dir))
        self.exp_dir = args.exp_dir
        self.env = dict(os.environ, PYTHONPATH=str(self.exp_dir),
                        PYTHONPYCACHEPREFIX=str(self.work / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.pop("CUDA_VISIBLE_DEVICES", None)
        self.res: dict = {"steps": {}}
        (self.work / "job.py").write_text(TRIVIAL)
        (self.work / "padjob.py").write_text(PADDED)
        (self.work / "dask_child.py").write_text(textwrap.dedent(DASK_CHILD))
        for key, (na, nb) in self.size.items():
            (self.work / f"{key}.toml").write_text(grid_toml(na, nb))
        (self.work / "tiny.toml").write_text(grid_toml(10, 1))
        subprocess.run([self.py, "-c", "import exp, job, padjob"], env=self.env, cwd=self.work,
                       check=True)
        # the workers load exp.py by path: one tiny experiment writes their caches too
        subprocess.run(self.exp("run", "-p", "tiny.toml", "-m", "job.py", "-w", "2", "-q",
                                "--out", "warm"), env=self.env, cwd=self.work, check=True)
        shutil.rmtree(self.work / "warm")

    def exp(self, *a: str) -> list[str]:
        return [self.py, "-m", "exp", *a]

    def n(self, key: str) -> int:
        na, nb = self.size[key]
        return na * nb

    def run_grid(self, key: str, job: str = "job.py", extra: tuple[str, ...] = ()) -> dict:
        """One whole experiment from scratch, with progress while it runs."""
        out = self.work / f"out-{key}"
        shutil.rmtree(out, ignore_errors=True)
        argv = self.exp("run", "-p", f"{key}.toml", "-m", job, "--workers", str(WORKERS),
                        "--out", str(out), *extra)
        n = self.n(key)
        log(f"{key}: {n:,} runs: {shlex.join(argv[1:])}")
        err_f = self.work / f"{key}.err"
        with open(err_f, "wb") as e:
            p = Proc(argv, self.env, self.work, stdout=subprocess.DEVNULL, stderr=e)
            journal = out / f"{key}.jsonl"
            done = threading.Event()

            def progress() -> None:
                every = 30 if n >= 5_000_000 else 15
                while not done.wait(every):
                    size = journal.stat().st_size if journal.exists() else 0
                    log(f"  {key}: {time.perf_counter() - p.t0:.0f}s, journal {size / MB:,.0f} MB,"
                        f" driver VmHWM {p.hwm / MB:.1f} MB, workers {p.worker_hwm / MB:.1f} MB,"
                        f" load {loadavg()}")
            t = threading.Thread(target=progress, daemon=True)
            t.start()
            p.wait()
            done.set()
        err = err_f.read_text(errors="replace")
        if p.rc != 0:
            sys.exit(f"bench: {shlex.join(argv)} exited {p.rc}:\n{err[-3000:]}")
        lines = count_lines(journal)
        csv = out / f"{key}.csv"
        r = {"argv": argv, "n": n, "wall": p.wall, "rate": n / p.wall, "maxrss": p.maxrss,
             "cpu": p.cpu,
             "hwm": p.hwm, "worker_hwm": p.worker_hwm, "workers_seen": len(p.workers_seen),
             "lines": lines, "journal_bytes": journal.stat().st_size,
             "csv_bytes": csv.stat().st_size if csv.exists() else None,
             "summary": summary_line(err), "out": out, "journal": journal,
             "ok_lines": lines >= n + 1}
        # maxrss is max(driver, workers it reaped): the driver's own when the workers
        # peaked lower; else (a worker was the largest) the driver's own VmHWM tells
        if p.maxrss > p.worker_hwm * 1.02 + 2**20:
            r["driver_peak"], r["peak_how"] = p.maxrss, "maxrss, above every worker's: the driver's"
        else:
            r["driver_peak"] = max(p.hwm, 1)
            r["peak_how"] = "VmHWM sampled (maxrss is a worker's)"
        log(f"  {key}: {p.wall:.1f}s, {r['rate']:,.0f} runs/s, maxrss {mb(p.maxrss)}, "
            f"driver VmHWM {mb(p.hwm)}, workers VmHWM {mb(p.worker_hwm)}, {lines:,} lines, "
            f"{r['journal_bytes'] / MB:,.0f} MB journal")
        return r

    def repeat(self, argv: list[str], tag: str, reps: int, expect: str | None = None,
               expect_rc: tuple[int, ...] = (0,), slow: float = 15.0) -> dict:
        """``reps`` runs of one command (fewer when one takes over ``slow`` seconds)."""
        walls, rss, hwm, outs, cpus = [], [], [], [], []
        for i in range(reps):
            if walls and max(walls) > slow:
                log(f"  {tag}: {max(walls):.1f}s, over {slow:g}s: no more repetitions")
                break
            p, out, err = run_proc(argv, self.env, self.work, tag, expect_rc=expect_rc)
            walls.append(p.wall)
            cpus.append(p.cpu)
            rss.append(p.maxrss)
            hwm.append(p.hwm)
            outs.append(out + err)
            log(f"  {tag} {i + 1}/{reps}: {p.wall:.3f}s (CPU {p.cpu:.2f}s), maxrss {mb(p.maxrss)}, "
                f"VmHWM {mb(p.hwm)}, rc {p.rc}")
        found = expect is None or all(expect in o for o in outs)
        return {"argv": argv, "walls": walls, "rss": rss, "hwm": hwm, "wall": median(walls),
                "cpus": cpus, "cpu": median(cpus),
                "maxrss": max(rss), "hwm_max": max(hwm), "expect_found": found,
                "text": outs[-1]}

    # step 1
    def step1(self) -> None:
        r = self.run_grid("grid")
        r["pass"] = r["driver_peak"] <= RSS_TARGET_MB * MB and r["ok_lines"]
        self.res["steps"][1] = r

    def need_grid(self) -> dict:
        if 1 not in self.res["steps"]:
            self.step1()
        return self.res["steps"][1]

    # step 2
    def step2(self) -> None:
        g = self.need_grid()
        log(f"step 2: resume the finished journal ({g['lines']:,} lines)")
        argv = self.exp("run", "-p", "grid.toml", "-m", "job.py", "--workers", str(WORKERS),
                        "--out", str(g["out"]))
        r = self.repeat(argv, "resume", self.reps, expect="nothing to run")
        r["pass"] = r["wall"] <= RESUME_TARGET_S and r["expect_found"]
        self.res["steps"][2] = r

    # step 3
    def step3(self) -> None:
        g = self.need_grid()
        log("step 3: exp results --top 10")
        argv = self.exp("results", str(g["journal"]), "--top", "10")
        r = self.repeat(argv, "results", self.reps, expect=f"{self.n('grid')} run(s)")
        r["pass"] = (r["wall"] <= RESULTS_TARGET_S and r["maxrss"] <= RSS_TARGET_MB * MB
                     and r["expect_found"])
        self.res["steps"][3] = r

    # step 4
    def time_to_count(self, toml: str, mode: str) -> dict:
        out = self.work / "out-dry"
        argv = self.exp("run", "-p", toml, "-m", "job.py", "--workers", str(WORKERS),
                        "--out", str(out), "--dry-run")
        stdout = subprocess.DEVNULL if mode == "devnull" else subprocess.PIPE
        p = Proc(argv, self.env, self.work, stdout=stdout, stderr=subprocess.PIPE)
        line = p.p.stderr.readline().decode(errors="replace").strip()
        t_count = time.perf_counter() - p.t0
        r = {"count_line": line, "t_count": t_count}
        if mode == "devnull":
            p.signal_group()  # it would go on listing every configuration to /dev/null
            p.wait()
        else:
            first = p.p.stdout.readline()
            p.p.stdout.close()
            t_close = time.perf_counter()
            p.wait()
            rest = p.p.stderr.read().decode(errors="replace")
            r.update(first=first.decode().strip(), exit_after_close=p.t_end - t_close,
                     rc=p.rc, stderr_after=rest.strip()[-500:])
        p.p.stderr.close()
        return r

    def step4(self) -> None:
        n = self.n("dry")
        log(f"step 4: --dry-run of {n:,} configurations, time to the count line")
        r: dict = {"n": n, "argv": self.exp("run", "-p", "dry.toml", "-m", "job.py",
                                            "--workers", str(WORKERS), "--out", "OUT",
                                            "--dry-run")}
        for toml, key in (("dry.toml", "big"), ("tiny.toml", "tiny")):
            for mode in ("devnull", "pipe"):
                runs = [self.time_to_count(toml, mode) for _ in range(self.reps)]
                r[f"{key}_{mode}"] = runs
                log(f"  {key} {mode}: time to count {median([x['t_count'] for x in runs]):.3f}s "
                    f"({runs[0]['count_line']!r})"
                    + (f", exit {median([x['exit_after_close'] for x in runs]):.3f}s after "
                       f"closing, rc {[x['rc'] for x in runs]}" if mode == "pipe" else ""))
        t = median([x["t_count"] for x in r["big_devnull"] + r["big_pipe"]])
        r["t_count"] = t
        r["count_ok"] = all(f"{n} run(s) of {n} configuration(s)" in x["count_line"]
                            for x in r["big_devnull"] + r["big_pipe"])
        r["pass"] = t <= DRY_TARGET_S and r["count_ok"]
        self.res["steps"][4] = r

    # step 5
    def step5(self) -> None:
        n = self.n("huge")
        free = shutil.disk_usage(self.work).free
        need = n * 300 * 1.3  # journal ~210 B/run, CSV ~70 B/run, margin
        log(f"step 5: {n:,} runs; {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed")
        if free < need:
            self.res["steps"][5] = {"skipped": f"only {free / 1e9:.1f} GB free, "
                                               f"{need / 1e9:.1f} GB needed", "pass": False}
            return
        r = self.run_grid("huge")
        r["free_before"] = free
        r["pass"] = r["driver_peak"] <= RSS_TARGET_MB * MB and r["ok_lines"]
        # extra rows on the big journal (no targets): resume, results, Ctrl-C while reading
        log("  huge: resume (nothing to run) on its journal")
        argv = self.exp("run", "-p", "huge.toml", "-m", "job.py", "--workers", str(WORKERS),
                        "--out", str(r["out"]))
        r["resume"] = self.repeat(argv, "huge-resume", 1, expect="nothing to run")
        log("  huge: exp results --top 10")
        r["results"] = self.repeat(self.exp("results", str(r["journal"]), "--top", "10"),
                                   "huge-results", 1, expect=f"{n} run(s)")
        log("  huge: Ctrl-C while reading the journal at start (resume with -r 2)")
        r["sigint_read"] = self.sigint("huge", r["journal"], "reading", extra=("-r", "2"))
        self.res["steps"][5] = r
        if not self.args.keep:
            shutil.rmtree(r["out"], ignore_errors=True)
            log("  huge: files deleted")

    # step 6
    def sigint(self, key: str, journal: Path, when: str, extra: tuple[str, ...]) -> dict:
        """Start ``exp run`` on ``key``'s grid into ``journal``'s folder, SIGINT its process
        group while it reads the journal at start or once runs are under way; how it ended."""
        out = journal.parent
        job = "padjob.py" if key == "pad" else "job.py"
        argv = self.exp("run", "-p", f"{key}.toml", "-m", job, "--workers", str(WORKERS),
                        "--out", str(out), *extra)
        exists = journal.exists()
        size0 = journal.stat().st_size if exists else 0
        lines0 = count_lines(journal) if exists else 0
        err_f = self.work / "sigint.err"
        with open(err_f, "wb") as e:
            p = Proc(argv, self.env, self.work, stdout=subprocess.DEVNULL, stderr=e)
            where = None
            t_limit = time.perf_counter() + 300
            first_growth = None
            while time.perf_counter() < t_limit and p.p.poll() is None:
                if when == "reading":
                    pos = reading_pos(p.pid, journal)
                    if pos is not None and pos >= 0.25 * size0 and journal.stat().st_size == size0:
                        where = f"reading the journal at start, at {pos / size0:.0%} of it"
                        break
                    time.sleep(0.002)
                else:
                    size = journal.stat().st_size if journal.exists() else 0
                    if size > size0 + 65536:
                        if first_growth is None:
                            first_growth = time.perf_counter() - p.t0
                        elif time.perf_counter() - p.t0 >= first_growth + 0.5:
                            where = (f"runs under way ({size - size0:,} bytes journaled "
                                     f"this session)")
                            break
                    time.sleep(0.01)
            if where is None:
                p.signal_group()
                p.wait()
                log(f"  SIGINT {when}: window missed (exit {p.rc})")
                return {"when": when, "missed": True, "rc": p.rc, "pass": False,
                        "err": err_f.read_text(errors="replace")[-2000:]}
            size_at = journal.stat().st_size
            t_sig = time.perf_counter()
            p.signal_group(signal.SIGINT)
            p.wait()
            exit_s = p.t_end - t_sig
            left_at_exit = p.group_left()
            time.sleep(1.0)
            left_after_1s = p.group_left()
            p.signal_group()
        err = err_f.read_text(errors="replace")
        lines1 = count_lines(journal)
        r = {"when": when, "where": where, "exit_s": exit_s, "rc": p.rc,
             "since_launch": t_sig - p.t0, "first_growth": first_growth,
             "left_at_exit": left_at_exit, "left_after_1s": left_after_1s,
             "whole": journal_whole(journal), "lines_before": lines0, "lines_after": lines1,
             "bytes_at_signal": size_at, "maxrss": p.maxrss, "hwm": p.hwm,
             "err_tail": err.strip()[-600:]}
        r["pass"] = (r["rc"] == 130 and exit_s <= SIGINT_TARGET_S and r["whole"]
                     and left_after_1s == 0)
        log(f"  SIGINT {where}: exit {p.rc} {exit_s:.3f}s after the signal "
            f"({t_sig - p.t0:.2f}s after launch), journal whole {r['whole']}, "
            f"{lines1 - lines0:,} lines added, processes left {left_at_exit}/{left_after_1s}, "
            f"maxrss {mb(p.maxrss)}")
        return r

    def step6(self) -> None:
        # the baseline: a fresh experiment (small journal), interrupted while running
        log("step 6: SIGINT baseline, a fresh experiment with a small journal")
        base_out = self.work / "out-base"
        base = self.sigint("grid", base_out / "grid.jsonl", "running", extra=())
        shutil.rmtree(base_out, ignore_errors=True)
        g = self.run_grid("pad", job="padjob.py", extra=("-q",))
        journal = g["journal"]
        r: dict = {"build": g, "interrupts": [], "baseline": base}
        for i in range(self.reps):
            for when in ("reading", "running"):
                log(f"step 6: SIGINT {i + 1}/{self.reps}, {when}")
                r["interrupts"].append(self.sigint("pad", journal, when, extra=("-r", "2")))
        r["lines"] = count_lines(journal)
        r["journal_bytes"] = journal.stat().st_size
        log(f"step 6: exp results on {r['lines']:,} lines, {r['journal_bytes'] / MB:,.0f} MB")
        r["results"] = self.repeat(self.exp("results", str(journal), "--top", "10"),
                                   "pad-results", self.reps, expect="run(s)")
        r["results_nogroup"] = self.repeat(
            self.exp("results", str(journal), "--top", "10", "--no-group"),
            "pad-results-no-group", self.reps, expect="run(s)")
        csv = self.work / "pad-results.csv"
        argv = self.exp("results", str(journal), "--top", "10", "--csv", str(csv))
        r["csv"] = self.repeat(argv, "pad-csv", 1, expect="run(s)")
        r["csv"]["rows"] = count_lines(csv) - 1 if csv.exists() else None
        r["csv"]["bytes"] = csv.stat().st_size if csv.exists() else None
        log(f"  csv: {r['csv']['rows']} rows, {(r['csv']['bytes'] or 0) / MB:,.0f} MB")
        csv.unlink(missing_ok=True)
        ints = [x for x in r["interrupts"] if not x.get("missed")]
        r["pass_sigint"] = bool(ints) and all(x["pass"] for x in r["interrupts"])
        r["pass_results"] = (r["results"]["wall"] <= RESULTS_TARGET_S
                             and r["results"]["maxrss"] <= RSS_TARGET_MB * MB)
        r["pass_csv"] = bool(r["csv"]["rows"]) and r["csv"]["rows"] > 0
        self.res["steps"][6] = r
        if not self.args.keep:
            shutil.rmtree(g["out"], ignore_errors=True)

    # step 7
    def step7(self) -> None:
        import importlib.util  # not imported here: it would grow this process
        if importlib.util.find_spec("distributed") is None:
            self.res["steps"][7] = {"skipped": "distributed is not importable", "pass": False}
            return
        n = self.n("dask")
        log(f"step 7: {n:,} runs, Dask LocalCluster vs local pool, {self.reps} each")
        argv = [self.py, "dask_child.py", "dask.toml", "job.py", str(n), str(self.reps),
                str(self.work)]
        p = subprocess.run(argv, env=self.env, cwd=self.work, stdout=subprocess.PIPE,
                           text=True)
        if p.returncode != 0:
            self.res["steps"][7] = {"skipped": f"child exited {p.returncode}", "pass": False}
            return
        d = json.loads(p.stdout.strip().splitlines()[-1])
        dw = [x["wall"] for x in d["dask"]]
        lw = [x["wall"] for x in d["local"]]
        d["n"] = n
        d["ratio"] = median(lw) / median(dw)
        d["all_ok"] = all(x["ok"] for x in d["dask"] + d["local"])
        d["pass"] = d["ratio"] >= DASK_TARGET and d["all_ok"]
        log(f"  dask {median(dw):.3f}s, local {median(lw):.3f}s, ratio {d['ratio']:.3f}")
        self.res["steps"][7] = d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10^5-sized versions (a smoke test)")
    p.add_argument("--skip-huge", action="store_true", help="skip step 5 (10^7 runs)")
    p.add_argument("--only", help="comma-separated steps to run, e.g. 2,3,7")
    p.add_argument("--reps", type=int, help="repetitions of the short measurements (default 3)")
    p.add_argument("--md", type=Path, default=REPO / "bench" / "scale.md",
                   help="markdown report to write (default bench/scale.md)")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--keep", action="store_true", help="keep the big files (prints where)")
    p.add_argument("--work-dir", default=None, help="where the temporary folder goes")
    p.add_argument("--exp-dir", type=Path, default=REPO,
                   help="folder holding the exp.py to measure (default: this repository; "
                        "e.g. a copy of `git show HEAD:exp.py` while the tree is being edited)")
    p.add_argument("--save-json", type=Path, help="also write the raw figures to this file")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: write the report from a --save-json file")
    args = p.parse_args(argv)
    command = shlex.join(["python", "bench/bench_scale.py",
                          *(sys.argv[1:] if argv is None else argv)])
    if args.render:
        res = json.loads(args.render.read_text())
        res["steps"] = {int(k): v for k, v in res["steps"].items()}
        res["loads"] = {int(k): v for k, v in res.get("loads", {}).items()}
        report = render(res)
        print(report)
        if not args.no_write:
            args.md.write_text(report)
            log(f"wrote {args.md}")
        return 0
    args.exp_dir = args.exp_dir.resolve()
    if not (args.exp_dir / "exp.py").is_file():
        sys.exit(f"bench: no exp.py in {args.exp_dir}")
    steps = [1, 2, 3, 4, 6, 7, 5]  # the longest last
    if args.only:
        steps = [s for s in steps if str(s) in args.only.split(",")]
    if args.skip_huge and 5 in steps:
        steps.remove(5)
    t_start = time.perf_counter()
    load0 = loadavg()
    sha0 = hashlib.sha256((args.exp_dir / "exp.py").read_bytes()).hexdigest()[:12]
    log(f"start, load average {load0}, exp.py {sha0}, steps {steps}")
    bench = Bench(args)
    try:
        for s in steps:
            bench.res.setdefault("loads", {})[s] = loadavg()
            getattr(bench, f"step{s}")()
    finally:
        if args.keep:
            log(f"kept {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    res = bench.res
    commit, found = exp_commit(args.exp_dir / "exp.py")
    res.update(load0=load0, load1=loadavg(), total=time.perf_counter() - t_start, sha0=sha0,
               sha1=hashlib.sha256((args.exp_dir / "exp.py").read_bytes()).hexdigest()[:12],
               date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), command=command,
               work=str(bench.work), size=bench.size, reps=bench.reps, quick=args.quick,
               exp_dir=str(args.exp_dir), in_repo=args.exp_dir == REPO, head=commit,
               found=found, machine=machine())
    res["loads"] = {int(k): v for k, v in res.get("loads", {}).items()}
    if args.save_json:
        args.save_json.write_text(json.dumps(res, default=str, indent=1))
        res = json.loads(args.save_json.read_text())  # the report reads what was saved
        res["steps"] = {int(k): v for k, v in res["steps"].items()}
        res["loads"] = {int(k): v for k, v in res.get("loads", {}).items()}
    report = render(res)
    print(report)
    if not args.no_write:
        args.md.write_text(report)
        log(f"wrote {args.md}")
    return 0


# ─── the report ──────────────────────────────────────────────────────────────


def cmd(argv: list[str], work: Path) -> str:
    """A command as one would type it (python -m exp ..., paths relative to OUT)."""
    words = ["python" if a == sys.executable else a for a in argv]
    return shlex.join(words).replace(str(work) + "/", "")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} CPU(s) ({model}), {mem} RAM, {platform.platform()}, "
            f"Python {platform.python_version()}")


def exp_commit(path: Path) -> tuple[str, str | None]:
    """HEAD's short hash, and the latest commit whose exp.py is this file (or None)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True,
                              text=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        blob = git("hash-object", str(path))
        for c in git("log", "-n", "50", "--format=%h", "--", "exp.py").split():
            if git("rev-parse", f"{c}:exp.py") == blob:
                return head, c
        return head, None
    except OSError:
        return "?", None


def render(res: dict) -> str:
    st = res["steps"]
    w = res["work"]
    size = res["size"]
    command, commit, found = res["command"], res["head"], res["found"]
    L = [
        "# exp at scale",
        "",
        f"Command: `{command}` ({res['total'] / 60:.1f} min, {res['date']})",
        "",
        f"Machine: {res['machine']}. Measured: "
        f"{'this repository' + chr(39) + 's' if res['in_repo'] else res['exp_dir']} "
        f"exp.py, sha256 {res['sha0']}, "
        + (f"the exp.py of commit {found} (`git rev-parse --short HEAD`: {commit})" if found
           else f"an exp.py of no recent commit (`git rev-parse --short HEAD`: {commit})")
        + ("" if res["sha0"] == res["sha1"] else f", **exp.py changed during the run, now "
           f"{res['sha1']}**") + ".",
        "",
        f"Load average (1, 5, 15 min) at the start: `{res['load0']}`; at the end: "
        f"`{res['load1']}` (other processes on this 2-core machine slow every figure down). "
        "At the start of each step: " + ", ".join(
            f"{k}: {v.split()[0]}" for k, v in sorted(
                res.get("loads", {}).items(), key=lambda kv: int(kv[0]))) + ".",
        "",
        *(["**Quick (smoke-test) sizes**: the targets are for the full sizes.", ""]
          if res["quick"] else []),
        "Every figure is a whole `exp` process (`python -m exp ...` with the measured "
        "exp.py's folder first on PYTHONPATH, byte code cached), 2 workers, runnable `def run(a, b): return "
        "a + b` over a grid of two int ranges. Each exp process is launched as "
        "`/usr/bin/time -f \"%M %x %U %S\" -o FILE python -m exp ...`. Peak RSS: "
        "`maxrss` is GNU time's `%M`, the `ru_maxrss` wait4 returns for the driver (as "
        "`/usr/bin/time -v` prints it), which Linux makes max(driver's own peak, largest "
        "peak of the workers it reaped): an upper bound of the driver's own. `VmHWM` is the "
        "driver's own high-water mark from /proc/PID/status, sampled every 0.1 s while it "
        "runs (the driver alone), and the workers' VmHWM is sampled the same way. A target "
        "on the driver's peak is judged on `maxrss` when it is above every worker's VmHWM "
        "(it is then the driver's own), else on the driver's sampled VmHWM (`maxrss` is "
        "then a worker's). GNU time is the launcher because a child forked straight from "
        "the benchmark's Python process carries that process's RSS into its own "
        "`ru_maxrss`. CPU: `%U + %S`, user and system seconds of the driver and of the "
        "workers it reaped; unlike wall time it hardly depends on the machine's load. "
        f"MB = 10^6 bytes. Short measurements: median of {res['reps']} (min-max).",
        "",
        "## Targets",
        "",
        "| # | target | measured | verdict |",
        "| --- | --- | --- | --- |",
    ]

    def row(num, target, measured, ok):
        L.append(f"| {num} | {target} | {measured} | {verdict(ok)} |")

    def skipped(num, target):
        s = st.get(num)
        if s is None:
            L.append(f"| {num} | {target} | not run | - |")
            return True
        if "skipped" in s:
            L.append(f"| {num} | {target} | skipped: {s['skipped']} | - |")
            return True
        return False

    n1 = size["grid"][0] * size["grid"][1]
    if not skipped(1, f"{n1:,}-run grid, driver peak RSS <= 100 MB"):
        s = st[1]
        row(1, f"{n1:,}-run grid, driver peak RSS <= 100 MB",
            f"{s['driver_peak'] / MB:.1f} MB ({s['peak_how']}; maxrss {s['maxrss'] / MB:.1f} MB, "
            f"VmHWM {s['hwm'] / MB:.1f} MB); {s['wall']:.1f} s, "
            f"{s['rate']:,.0f} runs/s", s["pass"])
    if not skipped(2, "resume, nothing to run, <= 3 s"):
        s = st[2]
        row(2, "resume of the finished journal: \"nothing to run\" in <= 3 s",
            f"{s['wall']:.3f} s (CPU {s['cpu']:.2f} s), {s['maxrss'] / MB:.1f} MB", s["pass"])
    if not skipped(3, "`exp results --top 10`, <= 3 s and <= 100 MB"):
        s = st[3]
        row(3, "`exp results --top 10` <= 3 s and <= 100 MB",
            f"{s['wall']:.3f} s (CPU {s['cpu']:.2f} s), {s['maxrss'] / MB:.1f} MB", s["pass"])
    nd = size["dry"][0] * size["dry"][1]
    if not skipped(4, f"`--dry-run` count of {nd:,} configurations instant (<= 0.5 s)"):
        s = st[4]
        row(4, f"`--dry-run` count of {nd:,} configurations instant (<= {DRY_TARGET_S} s)",
            f"{s['t_count']:.3f} s to the count line", s["pass"])
    nh = size["huge"][0] * size["huge"][1]
    if not skipped(5, f"{nh:,}-run experiment, driver peak RSS <= 100 MB"):
        s = st[5]
        row(5, f"{nh:,}-run experiment, driver peak RSS <= 100 MB",
            f"{s['driver_peak'] / MB:.1f} MB ({s['peak_how']}; maxrss {s['maxrss'] / MB:.1f} MB, "
            f"VmHWM {s['hwm'] / MB:.1f} MB); {s['wall']:.0f} s, "
            f"{s['rate']:,.0f} runs/s", s["pass"])
    if not skipped(6, "Ctrl-C"):
        s = st[6]
        ex = [x["exit_s"] for x in s["interrupts"] if not x.get("missed")]
        rd = [x["exit_s"] for x in s["interrupts"] if x["when"] == "reading" and not x.get("missed")]
        ru = [x["exit_s"] for x in s["interrupts"] if x["when"] == "running" and not x.get("missed")]
        rcs = sorted({x["rc"] for x in s["interrupts"]})
        row("6a", f"Ctrl-C on a {s['build']['lines']:,}-line journal "
            f"({s['build']['journal_bytes'] / MB:,.0f} MB): exit 130 within 1 s",
            (f"slowest {max(ex):.3f} s of {len(ex)}, exit codes {rcs}" if ex else "no signal sent")
            + (f", {sum(1 for x in s['interrupts'] if x.get('missed'))} missed"
               if any(x.get("missed") for x in s["interrupts"]) else "")
            + (f" (while reading at start: slowest {max(rd):.3f} s; runs under way: slowest "
               f"{max(ru):.3f} s)" if rd and ru else "")
            + ("" if s["baseline"].get("missed") else
               f"; baseline, a fresh experiment: {s['baseline']['exit_s']:.3f} s"),
            s["pass_sigint"])
        row("6b", "`exp results --top 10` on it, <= 3 s and <= 100 MB",
            f"{s['results']['wall']:.3f} s, {s['results']['maxrss'] / MB:.1f} MB",
            s["pass_results"])
        row("6c", "`exp results --csv FILE` writes the CSV (time reported)",
            f"{s['csv']['wall']:.1f} s, {s['csv']['maxrss'] / MB:.1f} MB, "
            f"{s['csv']['rows'] or 0:,} rows", s["pass_csv"])
    if not skipped(7, "Dask / local throughput >= 0.2"):
        s = st[7]
        row(7, f"Dask / local throughput, {s['n']:,} runs, >= {DASK_TARGET}",
            f"{s['ratio']:.3f}", s["pass"])

    for num, limit in ((2, RESUME_TARGET_S), (3, RESULTS_TARGET_S)):
        x = st.get(num)
        if x and "skipped" not in x and x["wall"] > limit and x["cpu"] <= limit:
            L += ["", f"Target {num}: the wall time ({x['wall']:.2f} s) is over {limit:g} s, "
                  f"its CPU time ({x['cpu']:.2f} s) under it: the rest is waiting for a CPU "
                  f"(load average {res['loads'].get(num, '?').split()[0]} at the step's "
                  "start, on 2 cores)."]

    # details
    if 1 in st and "skipped" not in st[1]:
        s = st[1]
        L += ["", f"## 1. A {s['n']:,}-run grid", "", f"`{cmd(s['argv'], w)}`", "",
              "| measure | value |", "| --- | ---: |",
              f"| wall (launch to exit) | {s['wall']:.1f} s |",
              f"| runs/s (whole process) | {s['rate']:,.0f} |",
              f"| CPU, user + sys, driver and workers | {s['cpu']:.1f} s |",
              f"| driver peak RSS, maxrss (time %M) | {mb(s['maxrss'])} |",
              f"| driver VmHWM, sampled | {mb(s['hwm'])} |",
              f"| largest worker VmHWM, sampled ({s['workers_seen']} children seen) | "
              f"{mb(s['worker_hwm'])} |",
              f"| journal | {s['lines']:,} lines, {s['journal_bytes'] / MB:,.0f} MB |",
              f"| CSV | {(s['csv_bytes'] or 0) / MB:,.0f} MB |",
              "", f"exp's summary: `{s['summary']}`"]
    for num, title in ((2, "Resume of the finished journal"),
                       (3, "`exp results --top 10`")):
        if num in st and "skipped" not in st[num]:
            s = st[num]
            L += ["", f"## {num}. {title}", "", f"`{cmd(s['argv'], w)}`", "",
                  "| measure | value |", "| --- | ---: |",
                  f"| wall | {s['wall']:.3f} s{spread(s['walls'])} |",
                  f"| CPU, user + sys | {s['cpu']:.2f} s{spread(s['cpus'], '.2f')} |",
                  f"| driver peak RSS, maxrss (time %M) (largest of {len(s['rss'])}) | {mb(s['maxrss'])} |",
                  f"| VmHWM, sampled (largest) | {mb(s['hwm_max'])} |",
                  "", "Output (last repetition):", "", "```",
                  *s["text"].strip().splitlines()[:24], "```"]
    if 4 in st and "skipped" not in st[4]:
        s = st[4]
        L += ["", f"## 4. `--dry-run` of {s['n']:,} configurations", "",
              f"`{cmd(s['argv'], w)}`", "",
              "Time from launch until the count line (exp prints it first, on stderr) is "
              "read. /dev/null: stdout to /dev/null, the process killed once the count is "
              "read (it would go on listing the configurations). Pipe: stdout to a pipe "
              "closed after its first line; then the time from closing it to exit.", "",
              "| grid | stdout | time to count s | exit after close s | exit code |",
              "| --- | --- | ---: | ---: | --- |"]
        for key, label in (("big", f"{s['n']:,}"), ("tiny", "10")):
            for mode in ("devnull", "pipe"):
                runs = s[f"{key}_{mode}"]
                tc = [x["t_count"] for x in runs]
                if mode == "pipe":
                    ex = [x["exit_after_close"] for x in runs]
                    extra = f"{median(ex):.3f}{spread(ex)} | {sorted({x['rc'] for x in runs})}"
                else:
                    extra = "- | (killed)"
                L.append(f"| {label} | {'/dev/null' if mode == 'devnull' else 'pipe'} | "
                         f"{median(tc):.3f}{spread(tc)} | {extra} |")
        pipe = s["big_pipe"][0]
        L += ["", f"Count line: `{pipe['count_line']}`; first configuration: "
              f"`{pipe['first']}`"
              + (f"; stderr after the pipe closed: `{pipe['stderr_after']}`"
                 if pipe["stderr_after"] else "; nothing on stderr after the pipe closed") + "."]
    if 5 in st and "skipped" not in st[5]:
        s = st[5]
        L += ["", f"## 5. A {s['n']:,}-run experiment", "", f"`{cmd(s['argv'], w)}`", "",
              f"Free disk before: {s['free_before'] / 1e9:.0f} GB; the files were deleted "
              "afterwards.", "",
              "| measure | value |", "| --- | ---: |",
              f"| wall (launch to exit) | {s['wall']:.0f} s ({s['wall'] / 60:.1f} min) |",
              f"| runs/s (whole process) | {s['rate']:,.0f} |",
              f"| CPU, user + sys, driver and workers | {s['cpu']:.0f} s |",
              f"| driver peak RSS, maxrss (time %M) | {mb(s['maxrss'])} |",
              f"| driver VmHWM, sampled | {mb(s['hwm'])} |",
              f"| largest worker VmHWM, sampled | {mb(s['worker_hwm'])} |",
              f"| journal | {s['lines']:,} lines, {s['journal_bytes'] / MB:,.0f} MB |",
              f"| CSV | {(s['csv_bytes'] or 0) / MB:,.0f} MB |",
              "", f"exp's summary: `{s['summary']}`", "",
              "Extra rows on its journal (no targets, one run each):", "",
              "| command | wall s | peak RSS (maxrss) |", "| --- | ---: | ---: |",
              f"| `{cmd(s['resume']['argv'], w)}` (nothing to run: "
              f"{s['resume']['expect_found']}) | {s['resume']['wall']:.2f} | "
              f"{s['resume']['maxrss'] / MB:.1f} MB |",
              f"| `{cmd(s['results']['argv'], w)}` | {s['results']['wall']:.2f} | "
              f"{s['results']['maxrss'] / MB:.1f} MB |"]
        x = s["sigint_read"]
        if x.get("missed"):
            L.append(f"| SIGINT while reading at start (`-r 2`) | missed the window | |")
        else:
            L.append(f"| SIGINT while {x['where']} (`-r 2`), {x['since_launch']:.2f} s after "
                     f"launch: exit {x['rc']} | {x['exit_s']:.3f} after the signal | "
                     f"{x['maxrss'] / MB:.1f} MB |")
    if 6 in st and "skipped" not in st[6]:
        s = st[6]
        b = s["build"]
        L += ["", "## 6. Ctrl-C on a large journal", "",
              f"Journal built by `{cmd(b['argv'], w)}` ({b['n']:,} runs returning "
              f"`{{\"sum\": a + b, \"pad\": {PAD} characters}}`): {b['wall']:.0f} s, "
              f"{b['rate']:,.0f} runs/s, peak RSS (maxrss) {b['maxrss'] / MB:.1f} MB, "
              f"{b['lines']:,} lines, {b['journal_bytes'] / MB:,.0f} MB.", "",
              f"Then resumed with `-r 2` (every configuration a second time: "
              f"{b['n']:,} runs left), SIGINT sent to the driver's process group "
              "(`os.killpg`, as a terminal's Ctrl-C) while it reads the journal at start "
              "(a read-only descriptor of the journal part-way through it in "
              "/proc/PID/fdinfo, none of this session's runs journaled yet) or once runs "
              "are under way (the journal has grown by 64 KiB, then 0.5 s more). Exit time: "
              "signal to the driver's exit. Processes of the group left at its exit / 1 s "
              "later.", "",
              "| moment | s after launch | exit code | exit s after signal | journal whole | "
              "lines added | left | peak RSS (maxrss) |",
              "| --- | ---: | --- | ---: | --- | ---: | --- | ---: |"]
        for x in [s["baseline"], *s["interrupts"]]:
            if x is s["baseline"] and not x.get("missed"):
                L.append(f"| baseline, a fresh experiment (no `-r 2`): {x['where']} | "
                         f"{x['since_launch']:.2f} | {x['rc']} | {x['exit_s']:.3f} | "
                         f"{x['whole']} | {x['lines_after'] - x['lines_before']:,} | "
                         f"{x['left_at_exit']} / {x['left_after_1s']} | "
                         f"{x['maxrss'] / MB:.1f} MB |")
                continue
            if x.get("missed"):
                L.append(f"| {x['when']}: window missed | | {x['rc']} | | | | | |")
                continue
            L.append(f"| {x['where']} | {x['since_launch']:.2f} | {x['rc']} | "
                     f"{x['exit_s']:.3f} | {x['whole']} | "
                     f"{x['lines_after'] - x['lines_before']:,} | {x['left_at_exit']} / "
                     f"{x['left_after_1s']} | {x['maxrss'] / MB:.1f} MB |")
        growth = [x["first_growth"] for x in s["interrupts"] if x.get("first_growth")]
        if growth:
            L += ["", f"Launch to the first run of the resumed session journaled (the journal "
                  f"read at start, workers started): {median(growth):.2f} s{spread(growth, '.2f')}."]
        last = next((x for x in reversed(s["interrupts"]) if not x.get("missed")), None)
        if last:
            L += ["", "exp's stderr after the last signal:", "", "```",
                  *last["err_tail"].splitlines()[-8:], "```"]
        r, c = s["results"], s["csv"]
        L += ["", f"Then, on the journal ({s['lines']:,} lines, "
              f"{s['journal_bytes'] / MB:,.0f} MB):", "",
              "| command | wall s | peak RSS (maxrss) |", "| --- | ---: | ---: |",
              f"| `{cmd(r['argv'], w)}` | {r['wall']:.3f}{spread(r['walls'])} | "
              f"{r['maxrss'] / MB:.1f} MB |",
              f"| `{cmd(s['results_nogroup']['argv'], w)}` | "
              f"{s['results_nogroup']['wall']:.3f}{spread(s['results_nogroup']['walls'])} | "
              f"{s['results_nogroup']['maxrss'] / MB:.1f} MB |",
              f"| `{cmd(c['argv'], w)}` | {c['wall']:.2f} | {c['maxrss'] / MB:.1f} MB |",
              "", f"The CSV: {c['rows'] or 0:,} rows, {(c['bytes'] or 0) / MB:,.0f} MB.", "",
              "`exp results` output:", "", "```", *r["text"].strip().splitlines()[:24], "```"]
    if 7 in st and "skipped" not in st[7]:
        s = st[7]
        dw = [x["wall"] for x in s["dask"]]
        lw = [x["wall"] for x in s["local"]]
        L += ["", f"## 7. Dask against the local pool, {s['n']:,} runs", "",
              "One process (`python dask_child.py`) starts `distributed.LocalCluster("
              "n_workers=2, threads_per_worker=1, processes=True, host=\"127.0.0.1\", "
              "dashboard_address=None)` and times, alternating, "
              "`exp.run_experiment(SPACE, \"job.py\", out=FRESH, quiet=True, records=False, "
              "cluster=cluster.scheduler_address)` and the same call with `workers=2` "
              f"(the call only, from entry to return), {len(dw)} times each.", "",
              "| engine | wall s | runs/s |", "| --- | ---: | ---: |",
              f"| local pool, 2 workers | {median(lw):.3f}{spread(lw)} | "
              f"{s['n'] / median(lw):,.0f} |",
              f"| Dask LocalCluster, 2 processes x 1 thread | {median(dw):.3f}{spread(dw)} | "
              f"{s['n'] / median(dw):,.0f} |", "",
              f"Ratio of throughputs dask / local: **{s['ratio']:.3f}** (target >= "
              f"{DASK_TARGET}). Every call complete with every run journaled: {s['all_ok']}. "
              f"LocalCluster start-up {s['cluster_start']:.2f} s, close "
              f"{s['cluster_close']:.2f} s (not counted)."]
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
