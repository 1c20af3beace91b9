"""Fault-injection and bad-input campaign for exp: is a finished run ever lost, does anything hang?

    python stress/campaign.py --seed 1             # the full campaign (about 20 minutes on 2 cores)
    python stress/campaign.py --seed 1 --quick     # a few kills, a few hundred fuzz cases (CI)
    python stress/campaign.py --seed 1 --only kill fuzz --json out.json
    python stress/campaign.py --seed 1 --only inrun streams longruns fresh dask bigjournal signals leftovers

Phases (each seeded from --seed, so a failure can be replayed with the same command):

kill     a 300-run grid of 1-50 ms runs on 2 workers; ``kill -9`` the driver at a
         random moment, rerun the same command, until it completes; repeat.
gopt     the same with ``exp gopt -n 40`` (skipped while ``exp gopt`` is not there).
sigint   SIGINT to the driver's process group at a random moment, as a terminal
         does: exit 130 within 5 s, no live process of the experiment left, the
         journal whole; the rerun completes.
faults   500 runs with raises, os._exit, SIGKILL, segfaults, infinite loops
         (--timeout 1), a memory hog capped by RLIMIT_AS, 10 MB of stdout, and
         runs that fork a lingering child: every run ends with the right status.
fuzz     param files (hypothesis), runnable specs, journals and CLI flags: each
         case loads or ends with exactly one ``exp: error: ...`` line naming the
         file, exit 2, no traceback.
disk     a read-only and a full output directory (a 1 MiB tmpfs; RLIMIT_FSIZE
         where mounting is not allowed) and a disk that fills mid-experiment.

Phases added after an outside review (not in the first campaign's figures):

inrun      runs that change their own process before returning or raising: chdir
           (a relative --out), a folder removed under them, os.close of fds 0, 1,
           2, fds 1 and 2 on /dev/null, sys.stdout/sys.stderr None, closed or
           replaced, os.environ cleared or junked, on 1-3 workers: each run's
           status is its own (ok or failed, never crashed) and each run's log
           OUT/NAME.logs/ID-RUN.log holds its own lines and no other run's.
streams    ``exp run`` started with stdin, stdout, stderr closed (each subset,
           with and without -q), on /dev/full, or stderr a pipe nobody reads;
           ``exp results`` (and ``exp gopt``) the same: exit 0, runs and logs as usual.
longruns   N runs of T s on N workers: journal span < 1.5 T; short runs queued
           behind long ones finish well before the first long one does (taken
           back by an idle worker); every run once. Then many 30-run experiments
           whose runs take 0 to 50 ms (a third start a short Python): every run
           journaled exactly once, whatever was taken back at the end.
fresh      while a driver runs an experiment, a second ``--fresh`` (alone or three
           at once), a plain resume or ``--retry-failed`` is refused with exit 2
           and the one "in use by another exp process" line, nothing is moved
           aside, and the first driver completes with every run once.
dask       real ``dask scheduler`` and ``dask worker`` programs on 127.0.0.1; the
           scheduler is killed (kill -9, or SIGTERM) at a random moment: the
           driver exits 2 with the one "the Dask scheduler at ... is gone" line
           within LOST_AFTER (30 s) + 5 s, only finished ok runs in the journal,
           no exp worker process left on the Dask workers; against a new
           scheduler the same command finishes exactly the missing runs. Full
           size also freezes one scheduler (SIGSTOP): noted, not promised.
bigjournal a synthetic finished journal of 200,000 (quick) or 1,000,000 lines in
           the format of a real one: resume says "nothing to run" (exit 0), ``exp
           results`` reads it, SIGINT while resuming it or while running the runs
           left of a second such journal exits 130, SIGTERM while resuming too.
           The times and peak RSS are figures; only a 60 s bound fails the phase.
signals    SIGTERM to the driver, SIGHUP to it or its process group, at random
           moments: exit 130 with the one line, the journal whole, nothing left,
           the rerun completes; SIGHUP to a driver started under nohup changes
           nothing. A death by the default disposition counts apart only before
           the driver opened its journal.
leftovers  runs leave processes in the worker's group, a new session, a process
           group of their own, daemons (one with an empty environment), one that
           ignores SIGTERM/SIGHUP/SIGINT, one that re-forks every 50 ms, and one a
           module keeps between runs (it must stay alive until its worker ends):
           none alive 3 s after exp ends, whether the runs return, raise, crash
           their worker or time out, or the driver gets SIGINT or SIGTERM. After
           kill -9 of the driver survivors are counted, not a violation.

Only local processes are used (the dask phase starts its scheduler and workers
on 127.0.0.1, and is skipped without the distributed package). Every process
of an experiment carries the environment variable EXP_STRESS_TAG, which is how
orphans are found in the process table (zombies are not counted: they are
dead, waiting to be reaped); processes runs leave behind also carry a marker
in their command line.
A finding is a *violation*; the campaign prints the figures and every
violation with what to run to see it again, and exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNNABLES = HERE / "runnables"
PY = sys.executable

#: Fault kind -> statuses it may end with (memhog: MemoryError from the rlimit,
#: or the kernel killing the worker; flood and fork return normally).
FAULTS = {
    "raise": {"failed"},
    "exit": {"crashed"},
    "sigkill": {"crashed"},
    "segfault": {"crashed"},
    "loop": {"timeout"},
    "memhog": {"failed", "crashed"},
    "flood": {"ok"},
    "fork": {"ok"},
    "fork_exit": {"crashed"},
}


# ─── bookkeeping ─────────────────────────────────────────────────────────────


@dataclass
class Report:
    """Figures and violations of one campaign."""

    seed: int
    quick: bool
    figures: Counter = field(default_factory=Counter)
    violations: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def violation(self, phase: str, kind: str, detail: str, repro: str = "") -> None:
        self.violations.append({"phase": phase, "kind": kind, "detail": detail[:2000],
                                "repro": repro})
        print(f"  VIOLATION [{phase}] {kind}: {detail[:300]}", file=sys.stderr, flush=True)

    def kinds(self) -> set[tuple[str, str]]:
        return {(v["phase"], v["kind"]) for v in self.violations}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exp_env(tag: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["EXP_STRESS_TAG"] = tag
    env.pop("PYTHONFAULTHANDLER", None)
    return env


def live_tagged(tag: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes whose environment carries EXP_STRESS_TAG=tag."""
    needle = f"EXP_STRESS_TAG={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
        except OSError:
            continue
        if state != "Z":
            found.append((int(entry), cmd))
    return found


def wait_gone(tag: str, grace: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + grace
    while True:
        left = live_tagged(tag)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def reap(tag: str) -> None:
    """Kill what an experiment left alive (after it has been reported)."""
    for pid, _ in live_tagged(tag):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def write_space(path: Path, params: dict[str, dict]) -> Path:
    lines = []
    for name, spec in params.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in spec.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def grid_space(path: Path, n: int, salt: int) -> Path:
    return write_space(path, {"i": {"type": "range", "bounds": [0, n], "dtype": "int"},
                              "salt": {"type": "value", "value": salt}})


def cmdline(args: list[str]) -> str:
    return "PYTHONPATH=. python -m exp " + " ".join(args)


# ─── journal checks ──────────────────────────────────────────────────────────


@dataclass
class JournalState:
    headers: int = 0
    torn: int = 0  # lines that are not JSON objects (a kill mid-write)
    records: list[dict] = field(default_factory=list)

    def keys(self, status: str | None = "ok") -> Counter:
        # the journal fuzz writes records with ids of every type on purpose: exp
        # skips those, and so does this count
        return Counter((r["id"], r["run"]) for r in self.records
                       if type(r.get("id")) is int and type(r.get("run")) is int
                       and (status is None or r.get("status") == status))


def read_raw(path: Path) -> JournalState:
    state = JournalState()
    if not path.exists():
        return state
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            state.torn += 1
            continue
        if not isinstance(obj, dict):
            state.torn += 1
        elif obj.get("kind") == "header":
            state.headers += 1
        else:
            state.records.append(obj)
    return state


def temp_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and (p.name.endswith(".tmp") or ".tmp." in p.name))


def check_complete(report: Report, phase: str, out: Path, name: str, n: int, salt: int,
                   repro: str, seen_ok: set) -> None:
    """After a completed grid: each (id, 1) once, ok, right result; CSV = journal; no temp files."""
    j = read_raw(out / f"{name}.jsonl")
    ok = j.keys("ok")
    everything = j.keys(None)
    want = {(i, 1) for i in range(n)}
    missing = want - set(ok)
    dup = [k for k, c in everything.items() if c > 1]
    lost = seen_ok - set(ok)
    report.figures[f"{phase}: results lost"] += len(lost) + len(missing)
    report.figures[f"{phase}: duplicates"] += len(dup)
    if j.headers != 1:
        report.violation(phase, "headers", f"{j.headers} header lines in {name}.jsonl", repro)
    if missing:
        report.violation(phase, "missing runs", f"{len(missing)} runs not ok after exit 0: "
                         f"{sorted(missing)[:10]}", repro)
    if lost:
        report.violation(phase, "lost results", f"{len(lost)} runs journalled earlier are gone: "
                         f"{sorted(lost)[:10]}", repro)
    if dup:
        report.violation(phase, "duplicates", f"{len(dup)} (id, run) recorded more than once: "
                         f"{sorted(dup)[:10]}", repro)
    wrong = [r for r in j.records if r.get("status") == "ok" and
             (r["params"].get("i") != r["id"] or r["result"] != r["id"] * 1000 + salt)]
    if wrong:
        report.violation(phase, "wrong result", f"{len(wrong)} records carry another run's "
                         f"result or params, e.g. {wrong[0]}", repro)
    csv_path = out / f"{name}.csv"
    if not csv_path.exists():
        report.violation(phase, "no csv", f"{csv_path} missing after completion", repro)
    else:
        with open(csv_path, newline="") as f:
            rows = {(int(r["id"]), int(r["run"])): r for r in csv.DictReader(f)}
        latest = {(r["id"], r["run"]): r for r in j.records}
        bad = [k for k in latest if k not in rows or rows[k]["status"] != latest[k]["status"]
               or rows[k]["result"] != str(latest[k]["result"])]
        if bad or len(rows) != len(latest):
            report.violation(phase, "csv differs", f"{len(bad)} rows differ, csv {len(rows)} rows, "
                             f"journal {len(latest)} runs", repro)
    tmps = temp_files(out)
    if tmps:
        report.violation(phase, "temp files left", f"{len(tmps)} temporary files after "
                         f"completion: {tmps[:5]}", repro)


# ─── phase: kill -9 and SIGINT ───────────────────────────────────────────────


def interrupt_campaign(report: Report, work: Path, *, phase: str, target: int, rng: random.Random,
                       n_runs: int = 300, max_delay: float = 3.5) -> None:
    """Interrupt the driver ``target`` times (kill -9, or SIGINT to its group), rerunning to completion."""
    sigint = phase == "sigint"
    interrupts = experiments = attempts = 0
    while interrupts < target:
        experiments += 1
        salt = rng.randrange(10 ** 6)
        tag = f"{report.seed}-{phase}-{experiments}"
        d = work / f"{phase}-{experiments}"
        out = d / "out"
        d.mkdir(parents=True)
        space = grid_space(d / "grid.toml", n_runs, salt)
        args = ["run", "-p", str(space), "-m", str(RUNNABLES / "short.py"), "-w", "2",
                "--out", str(out), "-q"]
        repro = (f"python stress/campaign.py --seed {report.seed} --only {phase}  "
                 f"# experiment {experiments}: {cmdline(args)}")
        seen_ok: set = set()
        for attempt in range(1, 400):
            attempts += 1
            delay = rng.uniform(0.0, max_delay)
            err = d / f"stderr-{attempt}.txt"
            with open(err, "wb") as ferr:
                p = subprocess.Popen([PY, "-m", "exp", *args], cwd=d, env=exp_env(tag),
                                     stdout=subprocess.DEVNULL, stderr=ferr,
                                     start_new_session=True)
            try:
                rc = p.wait(delay)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is None:
                interrupts += 1
                t0 = time.monotonic()
                if sigint:
                    os.killpg(p.pid, signal.SIGINT)
                    try:
                        rc = p.wait(5.0)
                    except subprocess.TimeoutExpired:
                        report.figures["sigint: hangs"] += 1
                        report.violation(phase, "hang", f"no exit 5 s after SIGINT "
                                         f"(attempt {attempt}, {delay:.3f} s in)", repro)
                        os.killpg(p.pid, signal.SIGKILL)
                        rc = p.wait()
                    took = time.monotonic() - t0
                    report.figures["sigint: slowest exit (s)"] = round(max(
                        report.figures["sigint: slowest exit (s)"], took), 3)
                    text = err.read_text(errors="replace")
                    if rc == 0:  # it was finishing as the signal came: a completion, checked below
                        interrupts -= 1
                        report.figures["sigint: finished as the signal came"] += 1
                        left = wait_gone(tag, 3.0)
                        report.figures[f"{phase}: experiments completed"] += 1
                        check_complete(report, phase, out, "grid", n_runs, salt, repro, seen_ok)
                        break
                    if rc in (-signal.SIGINT, 1) and "KeyboardInterrupt" in text \
                            and _outside_exp(text) or rc == -signal.SIGINT and not text.strip():
                        # Python's own default handler: before exp.py's first line runs
                        # (interpreter start-up) or after main() returned; the shell shows 130.
                        report.figures["sigint: died of SIGINT outside exp"] += 1
                    elif rc != 130:
                        how = ("killed by SIGINT (the shell shows 130) with a traceback"
                               if rc == -signal.SIGINT else f"exit {rc}")
                        report.violation(phase, f"exit {rc}", f"{how} after SIGINT {delay:.3f} s "
                                         f"into attempt {attempt}; stderr: {text[-600:]}", repro)
                    elif "Traceback" in text:
                        report.violation(phase, "traceback", f"exit 130 but a traceback after "
                                         f"SIGINT {delay:.3f} s in: {text[-600:]}", repro)
                    j = read_raw(out / "grid.jsonl")
                    if j.torn:
                        report.violation(phase, "torn journal", f"{j.torn} unreadable lines after "
                                         "SIGINT (the journal must be whole)", repro)
                    report.figures["sigint: survived"] += 1
                else:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    report.figures["kill -9: survived"] += 1
                # kill -9: workers die with the driver (PR_SET_PDEATHSIG); SIGINT: stopped by it.
                left = wait_gone(tag, 3.0 if not sigint else 0.5)
                if left:
                    report.figures[f"{phase}: orphans"] += len(left)
                    report.violation(phase, "orphans", f"{len(left)} live processes of the "
                                     f"experiment after the driver exited: {left[:3]}", repro)
                    reap(tag)
                seen_ok |= set(read_raw(out / "grid.jsonl").keys("ok"))
                if interrupts >= target and attempt > 1:
                    pass  # still finish this experiment below
                continue
            # The driver finished on its own.
            if rc != 0:
                report.violation(phase, f"exit {rc}", f"resume ended with {rc}: "
                                 f"{err.read_text(errors='replace')[-600:]}", repro)
                left = wait_gone(tag, 3.0)
                reap(tag)
                break
            left = wait_gone(tag, 3.0)
            if left:
                report.violation(phase, "orphans", f"{left[:3]} alive after exit 0", repro)
                reap(tag)
            report.figures[f"{phase}: experiments completed"] += 1
            check_complete(report, phase, out, "grid", n_runs, salt, repro, seen_ok)
            break
        else:
            report.figures[f"{phase}: hangs"] += 1
            report.violation(phase, "never completes", "400 attempts without completion", repro)
        if report.quick:
            shutil.rmtree(d, ignore_errors=True)
    report.figures[f"{phase}: driver starts"] += attempts


def _outside_exp(stderr: str) -> bool:
    """A KeyboardInterrupt that came before exp.py could set its SIGINT handling.

    That is: no traceback at all, or one whose only exp.py frames are the few
    lines at its top that set the handling up (the interpreter is still
    starting: ``import signal`` itself loads enum).
    """
    lines = [int(n) for n in re.findall(r'File "[^"]*exp\.py", line (\d+)', stderr)]
    return all(n <= _prelude_end() for n in lines)


def _prelude_end() -> int:
    """The line of exp.py after which a Ctrl-C during start-up exits quietly."""
    text = (REPO / "exp.py").read_text().splitlines()
    return next((i for i, line in enumerate(text, 1)
                 if "signal.signal(signal.SIGINT, signal.SIG_DFL)" in line), 0)


# ─── phase: gopt kills ───────────────────────────────────────────────────────


def gopt_available() -> str | None:
    """None when ``exp gopt`` can run here, else why not."""
    if not (REPO / "exp_gopt.py").exists():
        return "exp_gopt.py is not in the repository yet"
    tracked = subprocess.run(["git", "log", "-1", "--format=%h", "--", "exp_gopt.py"], cwd=REPO,
                             capture_output=True, text=True)
    if tracked.returncode == 0 and not tracked.stdout.strip():
        return "exp_gopt.py is not committed yet (work in progress)"
    p = subprocess.run([PY, "-m", "exp", "gopt", "--help"], cwd=REPO, env=exp_env("probe"),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return f"python -m exp gopt --help exits {p.returncode}: {p.stderr.strip()[-200:]}"
    try:
        import skopt  # noqa: F401
    except ImportError:
        return "scikit-optimize is not installed"
    return None


def gopt_campaign(report: Report, work: Path, *, target: int, rng: random.Random,
                  n: int = 40) -> None:
    why = gopt_available()
    if why:
        report.notes.append(f"gopt kills skipped: {why}")
        log(f"gopt: skipped ({why})")
        return
    kills = experiments = 0
    while kills < target and experiments < target + 5:
        experiments += 1
        tag = f"{report.seed}-gopt-{experiments}"
        d = work / f"gopt-{experiments}"
        d.mkdir(parents=True)
        space = write_space(d / "g.toml", {
            "x": {"type": "range", "bounds": [-5.0, 5.0]},
            "salt": {"type": "value", "value": rng.randrange(10 ** 6)}})
        (d / "obj.py").write_text("import time\n\ndef run(x, salt, **kw):\n"
                                  "    time.sleep(0.01)\n    return (x - 1.0) ** 2\n")
        args = ["gopt", "-p", str(space), "-m", str(d / "obj.py"), "-n", str(n), "-w", "2",
                "--seed", str(rng.randrange(1000)), "--out", str(d / "out"), "--name", "g", "-q"]
        repro = (f"python stress/campaign.py --seed {report.seed} --only gopt  "
                 f"# experiment {experiments}: {cmdline(args)}")
        seen: set = set()
        for attempt in range(1, 200):
            p = subprocess.Popen([PY, "-m", "exp", *args], cwd=d, env=exp_env(tag),
                                 stdout=subprocess.DEVNULL, stderr=open(d / "stderr.txt", "ab"),
                                 start_new_session=True)
            try:
                rc = p.wait(rng.uniform(0.2, 6.0))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                kills += 1
                report.figures["gopt kill -9: survived"] += 1
                if wait_gone(tag, 3.0):
                    report.violation("gopt", "orphans", "workers alive after kill -9", repro)
                    reap(tag)
                seen |= {(r["id"], r["run"]) for r in read_raw(d / "out" / "g.jsonl").records}
                continue
            j = read_raw(d / "out" / "g.jsonl")
            keys = j.keys(None)
            points = Counter(json.dumps(r["params"], sort_keys=True) for r in j.records)
            if rc != 0:
                report.violation("gopt", f"exit {rc}", (d / "stderr.txt").read_text()[-600:], repro)
            if len(j.records) != n:
                report.violation("gopt", "evaluation count", f"{len(j.records)} evaluations, "
                                 f"want exactly {n}", repro)
            if any(c > 1 for c in keys.values()):
                report.violation("gopt", "duplicates", "an (id, run) journalled twice", repro)
                report.figures["gopt: duplicates"] += 1
            if any(c > 1 for c in points.values()):
                report.notes.append(f"gopt experiment {experiments}: a point was proposed twice")
            if seen - set(keys):
                report.violation("gopt", "lost results", f"{seen - set(keys)}", repro)
            check_gopt_state(report, d, args, repro)
            report.figures["gopt: experiments completed"] += 1
            break


def check_gopt_state(report: Report, d: Path, args: list[str], repro: str) -> None:
    """The optimiser after a resume must know exactly what one built from the journal knows.

    On a copy of the finished search, resume it in this process with 4 more
    evaluations (the journal replayed, then live asks and tells) and compare
    its state with ``exp_gopt.journal_state`` of the journal it leaves.
    """
    try:
        sys.path.insert(0, str(REPO))
        import exp_gopt
    except ImportError as e:
        report.notes.append(f"gopt state check skipped: cannot import exp_gopt ({e})")
        return
    copy = d / "state-check"
    shutil.copytree(d / "out", copy, ignore=shutil.ignore_patterns("*.logs"))
    n = int(args[args.index("-n") + 1])
    space, runnable = args[args.index("-p") + 1], args[args.index("-m") + 1]
    seed = int(args[args.index("--seed") + 1])
    result = exp_gopt.optimize(space, runnable, n=n + 4, workers=2, seed=seed, out=copy,
                               name="g", quiet=True)
    built = exp_gopt.journal_state(space, copy / "g.jsonl")
    report.figures["gopt: optimiser states compared"] += 1
    if result.optimizer_state != built or len(built["told"]) != n + 4:
        report.violation("gopt", "optimiser state", f"after resume {len(result.optimizer_state['told'])}"
                         f" told points, from the journal {len(built['told'])}; they differ", repro)


# ─── phase: worker faults ────────────────────────────────────────────────────


def fault_plan(rng: random.Random, n: int, quick: bool) -> list[str]:
    counts = ({"raise": 4, "exit": 3, "sigkill": 3, "segfault": 3, "loop": 2, "memhog": 2,
               "flood": 2, "fork": 2, "fork_exit": 2} if quick else
              {"raise": 25, "exit": 20, "sigkill": 20, "segfault": 20, "loop": 6, "memhog": 6,
               "flood": 5, "fork": 5, "fork_exit": 5})
    kinds = [k for k, c in counts.items() for _ in range(c)]
    kinds += ["ok"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def faults_campaign(report: Report, work: Path, *, rng: random.Random) -> None:
    n = 120 if report.quick else 500
    linger = 3 if report.quick else 8
    d = work / "faults"
    out = d / "out"
    d.mkdir(parents=True)
    kinds = fault_plan(rng, n, report.quick)
    plan = d / "plan.json"
    plan.write_text(json.dumps({"kinds": kinds, "memhog_mb": 96, "flood_mb": 10,
                                "fork_linger_s": linger}))
    space = write_space(d / "faults.toml", {
        "i": {"type": "range", "bounds": [0, n], "dtype": "int"},
        "plan": {"type": "value", "value": str(plan)}})
    args = ["run", "-p", str(space), "-m", str(RUNNABLES / "faults.py"), "-w", "2",
            "--timeout", "1", "--out", str(out), "-q"]
    repro = f"python stress/campaign.py --seed {report.seed} --only faults  # {cmdline(args)}"
    tag = f"{report.seed}-faults"
    for k in kinds:
        if k != "ok":
            report.figures[f"faults injected: {k}"] += 1
    budget = 60 + 2 * kinds.count("loop") + linger * (kinds.count("fork") + kinds.count("fork_exit"))
    t0 = time.monotonic()
    with open(d / "stderr.txt", "wb") as ferr:
        p = subprocess.Popen([PY, "-m", "exp", *args], cwd=d, env=exp_env(tag),
                             stdout=subprocess.DEVNULL, stderr=ferr, start_new_session=True)
    samples = []
    while p.poll() is None and time.monotonic() - t0 < budget:
        kib = rss_kib(p.pid)
        if kib:
            samples.append(kib)
        time.sleep(0.1)
    if p.poll() is None:
        report.figures["faults: hangs"] += 1
        done = len(read_raw(out / "faults.jsonl").records)
        report.violation("faults", "hang", f"not finished after {budget} s ({done}/{n} runs "
                         "journalled)", repro)
        os.killpg(p.pid, signal.SIGKILL)
    rc = p.wait()
    report.seconds["faults experiment"] = round(time.monotonic() - t0, 1)
    if rc != 1:
        report.violation("faults", f"exit {rc}", f"want 1 (some runs not ok): "
                         f"{(d / 'stderr.txt').read_text(errors='replace')[-600:]}", repro)
    if samples:
        third = max(1, len(samples) // 3)
        early, late = max(samples[:third]), max(samples[-third:])
        report.figures["faults: driver RSS early/late peak (MiB)"] = \
            f"{early / 1024:.0f} / {late / 1024:.0f}"
        if late - early > 20 * 1024:
            report.violation("faults", "driver memory grows", f"RSS peak {early} KiB in the first "
                             f"third, {late} KiB in the last", repro)
    j = read_raw(out / "faults.jsonl")
    by_key = {}
    for r in j.records:
        if (r["id"], r["run"]) in by_key:
            report.figures["faults: duplicates"] += 1
        by_key[(r["id"], r["run"])] = r
    wrong = Counter()
    for i, kind in enumerate(kinds):
        r = by_key.get((i, 1))
        allowed = FAULTS.get(kind, {"ok"})
        if r is None:
            report.figures["faults: results lost"] += 1
            wrong[(kind, "missing")] += 1
        elif r["status"] not in allowed:
            wrong[(kind, r["status"])] += 1
            if wrong[(kind, r["status"])] == 1:
                report.violation("faults", f"{kind} -> {r['status']}", f"run {i} ({kind}) ended "
                                 f"{r['status']!r}, want {sorted(allowed)}: "
                                 f"{(r.get('error') or '')[-300:]}", repro)
    report.figures["faults: runs with the right status"] = \
        f"{n - sum(wrong.values())}/{n}"
    ok_ids = {i for (i, _), r in by_key.items() if r["status"] == "ok"}
    want_ok = {i for i, k in enumerate(kinds) if "ok" in FAULTS.get(k, {"ok"})}
    if ok_ids != want_ok:
        report.violation("faults", "ok set", f"ok runs differ from the runs without a fault: "
                         f"extra {sorted(ok_ids - want_ok)[:10]}, missing "
                         f"{sorted(want_ok - ok_ids)[:10]}", repro)
    for i, kind in enumerate(kinds):
        if kind == "flood":
            log_file = out / "faults.logs" / f"{i}-1.log"
            size = log_file.stat().st_size if log_file.exists() else 0
            if size < 10 * 2**20:
                report.violation("faults", "flood log", f"run {i}'s log has {size} bytes, "
                                 "want its 10 MiB of stdout", repro)
    tmps = temp_files(out)
    if tmps:
        report.violation("faults", "temp files left", f"{tmps[:5]}", repro)
    # Grandchildren of the fork runs are the user's, not exp's: wait them out, then look.
    left = wait_gone(tag, linger + 3.0)
    if left:
        report.figures["faults: orphans"] += len(left)
        report.violation("faults", "orphans", f"{left[:3]}", repro)
        reap(tag)


# ─── phase: bad input ────────────────────────────────────────────────────────


def run_main(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """exp.main(argv) in this process: (exit code, stdout, stderr, traceback if it raised)."""
    import exp
    out, err = io.StringIO(), io.StringIO()
    tb = None
    rc = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = exp.main(argv)
        except BaseException:  # noqa: BLE001 - that is the finding
            tb = traceback.format_exc()
    return rc, out.getvalue(), err.getvalue(), tb


def judge(rc: int | None, err: str, tb: str | None, name: str, *,
          ok_codes: tuple = (0,)) -> str | None:
    """None when the outcome is acceptable, else what is wrong (a short signature)."""
    if tb is not None:
        last = tb.strip().splitlines()[-1]
        return f"raised {last.split(':')[0]}"
    if "Traceback" in err:
        return "traceback printed"
    if rc in ok_codes:
        return None
    if rc != 2:
        return f"exit {rc}"
    lines = [line for line in err.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage: "):
        # argparse's own usage error: the usage block, then "exp CMD: error: ..."
        errors = [line for line in lines if re.match(r"exp( \w+)?: error: ", line)]
        if len(errors) != 1 or lines[-1] != errors[0]:
            return "usage error is not usage plus one error line"
        return None
    errors = [line for line in lines if line.startswith("exp: error: ")]
    if len(errors) != 1 or not all(line.startswith(("exp: warning: ", "exp: error: "))
                                   for line in lines):
        return "not exactly one error line"
    if name and name not in errors[0]:
        return "error does not name the file"
    return None


class Fuzz:
    """Collects cases and findings; a finding keeps the first case that showed it."""

    def __init__(self, report: Report, work: Path, label: str):
        self.report, self.work, self.label = report, work, label
        self.cases = 0
        self.findings: dict[str, tuple[str, str]] = {}

    def record(self, problem: str | None, case: str, detail: str = "") -> None:
        self.cases += 1
        if problem and problem not in self.findings:
            self.findings[problem] = (case, detail)
            self.report.violation("fuzz", f"{self.label}: {problem}",
                                  f"{detail[-500:]}", case[:1500])

    def close(self) -> None:
        self.report.figures[f"fuzz cases: {self.label}"] += self.cases


_TEXT = ("abcxyz_-.0123456789 \"'[]{}=,#\n\t\\ébß🙂\u202e\x00\x7f"
         "typevaluelistrangerandomboundsstepdtypepriorpersistnintfloattruefalseinfnan")


def _toml_strategies():
    from hypothesis import strategies as st
    import exp
    scalars = st.one_of(
        st.booleans(), st.integers(min_value=-2**63, max_value=2**63 - 1),
        st.sampled_from([0, 1, -1, 10**18, -10**18, 2**63 - 1, -2**63]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([1e308, -1e308, 5e-324, 1e-300, 0.1, -0.0]),
        st.text(alphabet=_TEXT, max_size=12).filter(lambda s: "\x00" not in s),
        st.sampled_from(list(_KEYWORDS)))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(alphabet=_TEXT, min_size=1, max_size=6)
                        .filter(lambda s: "\x00" not in s), inner, max_size=3)), max_leaves=12)
    keys = st.one_of(st.sampled_from(["type", "value", "bounds", "step", "dtype", "prior", "n",
                                      "persist", "bound", "Type"]),
                     st.text(alphabet=_TEXT, min_size=1, max_size=8).filter(lambda s: "\x00" not in s))
    spec = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["value", "list", "range", "random"]), scalars)},
        optional={"value": values, "bounds": st.one_of(
            st.lists(st.one_of(st.integers(-10**20, 10**20), st.floats()), min_size=0, max_size=3),
            values),
            "step": scalars, "dtype": st.one_of(st.sampled_from(["int", "float", "str"]), scalars),
            "prior": st.one_of(st.sampled_from(["uniform", "log-uniform", "normal"]), scalars),
            "n": scalars, "persist": scalars})
    table = st.one_of(spec, st.dictionaries(keys, values, max_size=4), values)
    names = st.one_of(st.sampled_from(["x", "lr", "id", "run", "gpu", "worker", "a.b", ""]),
                      st.text(alphabet=_TEXT, min_size=0, max_size=10)
                      .filter(lambda s: "\x00" not in s))
    document = st.dictionaries(names, table, max_size=4)

    def render(doc: dict) -> str:
        parts = []
        for name, tbl in doc.items():
            key = exp._toml_value(name) if name == "" else exp._toml_key(name)
            if isinstance(tbl, dict):
                parts.append(f"[{key}]")
                parts += [f"{exp._toml_key(k)} = {exp._toml_value(v)}" for k, v in tbl.items()]
            else:
                parts.insert(0, f"{key} = {exp._toml_value(tbl)}")  # top-level keys first
        return "\n".join(parts) + "\n"

    return document.map(render)


_KEYWORDS = ("value", "list", "range", "random", "int", "float", "uniform", "log-uniform")

VALID = [
    '[x]\ntype = "range"\nbounds = [-10, 10]\n',
    '[x]\ntype = "range"\nbounds = [0, 1]\nstep = 0.1\ndtype = "float"\n'
    '[y]\ntype = "list"\nvalue = ["relu", "tanh"]\n',
    '[lr]\ntype = "random"\nbounds = [1e-4, 1e-1]\nprior = "log-uniform"\nn = 4\n'
    '[batch]\ntype = "value"\nvalue = 64\n',
    '[a]\ntype = "value"\nvalue = {k = [1, 2], s = "t"}\n[b]\ntype = "list"\n'
    'value = [true, false]\n[c]\ntype = "random"\ndtype = "int"\nbounds = [1, 9]\npersist = true\n',
]

WRONG = ["s", "", 1, -1, 0, 1.5, -2.5, 1e308, -1e308, float("inf"), float("-inf"), float("nan"),
         True, False, [], [1], [1, 2, 3], [2, 1], [1, 1], [0, 10**30], [-10**18, 10**18],
         [1e-300, 1e300], ["a", "b"], [1, "a"], [[1], [2]], {}, {"a": 1}, 10**18, -10**18,
         2**63 - 1, "int", "float", "log-uniform", "uniform", [0.0, 1e-320], [1, 2.5]]


def _toml_lit(v) -> str:
    import exp
    return exp._toml_value(v)


def fuzz_param_files(report: Report, work: Path, rng: random.Random, n_random: int,
                     n_mutated: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    import exp
    fz = Fuzz(report, work, "param files")
    d = work / "fuzz-params"
    d.mkdir(parents=True, exist_ok=True)
    runnable = str(RUNNABLES / "anyargs.py")
    counter = iter(range(10 ** 9))

    def one(text: str | bytes, how: str) -> None:
        path = d / f"case-{next(counter) % 50}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        case = (f"# {how}; write this file as {path.name} and run: PYTHONPATH=. python -m exp run "
                f"-p {path.name} -m stress/runnables/anyargs.py --dry-run\n{text!r}")
        # The loader alone, then the command line when the grid is small enough to list.
        try:
            space = exp.ParamSpace(path, seed=1)
            size = space.size
            counts = [exp._count(s) for s in space.params.values()]
        except exp.ExpError as e:
            problem = None if str(e).startswith(str(path)) else "error does not name the file"
            if problem is None and "\n" in str(e):
                problem = "error spans several lines"
            fz.record(problem, case, str(e))
            return
        except BaseException as e:  # noqa: BLE001
            fz.record(f"ParamSpace raised {type(e).__name__}", case, traceback.format_exc())
            return
        if size > 2000 or max(counts, default=0) > 2000:
            report.figures["fuzz: huge spaces (loaded, not listed)"] += 1
            fz.record(None, case)
            return
        rc, _, err, tb = run_main(["run", "-p", str(path), "-m", runnable, "--dry-run"])
        problem = judge(rc, err, tb, str(path))
        if problem is None and rc == 2 and err.count("\n") > 1:
            problem = "error spans several lines"
        fz.record(problem, case, tb or err)

    # 1. random TOML documents
    docs = _toml_strategies()

    @settings(max_examples=n_random, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(docs)
    def random_documents(text):
        one(text, "random document")

    hseed(report.seed)(random_documents)()

    # 2. mutated valid files
    alphabet = list(_TEXT) + ["[", "]", "=", "\n[x]\n", '"', "1e999", "-", "999999999999999999999"]
    for k in range(n_mutated):
        text = rng.choice(VALID)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(text) + 1)
            j = min(len(text), i + rng.randint(0, 6))
            op = rng.randrange(5)
            if op == 0:
                text = text[:i] + text[j:]
            elif op == 1:
                text = text[:i] + rng.choice(alphabet) + text[i:]
            elif op == 2:
                text = text[:i] + text[i:j] * 2 + text[j:]
            elif op == 3:
                lines = text.split("\n")
                rng.shuffle(lines)
                text = "\n".join(lines)
            else:
                text = text[:i]
        one(text, f"mutated valid file #{k}")

    # 3. wrong types for every key of every type
    base = {"value": {"value": 1}, "list": {"value": [1, 2]},
            "range": {"bounds": [0, 3], "step": 1, "dtype": "int"},
            "random": {"bounds": [1, 2], "prior": "uniform", "dtype": "float", "n": 2,
                       "persist": False}}
    keys = ["type", "value", "bounds", "step", "dtype", "prior", "n", "persist"]
    for kind, fields in base.items():
        for key in keys:
            for wrong in WRONG:
                spec = {"type": kind, **fields, key: wrong}
                body = "\n".join(f"{k} = {_toml_lit(v)}" for k, v in spec.items())
                one(f"[p]\n{body}\n", f"type {kind}, {key} = {wrong!r}")
    # plus a date, which TOML has and JSON has not
    for kind in base:
        one(f'[p]\ntype = "{kind}"\nvalue = 1979-05-27T07:32:00Z\nbounds = [1979-05-27, 2]\n',
            f"{kind} with dates")

    # 4. names: unicode, control characters, reserved, dotted, empty, long
    for name in ["é", "日本語", "🙂", "a b", "a\nb", "a\tb", "\u202e", "a\u0000b", "", "id", "run",
                 "x" * 5000, "[x]", "a.b", '"q"', "\\", "\x1b[31mred"]:
        key = json.dumps(name, ensure_ascii=False).replace("\x7f", "\\u007f")
        one(f'[{key}]\ntype = "list"\nvalue = [1, 2]\n', f"name {name!r}")
        one(f'[{key}]\ntype = "nonsense"\n', f"bad type, name {name!r}")

    # 5. deep nesting: arrays, inline tables, dotted tables
    for depth in (10, 100, 300, 900, 2000, 10000):
        one('[p]\ntype = "value"\nvalue = ' + "[" * depth + "1" + "]" * depth + "\n",
            f"array nested {depth} deep")
        one('[p]\ntype = "value"\nvalue = ' + "{a = " * depth + "1" + "}" * depth + "\n",
            f"inline table nested {depth} deep")
        one("[" + ".".join(["t"] * depth) + "]\ntype = 1\n", f"table path {depth} deep")

    # 6. huge and negative numbers
    for bounds, step in [([0, 10**18], 1), ([-10**18, 10**18], 10**17), ([0, 1], 1e-12),
                         ([-1e308, 1e308], 1e300), ([0, 1], 5e-324), ([-5, -1], 1),
                         ([-(2**63), 2**63 - 1], 2**62)]:
        one(f"[p]\ntype = \"range\"\nbounds = {_toml_lit(bounds)}\nstep = {_toml_lit(step)}\n",
            f"range {bounds} step {step}")
    for n in (10**6, 10**12, 2**63 - 1, -1, 0):
        one(f'[p]\ntype = "random"\nn = {n}\n', f"random n = {n}")

    # 7. not text
    for blob in (b"\xff\xfe\x00", b"\x00" * 10, os.urandom(64), b"[x]\ntype = \"value\"\nvalue = \"\xe9\"\n"):
        one(blob, f"bytes {blob[:12]!r}")
    fz.close()


def huge_space_sample(report: Report, work: Path) -> None:
    """Huge spaces through a real, memory-capped process: a clear error, or a lazy start."""
    d = work / "huge"
    d.mkdir(parents=True, exist_ok=True)
    cases = {"range-1e12": '[p]\ntype = "range"\nbounds = [0, 1]\nstep = 1e-12\n',
             "random-n-1e12": '[p]\ntype = "random"\nn = 1000000000000\n'}
    for label, text in cases.items():
        f = d / f"{label}.toml"
        f.write_text(text)
        for extra in (["--dry-run"], ["-w", "1", "--out", str(d / "out"), "-q"]):
            args = ["run", "-p", str(f), "-m", str(RUNNABLES / "anyargs.py"), *extra]
            report.figures["fuzz cases: huge spaces (capped process)"] += 1
            rc, err, took = capped(args, d, f"{report.seed}-huge")
            started = (d / "out" / f"{label}.jsonl").exists() and read_raw(
                d / "out" / f"{label}.jsonl").records
            if rc in (-signal.SIGKILL, None) and not started:
                report.violation("fuzz", "huge space: no error, no run, 10 s",
                                 f"{label} {' '.join(extra)}: neither refused nor started within "
                                 "10 s (building every value in memory)",
                                 f"{text!r}  then  {cmdline(args)}")
                continue
            # Acceptable: a one-line error, or (not --dry-run) runs starting lazily and
            # being stopped by our 10 s cap; unacceptable: a MemoryError or a hang in setup.
            if "Traceback" in err or "MemoryError" in err:
                report.violation("fuzz", "huge space: unbounded memory",
                                 f"{label} {' '.join(extra)}: rc {rc} after {took:.1f} s: "
                                 f"{err.strip().splitlines()[-1] if err.strip() else ''}",
                                 f"{text!r}  then  {cmdline(args)}")


def capped(args: list[str], cwd: Path, tag: str, *, mem: int = 1 << 30,
           timeout: float = 10.0) -> tuple[int | None, str, float]:
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    t0 = time.monotonic()
    p = subprocess.Popen([PY, "-m", "exp", *args], cwd=cwd, env=exp_env(tag),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    reap(tag)
    return p.returncode, err.decode(errors="replace"), time.monotonic() - t0


RUNNABLE_CASES = {
    # label: (file name, source or None for "no such file", spec suffix, param file)
    "missing file": ("nope.py", None, "", None),
    "a directory": ("adir", "DIR", "", None),
    "syntax error": ("syn.py", "def run(x:\n    return x\n", "", None),
    "no function": ("nofunc.py", "def other(**k):\n    return 0\n", "", None),
    "function named but absent": ("named.py", "def run(**k):\n    return 0\n", ":train", None),
    "bad function name": ("badname.py", "def run(**k):\n    return 0\n", ":1x", None),
    "not callable": ("notcall.py", "run = 3\n", "", None),
    "async": ("asy.py", "async def run(**k):\n    return 0\n", "", None),
    "missing parameter": ("sig.py", "def run(y):\n    return y\n", "", None),
    "required extra": ("req.py", "def run(x, z):\n    return x\n", "", None),
    "positional only": ("posonly.py", "def run(x, /):\n    return x\n", "", None),
    "raises on import": ("boom.py", "raise RuntimeError('boom at import')\ndef run(**k):\n"
                         "    return 0\n", "", None),
    "exits on import": ("sysexit.py", "import sys\nsys.exit(4)\n", "", None),
    "os._exit on import": ("osexit.py", "import os\nos._exit(4)\n", "", None),
    "imports a missing module": ("imp.py", "import no_such_module_xyz\ndef run(**k):\n"
                                 "    return 0\n", "", None),
    "null bytes": ("nul.py", "def run(**k):\n    return 0\n\0\n", "", None),
    "not UTF-8": ("latin.py", b"# \xe9\xff\ndef run(**k):\n    return 0\n", "", None),
    "module missing": (None, None, "no_such_pkg_xyz.mod:run", None),
    "module bad name": (None, None, "a-b.c:run", None),
    "empty spec": (None, None, "", None),
    "lambda (checked in workers)": ("lam.py", "run = lambda y: y\n", "", None),
}


def fuzz_runnables(report: Report, work: Path) -> None:
    fz = Fuzz(report, work, "runnable specs")
    d = work / "fuzz-runnables"
    d.mkdir(parents=True, exist_ok=True)
    space = write_space(d / "s.toml", {"x": {"type": "list", "value": [1, 2]}})
    for label, (fname, source, suffix, _) in RUNNABLE_CASES.items():
        if fname is None:
            spec, named = suffix, suffix.split(":")[0]
        else:
            path = d / fname
            if source == "DIR":
                path.mkdir(exist_ok=True)
            elif source is not None:
                path.write_bytes(source if isinstance(source, bytes) else source.encode())
            spec, named = str(path) + suffix, fname
        args = ["run", "-p", str(space), "-m", spec, "-w", "1", "--out", str(d / "out"),
                "--name", f"r{abs(hash(label)) % 10**6}", "-q"]
        # A real process (workers are involved for some of these); a sample also in-process.
        p = subprocess.run([PY, "-m", "exp", *args], cwd=d, env=exp_env(f"{report.seed}-rn"),
                           capture_output=True, text=True, timeout=60)
        problem = judge(p.returncode, p.stderr, None, named)
        fz.record(problem, f"# runnable: {label}\n{cmdline(args)}", p.stderr)
        reap(f"{report.seed}-rn")
    fz.close()


def fuzz_journals(report: Report, work: Path, rng: random.Random) -> None:
    """Journals: truncated, garbage, another experiment's, wrongly typed: resume or one error."""
    fz = Fuzz(report, work, "journals")
    d = work / "fuzz-journals"
    d.mkdir(parents=True, exist_ok=True)
    runnable = RUNNABLES / "short.py"
    space = grid_space(d / "j.toml", 6, 7)
    other = grid_space(d / "other.toml", 5, 7)
    base_out = d / "base"

    def argv(out, name="j", space_file=space):
        return ["run", "-p", str(space_file), "-m", str(runnable), "-w", "2", "--out", str(out),
                "--name", name, "-q"]

    p = subprocess.run([PY, "-m", "exp", *argv(base_out)], cwd=d, env=exp_env("jbase"),
                       capture_output=True, text=True, timeout=120)
    good = (base_out / "j.jsonl").read_bytes()
    header, *lines = good.split(b"\n")
    hdr = json.loads(header)
    rec = json.loads(lines[0])

    keep_every = 3 if report.quick else 1  # quick: every third variant (the rest seeded)
    offset = rng.randrange(keep_every)
    index = iter(range(10 ** 6))

    def variant(label: str, content: bytes | None, *, expect_ok: bool | None = None,
                directory: bool = False) -> None:
        if (next(index) + offset) % keep_every:
            return
        out = d / f"v{fz.cases}"
        out.mkdir()
        path = out / "j.jsonl"
        if directory:
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        args = argv(out)
        rc, _, err, tb = run_main(args)
        problem = judge(rc, err, tb, str(path), ok_codes=(0,))
        if problem is None and rc == 0:
            final = read_raw(path)
            c = final.keys("ok")
            if not {(i, 1) for i in range(6)} <= set(c):
                problem = "resumed journal lacks runs"
            # Resuming a second time must be possible and run nothing new.
            rc2, _, err2, tb2 = run_main(args)
            if problem is None and (rc2 != 0 or tb2):
                problem = f"second resume fails (exit {rc2})"
                err = err2 or tb2 or ""
            rc3, _, err3, tb3 = run_main(["results", str(path)])
            if problem is None and (rc3 != 0 or tb3):
                problem = f"exp results fails (exit {rc3})"
                err = err3 or tb3 or ""
        if expect_ok and problem is None and rc != 0:
            problem = "refused a journal it should resume"
        fz.record(problem, f"# journal: {label}\n# put at OUT/j.jsonl then: {cmdline(args)}\n"
                  f"{(content or b'')[:600]!r}", tb or err)

    for cut in sorted(rng.sample(range(1, len(good)), min(12, len(good) - 1))):
        variant(f"truncated at byte {cut}", good[:cut], expect_ok=True)
    garbage = [b"garbage", b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"id": 1}', b"\x00" * 20,
               b'{"id": 0, "run": 1, "status": "ok"}']
    for g in garbage:
        body = lines[:]
        body.insert(rng.randrange(len(body)), g)
        variant(f"garbage line {g!r}", b"\n".join([header, *body]), expect_ok=True)
    variant("empty file", b"", expect_ok=True)
    variant("only garbage, no header", b"garbage\nmore garbage\n", expect_ok=True)
    variant("binary noise", os.urandom(256))
    variant("a directory", None, directory=True)
    o_out = d / "oth"
    subprocess.run([PY, "-m", "exp", *argv(o_out, "j", other)], cwd=d, env=exp_env("joth"),
                   capture_output=True, timeout=120)
    variant("another experiment's journal", (o_out / "j.jsonl").read_bytes())
    for key, wrong in [("space", [1]), ("space", "x"), ("space", None), ("space", {"i": 1}),
                       ("command", 3), ("runnable", ["x"]), ("seed", "s"), ("runs", None),
                       ("kind", "header")]:
        h = dict(hdr, **{key: wrong})
        variant(f"header {key} = {wrong!r}", b"\n".join([_json(h), *lines]))
    for key, wrong in [("id", [1]), ("id", "0"), ("id", None), ("id", 10**6), ("id", -1),
                       ("run", {}), ("run", 0), ("run", 2.5), ("params", None), ("params", 3),
                       ("result", {"a": [1]}), ("status", "ok ")]:
        r = dict(rec, **{key: wrong})
        variant(f"record {key} = {wrong!r}", b"\n".join([header, _json(r), *lines[1:]]))
    variant("gopt header", b"\n".join([_json(dict(hdr, command="gopt")), *lines]))
    variant("two headers", b"\n".join([header, header, *lines]), expect_ok=True)
    fz.close()


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def fuzz_cli(report: Report, work: Path, n_cases: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    fz = Fuzz(report, work, "CLI flags")
    d = work / "fuzz-cli"
    d.mkdir(parents=True, exist_ok=True)
    space = write_space(d / "c.toml", {"x": {"type": "list", "value": [1, 2]}})
    runnable = str(RUNNABLES / "anyargs.py")
    afile = d / "afile"
    afile.write_text("not a directory")
    values = {
        "-w": ["0", "-1", "1", "2", "x", "", "1.5", str(10**20)],
        "--workers": ["0", "2", "-3"],
        "-r": ["0", "-1", "1", "2", "x", "1e3"],
        "-c": ["0", "1", "2", "-1", "99", "x", str(10**30)],
        "--timeout": ["0", "-1", "nan", "inf", "-inf", "1e-9", "x", "1e308", "0.5"],
        "--gpus": ["x", "0", "-1", "all", ",", "0,0", "99", "1,2,3", str(10**20)],
        "--per-gpu": ["0", "-1", "2", "x"],
        "--gpus-per-run": ["0", "2", "x"],
        "--name": ["", ".", "..", "../x", "a/b", ".hidden", "ok", "é🙂", "x" * 300, "-", " "],
        "--out": [str(d / "o"), str(afile), str(afile / "sub"), "/proc/1/nope", str(d / "é🙂"),
                  "/dev/null"],
        "--seed": ["-1", "0", str(2**70), "x", "1.5"],
        "-p": [str(space), str(d / "missing.toml"), str(d), str(afile), "/dev/null"],
        "-m": [runnable, str(d / "missing.py"), "x:y:z", ":", "a.b.c"],
    }
    flags = ["--fresh", "--retry-failed", "--cancel", "-q", "--dry-run", "--gpu", "--bogus",
             "--n", "--name=x", "-wx", "--time", "--plot"]
    cmds = st.sampled_from(["run", "run", "run", "results", "gopt", "nope", "", "--version"])
    opt = st.one_of(st.sampled_from(list(values)).flatmap(
        lambda k: st.sampled_from(values[k]).map(lambda v: [k, v])),
        st.sampled_from(flags).map(lambda f: [f]))

    @settings(max_examples=n_cases, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cmds, st.lists(opt, max_size=5), st.booleans())
    def flags_case(cmd, opts, base):
        argv = [cmd] if cmd else []
        if base and cmd == "run":
            argv += ["-p", str(space), "-m", runnable, "--dry-run"]
        if cmd == "results":
            argv += [str(d / "o" / "c.jsonl")]
        for o in opts:
            argv += o
        if cmd == "run" and "--dry-run" not in argv:
            argv += ["--out", str(d / "o"), "-w", "1"] if "--out" not in argv else []
            # real runs only for small inputs: never a huge worker count
            if "-w" in argv and argv[argv.index("-w") + 1] == str(10**20):
                argv += ["--dry-run"]
        rc, _, err, tb = run_main(argv)
        problem = judge(rc, err, tb, "", ok_codes=(0, 1))
        if problem is None and rc == 2 and not err.strip():
            problem = "exit 2 without a message"
        fz.record(problem, "PYTHONPATH=. python -m exp " + " ".join(map(repr, argv)), tb or err)

    hseed(report.seed)(flags_case)()
    # Every value of every flag once, alone, against a valid command (dry run where the
    # flag allows; quick: the dry-run ones only).
    needs_run = {"--timeout", "--name", "--out"}
    for flag, vals in values.items():
        if flag in ("-p", "-m"):
            continue
        for v in vals:
            dry = flag not in needs_run
            if report.quick and not dry:
                continue
            argv = ["run", "-p", str(space), "-m", runnable, flag, v, "-q"]
            argv += ["--dry-run"] if dry else (["--out", str(d / "o1")] if flag != "--out" else [])
            argv += ["-w", "1"] if flag not in ("-w", "--workers") and not dry else []
            if flag == "--name":
                argv += ["--fresh"]
            rc, _, err, tb = run_main(argv)
            problem = judge(rc, err, tb, "", ok_codes=(0, 1))
            fz.record(problem, "PYTHONPATH=. python -m exp " + " ".join(map(repr, argv)), tb or err)
    fz.close()


def fuzz_subprocess_sample(report: Report, work: Path, rng: random.Random, k: int) -> None:
    """The in-process verdicts hold for real processes: a sample of param-file cases."""
    d = work / "fuzz-params"
    files = sorted(d.glob("case-*.toml"))
    fz = Fuzz(report, work, "param files (real processes)")
    for f in rng.sample(files, min(k, len(files))):
        args = ["run", "-p", str(f), "-m", str(RUNNABLES / "anyargs.py"), "--dry-run"]
        rc, err, took = capped(args, d, f"{report.seed}-fsub", timeout=20)
        problem = judge(rc, err, None, str(f))
        fz.record(problem, f"{cmdline(args)}\n{f.read_bytes()[:600]!r}", err)
    fz.close()


# ─── phase: disk full, read-only ─────────────────────────────────────────────


@contextlib.contextmanager
def small_fs(where: Path, size: str, *, ro: bool = False):
    """A tmpfs of ``size`` at ``where``; yields False where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def disk_campaign(report: Report, work: Path) -> None:
    d = work / "disk"
    d.mkdir(parents=True, exist_ok=True)
    marker_dir = d / "markers"
    marker_dir.mkdir()
    (d / "mark.py").write_text(
        "import os, time\n\ndef run(i, salt, **kw):\n"
        f"    open(os.path.join({str(marker_dir)!r}, str(i)), 'w').close()\n"
        "    time.sleep(0.005)\n    return i * 1000 + salt\n")
    space = grid_space(d / "grid.toml", 300, 5)

    def args(out):
        return ["run", "-p", str(space), "-m", str(d / "mark.py"), "-w", "2", "--out", str(out),
                "-q"]

    def refuse(label, out, mounted_how):
        for m in marker_dir.iterdir():
            m.unlink()
        a = args(out)
        p = subprocess.run([PY, "-m", "exp", *a], cwd=d, env=exp_env(f"{report.seed}-disk"),
                           capture_output=True, text=True, timeout=120)
        computed = len(list(marker_dir.iterdir()))
        report.figures["disk: scenarios"] += 1
        problem = judge(p.returncode, p.stderr, None, "", ok_codes=())
        if problem:
            report.violation("disk", f"{label}: {problem}", p.stderr[-800:],
                             f"{mounted_how}; {cmdline(a)}")
        if computed:
            report.violation("disk", f"{label}: computed results it cannot save",
                             f"{computed} runs ran although the output cannot be written",
                             f"{mounted_how}; {cmdline(a)}")
        reap(f"{report.seed}-disk")

    ro = d / "ro"
    with small_fs(ro, "1m", ro=True) as mounted:
        if not mounted:
            report.notes.append("disk: mounting a tmpfs is not allowed here; read-only and full "
                                "disk scenarios skipped, only RLIMIT_FSIZE was used")
        else:
            how = f"mount -t tmpfs -o size=1m,ro tmpfs {ro}"
            refuse("read-only out dir", ro, how)
            refuse("read-only out dir, missing subdir", ro / "sub", how)
    full = d / "full"
    with small_fs(full, "1m") as mounted:
        if mounted:
            fill(full)
            refuse("full disk", full, f"mount -t tmpfs -o size=1m tmpfs {full}; fill it")
    mid = d / "mid"
    with small_fs(mid, "1m") as mounted:
        if mounted:
            fills_midway(report, d, mid, args, f"mount -t tmpfs -o size=1m tmpfs {mid}; "
                         "leave about 40 KiB free")
    fsize_midway(report, d, args)


def fill(where: Path, leave: int = 0) -> Path:
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
    if leave:
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - leave))
    return filler


def fills_midway(report: Report, d: Path, mid: Path, args, how: str) -> None:
    out = mid / "out"
    out.mkdir()
    filler = fill(mid, leave=40 * 1024)
    a = args(out)
    tag = f"{report.seed}-diskmid"
    report.figures["disk: scenarios"] += 1
    p = subprocess.run([PY, "-m", "exp", *a], cwd=d, env=exp_env(tag), capture_output=True,
                       text=True, timeout=120)
    left = wait_gone(tag, 3.0)
    saved = read_raw(out / "grid.jsonl")
    report.figures["disk: runs saved before the disk filled"] = len(saved.keys("ok"))
    problem = judge(p.returncode, p.stderr, None, "", ok_codes=())
    if problem:
        report.violation("disk", f"disk fills mid-run: {problem}", p.stderr[-1500:],
                         f"{how}; {cmdline(a)}")
    if left:
        report.violation("disk", "disk fills mid-run: orphans", str(left[:3]), cmdline(a))
        reap(tag)
    seen = set(saved.keys("ok"))
    filler.unlink()
    p2 = subprocess.run([PY, "-m", "exp", *a], cwd=d, env=exp_env(tag), capture_output=True,
                        text=True, timeout=120)
    if p2.returncode != 0:
        report.violation("disk", "resume after freeing space fails", p2.stderr[-800:],
                         f"{how}; {cmdline(a)}; rm filler; {cmdline(a)}")
    else:
        check_complete(report, "disk", out, "grid", 300, 5, f"{how}; {cmdline(a)}", seen)


def fsize_midway(report: Report, d: Path, args) -> None:
    """The same with RLIMIT_FSIZE (works without mount rights): files past 30 KiB cannot grow."""
    out = d / "fsize"
    a = args(out)
    tag = f"{report.seed}-fsize"
    report.figures["disk: scenarios"] += 1

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (30 * 1024, resource.RLIM_INFINITY))

    p = subprocess.run([PY, "-m", "exp", *a], cwd=d, env=exp_env(tag), capture_output=True,
                       text=True, timeout=120, preexec_fn=limit)
    repro = f"ulimit -f 30 (and SIGXFSZ ignored); {cmdline(a)}"
    left = wait_gone(tag, 3.0)
    problem = judge(p.returncode, p.stderr, None, "", ok_codes=())
    if problem:
        report.violation("disk", f"RLIMIT_FSIZE mid-run: {problem}", p.stderr[-1500:], repro)
    if left:
        report.violation("disk", "RLIMIT_FSIZE mid-run: orphans", str(left[:3]), repro)
        reap(tag)
    seen = set(read_raw(out / "grid.jsonl").keys("ok"))
    p2 = subprocess.run([PY, "-m", "exp", *a], cwd=d, env=exp_env(tag), capture_output=True,
                        text=True, timeout=120)
    if p2.returncode != 0:
        report.violation("disk", "resume after RLIMIT_FSIZE fails", p2.stderr[-800:], repro)
    else:
        check_complete(report, "disk", out, "grid", 300, 5, repro, seen)


# ─── helpers for the phases below ────────────────────────────────────────────


def live_marked(marker: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes with ``marker`` in their command line."""
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            if needle not in cmd:
                continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # shown from the marker on: what follows it tells whose it is
            found.append((int(entry), cmd[cmd.index(needle):].replace(b"\0", b" ")
                          .decode(errors="replace")[:160]))
    return found


def kill_marked(marker: str) -> None:
    for _ in range(20):  # a process that forks a new generation needs a few rounds
        left = live_marked(marker)
        if not left:
            return
        for pid, _ in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def start_exp(args: list[str], d: Path, tag: str, err: Path, *, preexec=None,
              session: bool = True) -> subprocess.Popen:
    """The driver as a real process in its own session, stderr to ``err``."""
    with open(err, "wb") as ferr:
        return subprocess.Popen([PY, "-m", "exp", *args], cwd=d, env=exp_env(tag),
                                stdout=subprocess.DEVNULL, stderr=ferr, preexec_fn=preexec,
                                start_new_session=session)


def wait_measured(p: subprocess.Popen, timeout: float | None) -> tuple[int | None, int]:
    """Wait for ``p`` up to ``timeout`` s: (exit code or None, its peak RSS in KiB).

    The peak is the driver's own high-water mark (VmHWM), read every 0.1 s while
    it runs; ``ru_maxrss`` (the fallback) is no measure of it: it is the largest
    of the driver's, its workers' and, carried over the exec, this process's.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    hwm, sampled = 0, 0.0
    while True:
        now = time.monotonic()
        if now - sampled >= 0.1:
            sampled = now
            with contextlib.suppress(OSError, ValueError):
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]))
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, hwm or usage.ru_maxrss
        if deadline is not None and now > deadline:
            return None, 0
        time.sleep(0.01)


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (the journal: exp holds it locked)."""
    try:
        target = str(path.resolve())
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    except OSError:
        pass
    return False


def check_keys(report: Report, phase: str, journal: Path, want: set, repro: str, *,
               statuses: dict | None = None) -> JournalState:
    """Each wanted (id, run) journaled exactly once (with its status, when given)."""
    j = read_raw(journal)
    every = j.keys(None)
    dup = sorted(k for k, c in every.items() if c > 1)
    missing = sorted(want - set(every))
    report.figures[f"{phase}: duplicates"] += len(dup)
    report.figures[f"{phase}: results lost"] += len(missing)
    if dup:
        report.violation(phase, "duplicates", f"{len(dup)} (id, run) journaled more than once: "
                         f"{dup[:10]}", repro)
    if missing:
        report.violation(phase, "missing runs", f"{len(missing)} runs not in the journal: "
                         f"{missing[:10]}", repro)
    if j.torn:
        report.violation(phase, "torn journal", f"{j.torn} unreadable lines", repro)
    if statuses is not None:
        wrong = [(r["id"], r["status"], statuses[r["id"]]) for r in j.records
                 if r.get("id") in statuses and r.get("status") != statuses[r["id"]]]
        if wrong:
            report.violation(phase, "wrong status", f"{len(wrong)} runs (id, status, want): "
                             f"{wrong[:10]}", repro)
    return j


def tidy(report: Report, d: Path, violations: int) -> None:
    """Quick campaigns remove an experiment's folder, unless it showed a violation."""
    if report.quick and len(report.violations) == violations:
        shutil.rmtree(d, ignore_errors=True)


def phase_repro(report: Report, phase: str, what: str, args: list[str]) -> str:
    return (f"python stress/campaign.py --seed {report.seed}{' --quick' if report.quick else ''}"
            f" --only {phase} --keep  # {what}: {cmdline(args)}")


def orphans(report: Report, phase: str, tag: str, grace: float, repro: str,
            what: str = "after the driver exited") -> None:
    left = wait_gone(tag, grace)
    if left:
        report.figures[f"{phase}: orphans"] += len(left)
        report.violation(phase, "orphans", f"{len(left)} live processes of the experiment "
                         f"{what}: {left[:3]}", repro)
        reap(tag)


# ─── phase: runs that change their own process ───────────────────────────────

#: What a run of stress/runnables/inrun.py does to its process before it returns or raises.
INRUN = ("chdir", "chdir_root", "chdir_gone", "close0", "close1", "close2", "close012",
         "dup2_null", "stdout_none", "stderr_none", "stdout_close", "stderr_close",
         "streams_swap", "environ_clear", "environ_junk", "environ_del")


def inrun_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """Each run's status is its own and its log its own, whatever the run before did."""
    sizes = [(1, 50)] if report.quick else [(1, 400), (2, 400), (3, 200)]
    for k, (workers, n) in enumerate(sizes):
        d = work / f"inrun-{k}"
        elsewhere = d / "elsewhere"
        elsewhere.mkdir(parents=True)
        salt = rng.randrange(10 ** 6)
        # every kind at least once, the rest drawn from the kinds and plain runs
        kinds = list(INRUN) + [rng.choice(("none",) + INRUN) for _ in range(n - len(INRUN))]
        rng.shuffle(kinds)
        runs = [[kind, "raise" if rng.random() < 0.25 else "return"] for kind in kinds]
        plan = d / "plan.json"
        plan.write_text(json.dumps({"runs": runs, "elsewhere": str(elsewhere)}))
        write_space(d / "inrun.toml", {"i": {"type": "range", "bounds": [0, n], "dtype": "int"},
                                       "salt": {"type": "value", "value": salt},
                                       "plan": {"type": "value", "value": str(plan)}})
        out = f"out-{salt}"  # relative, resolved in the driver's folder, unique
        args = ["run", "-p", "inrun.toml", "-m", str(RUNNABLES / "inrun.py"), "-w",
                str(workers), "--out", out, "-q"]
        repro = phase_repro(report, "inrun", f"in {d}", args)
        tag = f"{report.seed}-inrun-{k}"
        p = start_exp(args, d, tag, d / "stderr.txt")
        rc, _ = wait_measured(p, 120)
        if rc is None:
            report.figures["inrun: hangs"] += 1
            report.violation("inrun", "hang", "not finished after 120 s", repro)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        err = (d / "stderr.txt").read_text(errors="replace")
        want_rc = 1 if any(then == "raise" for _, then in runs) else 0
        if rc is not None and rc != want_rc:
            report.violation("inrun", f"exit {rc}", f"want {want_rc}: {err[-600:]}", repro)
        if "Traceback" in err:
            report.violation("inrun", "traceback", err[-600:], repro)
        for kind, _ in runs:
            report.figures[f"inrun: changes: {kind}"] += 1
        report.figures["inrun: runs"] += n
        statuses = {i: "failed" if then == "raise" else "ok" for i, (_, then) in enumerate(runs)}
        j = check_keys(report, "inrun", d / out / "inrun.jsonl", {(i, 1) for i in range(n)},
                       repro)
        right = 0
        wrong = Counter()
        logs = d / out / "inrun.logs"
        # what ran just before each run on the same worker (slot), by start time
        before: dict[int, str] = {}
        ordered = sorted((r for r in j.records if isinstance(r.get("id"), int)
                          and 0 <= r["id"] < n), key=lambda r: (str(r.get("worker")),
                                                                r.get("start") or 0))
        for a, b in zip(ordered, ordered[1:]):
            if a.get("worker") == b.get("worker"):
                before[b["id"]] = f"{a['id']} ({runs[a['id']][0]}, then {runs[a['id']][1]})"
        for r in j.records:
            i = r.get("id")
            if not isinstance(i, int) or not 0 <= i < n:
                continue
            kind, then = runs[i]
            after = before.get(i, "none")
            problems = []
            if r["status"] != statuses[i]:
                problems.append(f"status {r['status']}")
            if r["status"] == "ok" and r["result"] != i * 1000 + salt:
                problems.append("wrong result")
            if then == "raise" and f"injected failure in run {i}" not in (r.get("error") or ""):
                problems.append("error text")
            log_file = logs / f"{i}-1.log"
            text = log_file.read_text(errors="replace") if log_file.exists() else None
            if text is None:
                problems.append("no log")
            else:
                if not text.startswith(f"run {i} {salt} begins\n"):
                    problems.append("log does not start with its first line")
                if f"run {i} {salt} on stderr\n" not in text:
                    problems.append("stderr line not in its log")
                if then == "raise" and f"injected failure in run {i}" not in text:
                    problems.append("traceback not in its log")
                others = {int(m) for m in re.findall(r"^run (\d+) ", text, re.M)} - {i}
                if others:
                    problems.append("lines of other runs in its log")
            if problems:
                for problem in problems:
                    wrong[problem] += 1
                    if wrong[problem] == 1:
                        report.violation("inrun", problem, f"run {i} ({kind}, then {then}; the "
                                         f"run before it on its worker: {after}): "
                                         f"{r.get('status')}, {(r.get('error') or '')[-300:]!r}; "
                                         f"log {(text or '')[:300]!r}", repro)
            else:
                right += 1
        report.figures["inrun: runs with their own status and log"] += right
        for place in (elsewhere / out, Path("/") / out):
            if place.exists():
                report.violation("inrun", "output in the run's folder", f"{place} was created: "
                                 "a relative --out followed a run's chdir", repro)
        strays = [str(f.relative_to(d)) for f in (d / out).glob("*")
                  if f.name not in ("inrun.jsonl", "inrun.csv", "inrun.logs")]
        tmps = temp_files(d / out)
        if strays or tmps:
            report.violation("inrun", "stray files", f"{strays[:5]} {tmps[:5]}", repro)
        orphans(report, "inrun", tag, 3.0, repro)


# ─── phase: closed standard streams at launch ────────────────────────────────

#: label -> shell redirections of the driver's standard streams
STREAM_CASES = {
    "stdin closed": "<&-", "stdout closed": ">&-", "stderr closed": "2>&-",
    "stdin and stdout closed": "<&- >&-", "stdin and stderr closed": "<&- 2>&-",
    "stdout and stderr closed": ">&- 2>&-", "all three closed": "<&- >&- 2>&-",
}
#: not closed but failing: every write fails (ENOSPC), or the reader has gone (EPIPE)
STREAM_COUSINS = {"stdout on /dev/full": ">/dev/full", "stderr on /dev/full": "2>/dev/full",
                  "stderr a pipe nobody reads": "PIPE"}


def streams_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """exp run with closed (or failing) standard streams: runs as usual, exit 0."""
    d = work / "streams"
    d.mkdir(parents=True)
    salt = rng.randrange(10 ** 6)
    n = 6
    space = grid_space(d / "s.toml", n, salt)
    cases = [(label, quiet) for label in STREAM_CASES for quiet in (False, True)]
    cousins = [(label, quiet) for label in STREAM_COUSINS for quiet in (False, True)]
    if report.quick:
        cases = [("all three closed", False)] + rng.sample(cases[:-2], 2)
        cousins = rng.sample(cousins, 1)
    tag = f"{report.seed}-streams"
    for k, (label, quiet) in enumerate(cases + cousins):
        name = f"s{k}"
        args = ["run", "-p", str(space), "-m", str(RUNNABLES / "chatty.py"), "-w", "2", "--out",
                "out", "--name", name] + (["-q"] if quiet else [])
        redirect = {**STREAM_CASES, **STREAM_COUSINS}[label]
        command = " ".join(["exec", PY, "-m", "exp", *args])
        err_file = d / f"{name}.stderr"
        read_end = None
        if redirect == "PIPE":
            read_end, write_end = os.pipe()
            os.close(read_end)  # nobody reads: every write to stderr fails with EPIPE
            p = subprocess.Popen(["sh", "-c", command], cwd=d, env=exp_env(tag),
                                 stdout=subprocess.DEVNULL, stderr=write_end,
                                 start_new_session=True)
            os.close(write_end)
            shown = f"{cmdline(args)} 2>&1 | true"
        else:
            with open(err_file, "wb") as ferr:
                p = subprocess.Popen(["sh", "-c", f"{command} {redirect}"], cwd=d,
                                     env=exp_env(tag), stdout=subprocess.DEVNULL, stderr=ferr,
                                     start_new_session=True)
            shown = f"{cmdline(args)} {redirect}"
        repro = phase_repro(report, "streams", label, []) + f"  ->  (cd {d}; {shown})"
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            report.figures["streams: hangs"] += 1
            report.violation("streams", f"{label}: hang", "not finished after 60 s", repro)
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
        err = err_file.read_text(errors="replace") if err_file.exists() else ""
        report.figures["streams: launches"] += 1
        kind = label if label in STREAM_CASES else f"{label} (not closed: writes fail)"
        if rc != 0:
            report.violation("streams", f"{kind}{' -q' if quiet else ''}: exit {rc}",
                             f"want 0; stderr: {err[-600:]}", repro)
        elif "Traceback" in err:
            report.violation("streams", f"{kind}: traceback", err[-600:], repro)
        j = check_keys(report, "streams", d / "out" / f"{name}.jsonl",
                       {(i, 1) for i in range(n)}, repro, statuses=dict.fromkeys(range(n), "ok"))
        bad_logs = []
        for i in range(n):
            log_file = d / "out" / f"{name}.logs" / f"{i}-1.log"
            text = log_file.read_text(errors="replace") if log_file.exists() else ""
            if sorted(text.splitlines()) != sorted([f"out {i}", f"err {i}", f"sub {i}"]):
                bad_logs.append((i, text[:80]))
        if bad_logs:
            report.violation("streams", f"{kind}: run logs", f"{len(bad_logs)} logs without "
                             f"exactly the run's three lines: {bad_logs[:3]}", repro)
        if rc == 0 and not bad_logs and len(j.keys("ok")) == n:
            report.figures["streams: launches that ran as usual"] += 1
        orphans(report, "streams", tag, 3.0, repro)
    # exp results with its streams closed reads the journal all the same
    results = [(label, r) for label, r in STREAM_CASES.items()]
    if report.quick:
        results = [("all three closed", STREAM_CASES["all three closed"])]
    for label, redirect in results:
        args = ["results", "out/s0.jsonl"]
        command = f"exec {PY} -m exp {' '.join(args)} {redirect}"
        p = subprocess.run(["sh", "-c", command], cwd=d, env=exp_env(tag), capture_output=True,
                           timeout=60)
        report.figures["streams: launches"] += 1
        report.figures["streams: launches that ran as usual"] += p.returncode == 0
        if p.returncode != 0:
            report.violation("streams", f"exp results, {label}: exit {p.returncode}",
                             p.stderr.decode(errors="replace")[-600:],
                             f"(cd {d}; {cmdline(args)} {redirect})")
    if not report.quick and gopt_available() is None:
        for label in ("all three closed", "stderr closed"):
            args = ["gopt", "-p", str(write_space(d / "g.toml", {"x": {"type": "range",
                    "bounds": [-2.0, 2.0]}})), "-m", str(d / "obj.py"), "-n", "6", "-w", "2",
                    "--seed", "1", "--out", "out", "--name", f"g-{label.split()[0]}"]
            (d / "obj.py").write_text("import sys\ndef run(x):\n    print('x', x)\n"
                                      "    print('e', x, file=sys.stderr)\n    return x * x\n")
            command = f"exec {PY} -m exp {' '.join(args)} {STREAM_CASES[label]}"
            p = subprocess.run(["sh", "-c", command], cwd=d, env=exp_env(tag),
                               capture_output=True, timeout=120)
            report.figures["streams: launches"] += 1
            found = read_raw(d / "out" / f"g-{label.split()[0]}.jsonl")
            report.figures["streams: launches that ran as usual"] += \
                p.returncode == 0 and len(found.keys("ok")) == 6
            if p.returncode != 0 or len(found.keys("ok")) != 6:
                report.violation("streams", f"exp gopt, {label}: exit {p.returncode}",
                                 f"{len(found.keys('ok'))} of 6 evaluations ok; "
                                 f"{p.stderr.decode(errors='replace')[-600:]}",
                                 f"(cd {d}; {cmdline(args)} {STREAM_CASES[label]})")


# ─── phase: few long runs on many workers, runs queued behind a long one ─────


def sleepy_experiment(report: Report, d: Path, tag: str, durations: list[float], workers: int,
                      what: str) -> tuple[int | None, list[dict], str]:
    """Run stress/runnables/sleepy.py with these run lengths: (rc, records, repro)."""
    d.mkdir(parents=True)
    salt = len(durations)
    plan = d / "plan.json"
    plan.write_text(json.dumps(durations))
    space = write_space(d / "l.toml", {
        "i": {"type": "range", "bounds": [0, len(durations)], "dtype": "int"},
        "salt": {"type": "value", "value": salt}, "plan": {"type": "value", "value": str(plan)}})
    args = ["run", "-p", str(space), "-m", str(RUNNABLES / "sleepy.py"), "-w", str(workers),
            "--out", str(d / "out"), "-q"]
    repro = phase_repro(report, "longruns", what, args)
    p = start_exp(args, d, tag, d / "stderr.txt")
    rc, _ = wait_measured(p, 60 + 2 * sum(durations) / workers)
    if rc is None:
        report.figures["longruns: hangs"] += 1
        report.violation("longruns", "hang", f"{what}: not finished in time", repro)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    elif rc != 0:
        report.violation("longruns", f"exit {rc}", f"{what}: "
                         f"{(d / 'stderr.txt').read_text(errors='replace')[-600:]}", repro)
    n = len(durations)
    j = check_keys(report, "longruns", d / "out" / "l.jsonl", {(i, 1) for i in range(n)}, repro,
                   statuses=dict.fromkeys(range(n), "ok"))
    orphans(report, "longruns", tag, 3.0, repro)
    return rc, j.records, repro


def longruns_campaign(report: Report, work: Path, rng: random.Random) -> None:
    # 1. N runs of T s on N workers: about T, one run per worker
    rounds = [(4, 2.0)] if report.quick else \
        [(rng.choice((2, 3, 4, 6, 8)), rng.choice((2.0, 2.5, 3.0))) for _ in range(6)]
    worst = 0.0
    for k, (n, t) in enumerate(rounds):
        d = work / f"longruns-spread-{k}-{rng.randrange(10 ** 6)}"
        rc, records, repro = sleepy_experiment(report, d, f"{report.seed}-longruns-{k}",
                                                  [t] * n, n, f"{n} runs of {t} s on {n} workers")
        report.figures["longruns: N runs of T s on N workers"] += 1
        if len(records) != n:
            continue
        span = max(r["end"] for r in records) - min(r["start"] for r in records)
        worst = max(worst, span / t)
        workers = {r["worker"] for r in records}
        if span >= 1.5 * t:
            report.violation("longruns", "long runs queued on one worker", f"{n} runs of {t} s "
                             f"on {n} workers took {span:.2f} s (journal span; want < "
                             f"{1.5 * t:.1f}), on {len(workers)} distinct workers", repro)
        elif len(workers) != n:
            report.violation("longruns", "workers left idle", f"{n} runs on {n} workers ran on "
                             f"{len(workers)} of them", repro)
    report.figures["longruns: worst span / T"] = round(worst, 2)
    # 2. short runs queued behind long ones are taken back by idle workers
    rounds = [(1, 2, 300, 3.0)] if report.quick else \
        [(k, k + rng.choice((1, 2)), 300, rng.choice((3.0, 4.0)))
         for k in (1, 1, 2, 1, 2)]
    worst_margin = None
    for k, (longs, workers, n, length) in enumerate(rounds):
        durations = [0.002] * n
        at = sorted(rng.sample(range(n), longs))
        for i in at:
            durations[i] = length
        d = work / f"longruns-behind-{k}-{rng.randrange(10 ** 6)}"
        what = f"{n} runs of 2 ms on {workers} workers, runs {at} of {length} s"
        rc, records, repro = sleepy_experiment(report, d, f"{report.seed}-longrunsb-{k}",
                                                  durations, workers, what)
        report.figures["longruns: experiments with runs behind long ones"] += 1
        if len(records) != n:
            continue
        first_long_end = min(r["end"] for r in records if r["id"] in at)
        short_end = max(r["end"] for r in records if r["id"] not in at)
        margin = first_long_end - short_end  # > 0: every short run done before a long one
        worst_margin = margin if worst_margin is None else min(worst_margin, margin)
        if margin < length / 2:
            report.violation("longruns", "runs waited behind a long run", f"{what}: the last "
                             f"short run ended {-margin:+.2f} s after the first long run ended "
                             f"(want at least {length / 2:.1f} s before)", repro)
    if worst_margin is not None:
        report.figures["longruns: least time the short runs finished before a long run (s)"] = \
            round(worst_margin, 2)
    # 3. many small experiments whose run times vary (0 to 50 ms): the runs taken back at
    # each one's end are journaled once each, none is lost, and exit 0 means all ran
    for k in range(10 if report.quick else 80):
        salt = rng.randrange(10 ** 6)
        d = work / f"longruns-mixed-{k}"
        d.mkdir(parents=True)
        n = 30
        grid_space(d / "g.toml", n, salt)
        args = ["run", "-p", "g.toml", "-m", str(RUNNABLES / "spawny.py"), "-w", "2", "--out",
                "out", "-q"]
        repro = phase_repro(report, "longruns", f"mixed experiment {k}, in {d}", args)
        violations = len(report.violations)
        p = subprocess.run([PY, "-m", "exp", *args], cwd=d, env=exp_env(f"{report.seed}-lrm"),
                           capture_output=True, timeout=120)
        report.figures["longruns: small experiments with varied run times"] += 1
        j = read_raw(d / "out" / "g.jsonl")
        every = j.keys(None)
        dup = sorted(key for key, c in every.items() if c > 1)
        missing = sorted({(i, 1) for i in range(n)} - set(every))
        report.figures["longruns: duplicates"] += len(dup)
        report.figures["longruns: results lost"] += len(missing)
        if dup or missing:
            report.violation("longruns", "varied run times: a run twice, another never",
                             f"exit {p.returncode}; (id, run) journaled twice: {dup}, never: "
                             f"{missing} (the pool took runs back from a worker that still had "
                             "batches on their way to it)", repro)
        elif p.returncode != 0:
            report.violation("longruns", f"varied run times: exit {p.returncode}",
                             p.stderr.decode(errors="replace")[-600:], repro)
        else:
            check_complete(report, "longruns", d / "out", "g", n, salt, repro, set())
        tidy(report, d, violations)


# ─── phase: a second driver of a running experiment ──────────────────────────


def wait_for_lines(path: Path, lines: int, p: subprocess.Popen, limit: float = 30.0) -> bool:
    """Wait until ``path`` holds ``lines`` whole lines (False if ``p`` ended first or too long)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and p.poll() is None:
        with contextlib.suppress(OSError):
            if path.read_bytes().count(b"\n") >= lines:
                return True
        time.sleep(0.01)
    return False


def fresh_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """While a driver runs an experiment, others (--fresh above all) are refused, move nothing."""
    kinds = ["--fresh", "3 x --fresh"] if report.quick else \
        ["--fresh"] * 8 + ["3 x --fresh"] * 4 + ["resume"] * 3 + ["--retry-failed"] * 2 + \
        ["--fresh, then resume"] * 3
    if not report.quick:
        rng.shuffle(kinds)
    n = 120  # about 1.5 s on 2 workers
    for k, kind in enumerate(kinds):
        salt = rng.randrange(10 ** 6)
        d = work / f"fresh-{k}"
        d.mkdir(parents=True)
        grid_space(d / "grid.toml", n, salt)
        base = ["run", "-p", "grid.toml", "-m", str(RUNNABLES / "short.py"), "--out", "out"]
        first_args = base + ["-w", "2", "-q"]
        tag = f"{report.seed}-fresh-{k}"
        violations = len(report.violations)
        first = start_exp(first_args, d, tag, d / "first.txt")
        journal = d / "out" / "grid.jsonl"
        repro = phase_repro(report, "fresh", f"attempt {k} ({kind}) in {d}", first_args)
        if not wait_for_lines(journal, 1, first):
            report.violation("fresh", "first driver", f"no journal header: "
                             f"{(d / 'first.txt').read_text(errors='replace')[-300:]}", repro)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            continue
        time.sleep(rng.uniform(0.0, 1.0))
        any_late = False
        extra = {"--fresh": [["--fresh"]], "3 x --fresh": [["--fresh"]] * 3,
                 "resume": [[]], "--retry-failed": [["--retry-failed"]],
                 "--fresh, then resume": [["--fresh"], []]}[kind]
        seconds = []
        for flags in extra if kind != "3 x --fresh" else [None]:
            group = [flags] if flags is not None else extra
            procs = [subprocess.Popen([PY, "-m", "exp", *base, *f], cwd=d, env=exp_env(tag),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for f in group]
            t0 = time.monotonic()
            for f, p in zip(group, procs):
                try:
                    _, err = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                    report.figures["fresh: hangs"] += 1
                seconds.append(time.monotonic() - t0)
                err = err.decode(errors="replace").strip()
                late = first.poll() is not None
                args = base + f
                second = f"(cd {d}; {cmdline(args)})"
                want = ("exp: error: out/grid.jsonl is in use by another exp process (wait for "
                        "it, or use --name)")
                report.figures["fresh: second drivers started"] += 1
                if p.returncode == 2 and err == want:
                    report.figures["fresh: second drivers refused"] += 1
                elif late and p.returncode in (0, 1):
                    any_late = True
                    report.figures["fresh: second drivers after the first had ended"] += 1
                else:
                    label = " ".join(f) or "a plain resume"
                    report.violation("fresh", f"{label}: exit {p.returncode}",
                                     f"while the first driver runs, want exit 2 and the one line "
                                     f"{want!r}; got {err[-600:]!r}", f"{repro}  then  {second}")
        report.figures["fresh: slowest refusal (s)"] = round(max(
            [report.figures["fresh: slowest refusal (s)"], *seconds]), 3)
        rc, _ = wait_measured(first, 60)
        if rc is None:
            report.figures["fresh: hangs"] += 1
            report.violation("fresh", "first driver hangs", "not finished after 60 s", repro)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            continue
        moved = sorted(p.name for p in (d / "out").glob("grid.old-*"))
        if moved and not any_late:
            report.violation("fresh", "moved aside", f"{moved} while the first driver ran", repro)
        if rc != 0:
            report.violation("fresh", f"first driver: exit {rc}",
                             (d / "first.txt").read_text(errors="replace")[-600:], repro)
        elif not moved:
            report.figures["fresh: experiments completed"] += 1
            check_complete(report, "fresh", d / "out", "grid", n, salt, repro, set())
        orphans(report, "fresh", tag, 3.0, repro)
        tidy(report, d, violations)


# ─── phase: the Dask scheduler dies ──────────────────────────────────────────


def dask_available() -> str | None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "the distributed package is not installed"
    return None


class Cluster:
    """``dask scheduler`` and ``dask worker`` programs on 127.0.0.1, as a user starts them."""

    def __init__(self, d: Path, tag: str, workers: int = 2):
        self.file = d / f"scheduler-{time.monotonic_ns()}.json"
        env = exp_env(tag)
        self.log = open(d / "cluster.txt", "ab")
        self.scheduler = subprocess.Popen(
            [PY, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.file)],
            cwd=d, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        self.workers: list[subprocess.Popen] = []
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(workers):
            self.workers.append(subprocess.Popen(
                [PY, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(self.file),
                 "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                cwd=d, env=env, stdout=self.log, stderr=self.log, start_new_session=True))
        import distributed
        with distributed.Client(scheduler_file=str(self.file), timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.log.close()


def exp_children(tag: str) -> list[tuple[int, str]]:
    """Live exp worker processes (``python -c ... _exp_worker ...``) carrying the tag."""
    found = []
    for pid, _ in live_tagged(tag):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if b"_exp_worker" in cmd:
                found.append((pid, cmd.replace(b"\0", b" ").decode(errors="replace")[:100]))
    return found


def dask_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """Kill the scheduler mid-experiment: one line, exit 2 in about 30 s, the rerun finishes."""
    why = dask_available()
    if why:
        report.notes.append(f"dask phase skipped: {why}")
        log(f"dask: skipped ({why})")
        return
    experiments = [1] if report.quick else [2, 2, 1, 3]  # scheduler deaths in each
    lost_after = 30.0
    for k, deaths in enumerate(experiments):
        salt = rng.randrange(10 ** 6)
        d = work / f"dask-{k}"
        d.mkdir(parents=True)
        n = 150 if report.quick else 300
        grid_space(d / "grid.toml", n, salt)
        tag, ctag = f"{report.seed}-dask-{k}", f"{report.seed}-daskcluster-{k}"
        journal = d / "out" / "grid.jsonl"
        seen: set = set()
        for death in range(deaths + 1):
            cluster = Cluster(d, ctag)
            sched = f"{d.name}/{cluster.file.name}"
            args = ["run", "-p", "grid.toml", "-m", str(RUNNABLES / "short.py"), "--out", "out",
                    "--scheduler-file", cluster.file.name, "-q"]
            how = rng.choice(("SIGKILL", "SIGTERM")) if not report.quick else "SIGKILL"
            repro = (phase_repro(report, "dask", f"experiment {k}, in {d}, with a scheduler "
                                 f"and 2 workers on {sched}", args)
                     + (f"; kill the scheduler with {how}" if death < deaths else ""))
            err = d / f"stderr-{death}.txt"
            try:
                p = start_exp(args, d, tag, err)
                if death == deaths:  # the last one runs to the end
                    rc, _ = wait_measured(p, 180)
                    if rc is None:
                        report.figures["dask: hangs"] += 1
                        report.violation("dask", "hang", "the rerun does not finish in 180 s",
                                         repro)
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
                    elif rc != 0:
                        report.violation("dask", f"rerun: exit {rc}",
                                         err.read_text(errors="replace")[-600:], repro)
                    else:
                        report.figures["dask: experiments completed"] += 1
                        check_complete(report, "dask", d / "out", "grid", n, salt, repro, seen)
                    continue
                # wait for a few runs, then a random moment more
                if not wait_for_lines(journal, len(seen) + 4, p, 60):
                    report.violation("dask", "no runs", f"no new run journaled in 60 s: "
                                     f"{err.read_text(errors='replace')[-300:]}", repro)
                    continue
                time.sleep(rng.uniform(0.0, 1.5))
                os.killpg(cluster.scheduler.pid, getattr(signal, how))
                t0 = time.monotonic()
                rc, _ = wait_measured(p, lost_after + 30)
                took = time.monotonic() - t0
                report.figures[f"dask: scheduler deaths ({how})"] += 1
                report.figures["dask: slowest stop after the scheduler died (s)"] = round(max(
                    report.figures["dask: slowest stop after the scheduler died (s)"], took), 2)
                text = err.read_text(errors="replace")
                lines = [line for line in text.splitlines() if line.strip()]
                if rc is None:
                    report.figures["dask: hangs"] += 1
                    report.violation("dask", "hang", f"the driver still runs {took:.0f} s after "
                                     f"the scheduler died ({how})", repro)
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                elif rc == 0 and len(read_raw(journal).keys("ok")) == n:
                    report.figures["dask: finished before the scheduler died"] += 1
                elif rc != 2 or len(lines) != 1 or not lines[0].startswith(
                        "exp: error: --cluster: the Dask scheduler at ") or " is gone " \
                        not in lines[0]:
                    report.violation("dask", f"scheduler death ({how}): exit {rc}", f"want exit "
                                     "2 and one line 'exp: error: --cluster: the Dask scheduler "
                                     f"at … is gone …'; got: {text[-800:]!r}", repro)
                elif took > lost_after + 5:
                    report.violation("dask", "slow to stop", f"{took:.1f} s after the scheduler "
                                     f"died ({how}), want about {lost_after:.0f}", repro)
                j = read_raw(journal)
                bad = Counter(r.get("status") for r in j.records if r.get("status") != "ok")
                if bad:
                    report.violation("dask", "runs journaled as not ok", f"{dict(bad)} after "
                                     f"the scheduler died ({how}); want only finished runs, all "
                                     "ok", repro)
                dup = [key for key, c in j.keys(None).items() if c > 1]
                if dup or j.torn:
                    report.violation("dask", "journal", f"{len(dup)} runs twice, {j.torn} torn "
                                     "lines after the scheduler died", repro)
                orphans(report, "dask", tag, 3.0, repro, "(the driver) after it exited")
                seen |= set(j.keys("ok"))
            finally:
                cluster.stop()
                left = wait_gone(ctag, 5.0)
                ours = exp_children(ctag)
                if ours:
                    report.figures["dask: orphans"] += len(ours)
                    report.violation("dask", "orphans on the Dask workers", f"{len(ours)} exp "
                                     f"worker processes alive 5 s after their Dask workers "
                                     f"stopped: {ours[:3]}", repro)
                elif left:
                    report.notes.append(f"dask: {len(left)} Dask processes alive 5 s after "
                                        f"SIGTERM (not exp's): {left[:2]}")
                reap(ctag)
    if not report.quick:
        frozen_scheduler(report, work, lost_after)


def frozen_scheduler(report: Report, work: Path, lost_after: float) -> None:
    """A scheduler that stops answering but keeps its connections (SIGSTOP): a figure.

    exp promises to stop when the scheduler is gone; a frozen one (a hung
    host) is counted and noted, not a violation.
    """
    d = work / "dask-frozen"
    d.mkdir(parents=True)
    grid_space(d / "grid.toml", 300, 1)
    tag, ctag = f"{report.seed}-daskfrozen", f"{report.seed}-daskfrozenc"
    cluster = Cluster(d, ctag)
    args = ["run", "-p", "grid.toml", "-m", str(RUNNABLES / "short.py"), "--out", "out",
            "--scheduler-file", cluster.file.name, "-q"]
    try:
        p = start_exp(args, d, tag, d / "stderr.txt")
        if wait_for_lines(d / "out" / "grid.jsonl", 10, p, 60):
            os.killpg(cluster.scheduler.pid, signal.SIGSTOP)
            t0 = time.monotonic()
            rc, _ = wait_measured(p, lost_after + 15)
            took = time.monotonic() - t0
            if rc is None:
                report.figures["dask: frozen scheduler, driver still waiting (s)"] = round(took)
                report.notes.append(f"dask: with the scheduler frozen (SIGSTOP) the driver still "
                                    f"waits {took:.0f} s later (no exit; exp stops only once the "
                                    f"client sees the connection closed): {cmdline(args)}, then "
                                    "kill -STOP the scheduler")
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            else:
                report.figures["dask: frozen scheduler, driver out after (s)"] = round(took, 1)
                report.figures["dask: frozen scheduler, driver exit"] = rc
            reap(tag)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(cluster.scheduler.pid, signal.SIGCONT)
        cluster.stop()
        reap(ctag)


# ─── phase: huge journals ────────────────────────────────────────────────────


def write_big_journal(path: Path, header: bytes, template: dict, ids, salt: int) -> int:
    """A finished journal: the header, then one ok record per id in the template's format."""
    t = dict(template)
    with open(path, "wb") as f:
        f.write(header + b"\n")
        chunk = []
        for i in ids:
            t.update(id=i, params={"i": i, "salt": salt}, result=i * 1000 + salt)
            chunk.append(json.dumps(t, separators=(",", ":")))
            if len(chunk) == 10000:
                f.write(("\n".join(chunk) + "\n").encode())
                chunk = []
        if chunk:
            f.write(("\n".join(chunk) + "\n").encode())
        return f.tell()


def signal_when(p: subprocess.Popen, signum: int, delay: float, limit: float) -> tuple[int | None, float]:
    """Send ``signum`` to ``p``'s group after ``delay`` s: (exit code, s from signal to exit)."""
    rc = None
    with contextlib.suppress(subprocess.TimeoutExpired):
        rc = p.wait(delay)
    if rc is not None:
        return rc, -1.0  # it ended before the signal
    os.killpg(p.pid, signum)
    t0 = time.monotonic()
    rc, _ = wait_measured(p, limit)
    return rc, time.monotonic() - t0


def bigjournal_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """A journal of hundreds of thousands of runs: resume, results, SIGINT; times as figures."""
    n = 200_000 if report.quick else 1_000_000
    left = 200 if report.quick else 1000  # runs left to do in the second journal
    bound = 60.0  # generous: figures, not limits, except for this
    d = work / "bigjournal"
    d.mkdir(parents=True)
    salt = rng.randrange(10 ** 6)
    grid_space(d / "big.toml", n, salt)
    base = ["run", "-p", "big.toml", "-m", str(RUNNABLES / "short.py"), "--out", "out", "-w", "2"]
    tag = f"{report.seed}-big"
    # a real journal of this space, three runs long, gives the header and the record format
    p = subprocess.run([PY, "-m", "exp", *base, "--name", "seed", "-q", "-c", "0", "1", "2"],
                       cwd=d, env=exp_env(tag), capture_output=True, timeout=120)
    if p.returncode != 0:
        report.violation("bigjournal", "seed journal", p.stderr.decode(errors="replace")[-600:],
                         cmdline(base))
        return
    header, first = (d / "out" / "seed.jsonl").read_bytes().split(b"\n")[:2]
    template = json.loads(first)
    t0 = time.monotonic()
    size = write_big_journal(d / "out" / "big.jsonl", header, template, range(n), salt)
    gone = set(rng.sample(range(n), left))
    write_big_journal(d / "out" / "gap.jsonl", header, template,
                      (i for i in range(n) if i not in gone), salt)
    report.seconds["bigjournal: writing the journals"] = round(time.monotonic() - t0, 1)
    report.figures["bigjournal: journal lines"] = n + 1
    report.figures["bigjournal: journal MiB"] = round(size / 2 ** 20, 1)
    fig = report.figures

    def timed(args: list[str], what: str, want_rc: int = 0) -> tuple[float, str] | None:
        err = d / "stderr.txt"
        t1 = time.monotonic()
        proc = start_exp(args, d, tag, err)
        rc, rss = wait_measured(proc, bound + 60)
        took = time.monotonic() - t1
        text = err.read_text(errors="replace")
        repro = phase_repro(report, "bigjournal", f"{what}, in {d}", args)
        if rc is None:
            fig["bigjournal: hangs"] += 1
            report.violation("bigjournal", f"{what}: hang", f"still running after {took:.0f} s",
                             repro)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        if rc != want_rc or "Traceback" in text:
            report.violation("bigjournal", f"{what}: exit {rc}", f"want {want_rc}: "
                             f"{text[-600:]}", repro)
            return None
        if took > bound:
            report.violation("bigjournal", f"{what}: slow", f"{took:.1f} s (bound {bound:.0f} s)",
                             repro)
        fig[f"bigjournal: {what} (s)"] = round(took, 2)
        fig[f"bigjournal: {what}, peak RSS (MiB)"] = round(rss / 1024)
        return took, text

    # 1. resume of a finished experiment: nothing to run
    before = (d / "out" / "big.jsonl").stat().st_size
    got = timed(base + ["--name", "big"], "resume, nothing to run")
    if got and "nothing to run" not in got[1]:
        report.violation("bigjournal", "resume: no 'nothing to run'", got[1][-400:],
                         cmdline(base + ["--name", "big"]))
    if (d / "out" / "big.jsonl").stat().st_size != before:
        report.violation("bigjournal", "resume wrote to a finished journal",
                         f"{before} -> {(d / 'out' / 'big.jsonl').stat().st_size} bytes",
                         cmdline(base + ["--name", "big"]))
    # the first resume may leave something (a table, an index) that makes the next faster
    timed(base + ["--name", "big", "-q"], "resume again, nothing to run")
    # 2. exp results
    got = timed(["results", "out/big.jsonl"], "exp results")
    # (stdout went to /dev/null; the summary's count is on stdout: check the CSV instead)
    with open(d / "out" / "big.csv", newline="") as f:
        rows = sum(1 for _ in f) - 1
    if rows != n:
        report.violation("bigjournal", "csv rows", f"{rows} rows in big.csv, want {n}",
                         cmdline(base + ["--name", "big"]))
    # 3. SIGINT (Ctrl-C) and SIGTERM to a driver resuming the finished journal (at a random
    # moment: reading it, writing the CSV), and SIGINT once it runs the runs left of the other
    resume_s = fig.get("bigjournal: resume again, nothing to run (s)", 2.0)
    # (SIGTERM at a few moments: reading the journal, starting workers, writing the CSV)
    cases = [("SIGINT", "resuming"), ("SIGINT", "running")]
    cases += [("SIGTERM", "resuming")] * (2 if report.quick else 4)
    for k, (name, where) in enumerate(cases):
        signum = getattr(signal, name)
        args = base + ["--name", "big" if where == "resuming" else "gap", "-q"]
        repro = phase_repro(report, "bigjournal", f"{name} while {where}, in {d}", args)
        err = d / f"signal-{k}.txt"
        proc = start_exp(args, d, tag, err)
        if where == "resuming":  # a random moment; earlier ones if it ends first
            delay = rng.uniform(0.2, max(0.3, 0.9 * resume_s))
            rc, took = signal_when(proc, signum, delay, bound)
            for _ in range(3):
                if took >= 0:
                    break
                delay /= 2
                proc = start_exp(args, d, tag, err)
                rc, took = signal_when(proc, signum, delay, bound)
        else:  # once it has started the runs left
            journal = d / "out" / "gap.jsonl"
            start = journal.read_bytes().count(b"\n")
            wait_for_lines(journal, start + rng.randint(1, left // 2), proc, bound)
            delay = -1.0
            rc, took = signal_when(proc, signum, 0.0, bound)
        text = err.read_text(errors="replace")
        if took < 0:
            report.notes.append(f"bigjournal: the driver {where} ended before the {name} "
                                f"({delay:.2f} s in)")
            continue
        key = f"bigjournal: exit after {name} while {where} (s)"
        fig[key] = round(max(fig.get(key, 0), took), 2)
        fig[f"bigjournal: {name} while {where}"] += 1
        if rc == 130:
            fig[f"bigjournal: {name} while {where}: exit 130"] += 1
        if rc is None:
            fig["bigjournal: hangs"] += 1
            report.violation("bigjournal", f"{name} while {where}: hang", f"no exit {bound:.0f} s "
                             f"after {name}", repro)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        elif rc != 130 or "Traceback" in text:
            how = (f"killed by {name} (status {rc}: the default disposition, the shell shows "
                   f"{128 + signum})" if rc == -signum else f"exit {rc}")
            report.violation("bigjournal", f"{name} while {where}: exit {rc}",
                             f"{how} {delay:.2f} s into the resume; want 130 and the one line: "
                             f"{text[-600:]!r}", repro)
        orphans(report, "bigjournal", tag, 3.0, repro)
    j = read_raw(d / "out" / "big.jsonl")
    if j.torn or len(j.records) != n:
        report.violation("bigjournal", "journal changed", f"{len(j.records)} records, {j.torn} "
                         "torn lines after signals during a resume with nothing to run",
                         cmdline(base + ["--name", "big"]))
    # 4. the rest of the gap journal runs: every run once
    got = timed(base + ["--name", "gap", "-q"], f"resume, {left} runs left")
    if got:
        check_keys(report, "bigjournal", d / "out" / "gap.jsonl", {(i, 1) for i in range(n)},
                   cmdline(base + ["--name", "gap"]), statuses=None)
    shutil.rmtree(d / "out", ignore_errors=True)  # hundreds of MiB


# ─── phase: SIGTERM and SIGHUP to the driver ─────────────────────────────────


def signals_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """SIGTERM (``kill PID``), SIGHUP (the terminal closed), and SIGHUP under nohup.

    SIGTERM and SIGHUP: exit 130 with the one line, the journal whole, no process
    of the experiment left, the rerun completes. A death by the default
    disposition (status -15 or -1) is counted apart while the driver had not yet
    opened its journal (the interpreter starting, exp importing: nothing done
    yet); once it has, it is a violation. Under nohup (SIGHUP ignored) the
    driver goes on to the end as if nothing came.
    """
    plan = (["SIGTERM", "SIGHUP", "SIGHUP to the group", "SIGTERM", "nohup"] if report.quick else
            ["SIGTERM"] * 12 + ["SIGHUP"] * 8 + ["SIGHUP to the group"] * 8 + ["nohup"] * 4)
    n_runs = 100 if report.quick else 300
    max_delay = 1.5 if report.quick else 3.5
    rng.shuffle(plan)
    fig = report.figures
    for k, what in enumerate(plan):
        salt = rng.randrange(10 ** 6)
        d = work / f"signals-{k}"
        out = d / "out"
        d.mkdir(parents=True)
        space = grid_space(d / "grid.toml", n_runs, salt)
        args = ["run", "-p", str(space), "-m", str(RUNNABLES / "short.py"), "-w", "2",
                "--out", str(out), "-q"]
        tag = f"{report.seed}-signals-{k}"
        signum = signal.SIGTERM if what == "SIGTERM" else signal.SIGHUP
        nohup = what == "nohup"
        repro = phase_repro(report, "signals", f"experiment {k} ({what})", args)
        violations = len(report.violations)
        seen: set = set()
        for attempt in range(1, 50):
            delay = rng.uniform(0.0, max_delay)
            err = d / f"stderr-{attempt}.txt"
            preexec = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None
            p = start_exp(args, d, tag, err, preexec=preexec)
            rc = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                rc = p.wait(delay)
            if rc is None:
                opened = holds_open(p.pid, out / "grid.jsonl")
                if what == "SIGHUP to the group":
                    os.killpg(p.pid, signum)
                else:
                    os.kill(p.pid, signum)
                t0 = time.monotonic()
                rc, _ = wait_measured(p, 60.0 if nohup else 5.0)
                took = time.monotonic() - t0
                if rc is None:
                    fig["signals: hangs"] += 1
                    report.violation("signals", "hang", f"no exit {'60' if nohup else '5'} s "
                                     f"after {what} ({delay:.3f} s in, attempt {attempt})", repro)
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    reap(tag)
                    break
                text = err.read_text(errors="replace")
                if nohup:
                    fig["signals: SIGHUPs under nohup"] += 1
                    if rc != 0:
                        report.violation("signals", f"nohup: exit {rc}", f"SIGHUP {delay:.3f} s in "
                                         f"stopped a driver that ignores it: {text[-600:]}",
                                         repro + "  # started with SIGHUP ignored, as nohup does")
                        break
                    orphans(report, "signals", tag, 3.0, repro)
                    fig["signals: experiments completed"] += 1
                    check_complete(report, "signals", out, "grid", n_runs, salt, repro, seen)
                    break
                if rc == 0:  # it was finishing as the signal came: a completion
                    fig["signals: finished as the signal came"] += 1
                    orphans(report, "signals", tag, 3.0, repro)
                    fig["signals: experiments completed"] += 1
                    check_complete(report, "signals", out, "grid", n_runs, salt, repro, seen)
                    break
                fig[f"signals: {what.split()[0]} sent"] += 1
                if rc == -signum and not text.strip() and not opened:
                    fig["signals: died by the default disposition before the journal was "
                        "opened"] += 1
                elif rc == -signum:
                    report.violation("signals", f"{what}: killed by the default disposition",
                                     f"status {rc} (the shell shows {128 + signum}), not 130, "
                                     f"{delay:.3f} s in (attempt {attempt}), with the journal "
                                     f"open: exp's handler was not in place; stderr "
                                     f"{text[-300:]!r}", repro)
                elif rc != 130:
                    report.violation("signals", f"{what}: exit {rc}", f"want 130, {delay:.3f} s "
                                     f"in (attempt {attempt}): {text[-600:]}", repro)
                elif "Traceback" in text or "interrupted; the journal is whole" not in text:
                    report.violation("signals", f"{what}: message", f"exit 130 {delay:.3f} s in, "
                                     f"but stderr is {text[-600:]!r}", repro)
                else:
                    fig[f"signals: {what.split()[0]} survived (exit 130)"] += 1
                    fig["signals: slowest exit (s)"] = round(max(
                        fig["signals: slowest exit (s)"], took), 3)
                j = read_raw(out / "grid.jsonl")
                if j.torn:
                    report.violation("signals", "torn journal", f"{j.torn} unreadable lines after "
                                     f"{what}", repro)
                orphans(report, "signals", tag, 0.5, repro)
                seen |= set(j.keys("ok"))
                continue
            # it finished on its own
            if rc != 0:
                report.violation("signals", f"exit {rc}", f"resume ended with {rc}: "
                                 f"{err.read_text(errors='replace')[-600:]}", repro)
                reap(tag)
                break
            orphans(report, "signals", tag, 3.0, repro)
            fig["signals: experiments completed"] += 1
            check_complete(report, "signals", out, "grid", n_runs, salt, repro, seen)
            break
        else:
            fig["signals: hangs"] += 1
            report.violation("signals", "never completes", "49 attempts without completion",
                             repro)
        tidy(report, d, violations)


# ─── phase: processes a run leaves behind ────────────────────────────────────

#: What a run of stress/runnables/leftover.py leaves behind (see its docstring).
LEFTOVERS = ("group", "session", "daemon", "daemon_noenv", "stubborn", "pgroup", "hopper", "kept")
#: How such a run ends -> the status it must get.
LEFTOVER_ENDS = {"return": "ok", "raise": "failed", "crash": "crashed", "hang": "timeout"}


def leftovers_campaign(report: Report, work: Path, rng: random.Random) -> None:
    """None of the processes runs leave behind is alive after exp exits.

    Found by EXP_STRESS_TAG in their environment and by a marker in their
    command line (one kind clears its environment). Scenarios: the experiment
    runs to its end, its runs returning or raising ("end"), or some also
    crashing their worker or running past --timeout ("worker deaths"); SIGINT
    or SIGTERM stops the driver midway (exit 130). kill -9 of the driver is
    counted apart: nothing in exp runs after it, so it promises nothing there.
    """
    fig = report.figures
    scenarios = (["end", "worker deaths", "SIGINT", "SIGTERM", "kill -9"] if report.quick else
                 ["end"] * 3 + ["worker deaths"] * 4 + ["SIGINT"] * 4 + ["SIGTERM"] * 4 +
                 ["kill -9"] * 3)
    linger = 120.0  # how long a leftover lives if nobody kills it
    for k, scenario in enumerate(scenarios):
        salt = rng.randrange(10 ** 6)
        marker = f"exp-stress-leftover-{report.seed}-{k}-{salt}"
        d = work / f"leftovers-{k}"
        d.mkdir(parents=True)
        runs = [[kind, "return"] for kind in LEFTOVERS]  # each kind once, ending plainly
        n = 30 if report.quick else 60
        ends = {"end": ("return",) * 6 + ("raise",),
                "worker deaths": ("return",) * 6 + ("raise", "crash", "hang")}.get(scenario)
        while len(runs) < n:
            runs.append([rng.choice(LEFTOVERS + ("none",)), rng.choice(ends or ("return",))])
        rng.shuffle(runs)
        plan = d / "plan.json"
        plan.write_text(json.dumps({"runs": runs, "marker": marker, "linger_s": linger}))
        space = write_space(d / "l.toml", {
            "i": {"type": "range", "bounds": [0, n], "dtype": "int"},
            "salt": {"type": "value", "value": salt},
            "plan": {"type": "value", "value": str(plan)}})
        args = ["run", "-p", str(space), "-m", str(RUNNABLES / "leftover.py"), "-w", "2",
                "--timeout", "2", "--out", str(d / "out"), "-q"]
        tag = f"{report.seed}-leftovers-{k}"
        repro = phase_repro(report, "leftovers", f"scenario {k} ({scenario})", args)
        violations = len(report.violations)
        p = start_exp(args, d, tag, d / "stderr.txt")
        journal = d / "out" / "l.jsonl"
        for kind, _ in runs:
            fig[f"leftovers: left by runs: {kind}"] += kind != "none"
        if ends:  # to the end
            rc, _ = wait_measured(p, 120)
            if rc is None:
                fig["leftovers: hangs"] += 1
                report.violation("leftovers", "hang", "not finished after 120 s", repro)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            text = (d / "stderr.txt").read_text(errors="replace")
            want_rc = 0 if all(end == "return" for _, end in runs) else 1
            if rc is not None and rc != want_rc:
                report.violation("leftovers", f"exit {rc}", f"want {want_rc}: {text[-600:]}",
                                 repro)
            statuses = {i: LEFTOVER_ENDS[end] for i, (_, end) in enumerate(runs)}
            j = check_keys(report, "leftovers", journal, {(i, 1) for i in range(n)}, repro,
                           statuses=statuses)
            killed = [r["id"] for r in j.records
                      if "children kept by earlier runs" in (r.get("error") or "")]
            if killed:
                report.violation("leftovers", "kept children killed between runs",
                                 f"runs {killed[:5]} found the children an earlier run of their "
                                 "worker kept dead (a pool a runnable keeps must keep working)",
                                 repro)
        else:
            wait_for_lines(journal, 1 + rng.randint(3, n // 2), p, 60)
            if scenario == "kill -9":
                os.kill(p.pid, signal.SIGKILL)
            else:
                os.killpg(p.pid, signal.SIGINT if scenario == "SIGINT" else signal.SIGTERM)
            rc, _ = wait_measured(p, 10)
            if rc is None:
                fig["leftovers: hangs"] += 1
                report.violation("leftovers", f"{scenario}: hang", "no exit 10 s after it",
                                 repro)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            elif scenario != "kill -9" and rc != 130:
                report.violation("leftovers", f"{scenario}: exit {rc}", "want 130: " +
                                 (d / "stderr.txt").read_text(errors="replace")[-600:], repro)
        # what is still alive: by the tag in the environment, or the marker in the command line
        time.sleep(0.5)
        alive = {pid: cmd for pid, cmd in live_marked(marker)}
        deadline = time.monotonic() + (2.5 if scenario != "kill -9" else 0.0)
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = {pid: cmd for pid, cmd in live_marked(marker)}
        alive.update((pid, cmd) for pid, cmd in live_tagged(tag) if pid not in alive)
        fig[f"leftovers: scenarios ({scenario})"] += 1
        if scenario == "kill -9":
            fig["leftovers: alive after kill -9 of the driver (not promised)"] += len(alive)
        elif alive:
            fig["leftovers: alive after exp exited"] += len(alive)
            whose = Counter()
            for cmd in alive.values():
                m = re.search(r"run=(\d+)", cmd)
                whose["{} run, then {}".format(*runs[int(m.group(1))]) if m else "?"] += 1
            report.violation("leftovers", f"{scenario}: processes outlive the experiment",
                             f"{len(alive)} alive 3 s after exp exited, left by (kind of run, how "
                             f"it ended): {dict(whose.most_common())}; e.g. "
                             f"{list(alive.items())[:2]}", repro)
        kill_marked(marker)
        reap(tag)
        tidy(report, d, violations)


# ─── driver ──────────────────────────────────────────────────────────────────

PHASES = ("kill", "gopt", "sigint", "faults", "fuzz", "disk", "inrun", "streams", "longruns",
          "fresh", "dask", "bigjournal", "signals", "leftovers")


def campaign(seed: int, *, quick: bool = False, only: tuple[str, ...] = PHASES,
             work: Path | None = None, keep: bool = False) -> Report:
    report = Report(seed, quick)
    # A shell starts background jobs with SIGINT ignored, and exec keeps that: the
    # drivers under test must get the default (KeyboardInterrupt) like a terminal's.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    own = work is None
    work = Path(work or tempfile.mkdtemp(prefix=f"exp-stress-{seed}-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"exp stress campaign, seed {seed}{' (quick)' if quick else ''}, work dir {work}")
    sys.path.insert(0, str(REPO))
    try:
        for phase in only:
            rng = random.Random(f"{seed}-{phase}")
            t0 = time.monotonic()
            log(f"--- {phase}")
            if phase == "kill":
                interrupt_campaign(report, work, phase="kill", target=3 if quick else 50, rng=rng,
                                   n_runs=100 if quick else 300, max_delay=1.5 if quick else 3.5)
            elif phase == "gopt":
                gopt_campaign(report, work, target=2 if quick else 20, rng=rng,
                              n=20 if quick else 40)
            elif phase == "sigint":
                interrupt_campaign(report, work, phase="sigint", target=3 if quick else 50,
                                   rng=rng, n_runs=100 if quick else 300,
                                   max_delay=1.5 if quick else 3.5)
            elif phase == "faults":
                faults_campaign(report, work, rng=rng)
            elif phase == "fuzz":
                parts = [("params", lambda: fuzz_param_files(
                             report, work, rng, n_random=100 if quick else 1200,
                             n_mutated=40 if quick else 600)),
                         ("runnables", lambda: fuzz_runnables(report, work)),
                         ("journals", lambda: fuzz_journals(report, work, rng)),
                         ("cli", lambda: fuzz_cli(report, work, 40 if quick else 500))]
                if not quick:
                    parts += [("real processes", lambda: fuzz_subprocess_sample(
                                  report, work, rng, 40)),
                              ("huge", lambda: huge_space_sample(report, work))]
                for label, part in parts:
                    t1 = time.monotonic()
                    part()
                    report.seconds[f"fuzz {label}"] = round(time.monotonic() - t1, 1)
            elif phase == "disk":
                disk_campaign(report, work)
            elif phase == "inrun":
                inrun_campaign(report, work, rng)
            elif phase == "streams":
                streams_campaign(report, work, rng)
            elif phase == "longruns":
                longruns_campaign(report, work, rng)
            elif phase == "fresh":
                fresh_campaign(report, work, rng)
            elif phase == "dask":
                dask_campaign(report, work, rng)
            elif phase == "bigjournal":
                bigjournal_campaign(report, work, rng)
            elif phase == "signals":
                signals_campaign(report, work, rng)
            elif phase == "leftovers":
                leftovers_campaign(report, work, rng)
            report.seconds[phase] = round(time.monotonic() - t0, 1)
    finally:
        if own and not keep:
            shutil.rmtree(work, ignore_errors=True)
    return report


def new_phase_rows(report: Report) -> list[tuple[str, object]]:
    """Rows of the phases added after the first campaign, for the phases that ran."""
    f = report.figures

    def share(done: str, of: str) -> str:
        return f"{f.get(done, 0)}/{f.get(of, 0)}"

    def total(prefix: str) -> int:
        return sum(v for k, v in f.items() if k.startswith(prefix))

    rows = {
        "inrun": [("runs changing their process (chdir, fds 0-2, sys streams, os.environ): own "
                   "status and own log", share("inrun: runs with their own status and log",
                                               "inrun: runs"))],
        "streams": [("launches with closed (or failing) standard streams that ran as usual",
                     share("streams: launches that ran as usual", "streams: launches"))],
        "longruns": [("N runs of T s on N workers: worst journal span / T (want < 1.5)",
                      f"{f.get('longruns: worst span / T', '-')} over "
                      f"{f.get('longruns: N runs of T s on N workers', 0)} rounds"),
                     ("short runs behind long ones: least lead on the first long run (s)",
                      f"{f.get('longruns: least time the short runs finished before a long run (s)', '-')}"
                      f" over {f.get('longruns: experiments with runs behind long ones', 0)} "
                      "experiments"),
                     ("small experiments with varied run times (every run once)",
                      f.get("longruns: small experiments with varied run times", 0))],
        "fresh": [("second drivers (--fresh, resume) refused while one runs",
                   share("fresh: second drivers refused", "fresh: second drivers started")),
                  ("slowest refusal (s)", f.get("fresh: slowest refusal (s)", "-"))],
        "dask": [("Dask scheduler deaths (kill -9 / SIGTERM), driver out with one line",
                  f"{f.get('dask: scheduler deaths (SIGKILL)', 0)} / "
                  f"{f.get('dask: scheduler deaths (SIGTERM)', 0)}"),
                 ("slowest stop after the scheduler died (s)",
                  f.get("dask: slowest stop after the scheduler died (s)", "-")),
                 ("Dask experiments completed by the rerun",
                  f.get("dask: experiments completed", 0)),
                 *[(f"{k.split(': ', 1)[1]} (not promised)", v) for k, v in f.items()
                   if k.startswith("dask: frozen scheduler")]],
        "bigjournal": [("huge journal: lines / MiB", f"{f.get('bigjournal: journal lines', 0):,}"
                        f" / {f.get('bigjournal: journal MiB', 0)}"),
                       *[(f"huge journal: {k.split(': ', 1)[1]}", v) for k, v in f.items()
                         if k.startswith("bigjournal: ") and ("(s)" in k or "RSS" in k)],
                       *[(f"huge journal: {s} while {w}: exit 130", share(
                           f"bigjournal: {s} while {w}: exit 130", f"bigjournal: {s} while {w}"))
                         for s, w in (("SIGINT", "resuming"), ("SIGINT", "running"),
                                      ("SIGTERM", "resuming"))]],
        "signals": [("SIGTERM / SIGHUP survived (exit 130)",
                     f"{f.get('signals: SIGTERM survived (exit 130)', 0)} / "
                     f"{f.get('signals: SIGHUP survived (exit 130)', 0)}"),
                    ("SIGHUP under nohup, run to the end", f.get("signals: SIGHUPs under nohup", 0)),
                    ("slowest exit after SIGTERM or SIGHUP (s)",
                     f.get("signals: slowest exit (s)", "-")),
                    ("SIGTERM/SIGHUP deaths by the default disposition before the journal was "
                     "opened", f.get("signals: died by the default disposition before the "
                                     "journal was opened", 0))],
        "leftovers": [("processes left by runs (8 kinds)", total("leftovers: left by runs: ")),
                      ("scenarios (end / worker deaths / SIGINT / SIGTERM / kill -9)",
                       " / ".join(str(f.get(f"leftovers: scenarios ({s})", 0)) for s in
                                  ("end", "worker deaths", "SIGINT", "SIGTERM", "kill -9"))),
                      ("left alive after exp exited (must be 0)",
                       f.get("leftovers: alive after exp exited", 0)),
                      ("left alive after kill -9 of the driver (not promised)",
                       f.get("leftovers: alive after kill -9 of the driver (not promised)", 0))],
    }
    return [row for phase, phase_rows in rows.items() if phase in report.seconds
            for row in phase_rows]


def table(report: Report, command: str) -> str:
    f = report.figures
    fuzz_total = sum(v for k, v in f.items() if k.startswith("fuzz cases"))
    lost = sum(v for k, v in f.items() if k.endswith("results lost"))
    dups = sum(v for k, v in f.items() if k.endswith("duplicates"))
    hangs = sum(v for k, v in f.items() if k.endswith("hangs"))
    rows = [("command", f"`{command}`"), ("seed", report.seed),
            ("kill -9 of the driver survived", f.get("kill -9: survived", 0)),
            ("gopt kill -9 survived (n = 40 each)", f.get("gopt kill -9: survived", 0)
             if not any(n.startswith("gopt kills skipped") for n in report.notes)
             else "skipped (see notes)"),
            ("gopt experiments completed", f.get("gopt: experiments completed", 0)),
            ("gopt optimiser states compared with the journal (equal)", f.get("gopt: optimiser states compared", 0)),
            ("SIGINTs survived (exit 130 within 5 s)", f.get("sigint: survived", 0)),
            ("slowest exit after SIGINT (s)", f.get("sigint: slowest exit (s)", "-")),
            ("SIGINT exits by the default disposition (-2, shell shows 130)",
             f.get("sigint: died of SIGINT outside exp", 0)),
            *[(f"faults injected: {k}", f.get(f"faults injected: {k}", 0)) for k in FAULTS],
            ("faults: runs with the right status", f.get("faults: runs with the right status", "-")),
            ("faults: driver RSS early / late peak (MiB)",
             f.get("faults: driver RSS early/late peak (MiB)", "-")),
            *[(k, v) for k, v in sorted(f.items()) if k.startswith("fuzz cases")],
            ("fuzz cases in all", fuzz_total),
            ("disk scenarios", f.get("disk: scenarios", 0)),
            *new_phase_rows(report),
            ("results lost (must be 0)", lost), ("duplicates (must be 0)", dups),
            ("hangs (must be 0)", hangs),
            ("violations (distinct kinds)", len(report.kinds())),
            ("seconds by phase", ", ".join(f"{k} {v}" for k, v in report.seconds.items()))]
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--quick", action="store_true", help="a few kills, a few hundred fuzz cases")
    ap.add_argument("--only", nargs="+", choices=PHASES, default=list(PHASES))
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", type=Path, help="write figures and violations here")
    args = ap.parse_args(argv)
    command = "python stress/campaign.py --seed " + str(args.seed) + (" --quick" if args.quick else "")
    if args.only != list(PHASES):
        command += " --only " + " ".join(args.only)
    report = campaign(args.seed, quick=args.quick, only=tuple(args.only), work=args.work,
                      keep=args.keep)
    print(table(report, command))
    if report.notes:
        print("\nnotes:\n" + "\n".join(f"- {n}" for n in report.notes))
    if report.violations:
        print(f"\n{len(report.violations)} violation(s):")
        for v in report.violations:
            print(f"- [{v['phase']}] {v['kind']}: {v['detail'][:400]}\n  repro: {v['repro'][:600]}")
    if args.json:
        args.json.write_text(json.dumps({"seed": report.seed, "quick": report.quick,
                                         "figures": dict(report.figures),
                                         "violations": report.violations, "notes": report.notes,
                                         "seconds": report.seconds}, indent=1, default=str))
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
