"""Runs that leave processes behind; the plan (run -> kind, then) is a JSON file.

Every process a run starts is a Python that sleeps, with the plan's marker and
the run's id in its command line (``python -c CODE MARKER SECONDS run=ID``), so
it can be found, and told whose it is, even where it cleared its environment. Kinds (see stress/campaign.py, LEFTOVERS):

group         a child in the worker's process group
session       a child in a new session
daemon        a daemon: a child that starts one in a new session and exits
daemon_noenv  the same, the daemon with an empty environment (no EXP_STRESS_TAG)
stubborn      a child in a new session that ignores SIGTERM, SIGHUP and SIGINT
pgroup        a child in a process group of its own (same session)
hopper        a daemon that forks a new generation and exits, every 50 ms
kept          a child the module keeps for the runs after it (a pool); every run
              checks that the ones kept earlier on this worker still live

then: return, raise, crash (os._exit(3)), hang (past --timeout).
"""

import json
import os
import signal
import subprocess
import sys
import time

_plan = None
KEPT = []

SLEEPER = "import sys, time; time.sleep(float(sys.argv[2]))"
STUBBORN = ("import signal, sys, time\n"
            "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
            "    signal.signal(s, signal.SIG_IGN)\n"
            "time.sleep(float(sys.argv[2]))")
DAEMON = ("import subprocess, sys\n"
          "env = {} if sys.argv[4] == 'noenv' else None\n"
          "subprocess.Popen([sys.executable, '-c', sys.argv[5], *sys.argv[1:4]],\n"
          "                 start_new_session=True, env=env)")
HOPPER = ("import os, sys, time\n"
          "end = time.time() + float(sys.argv[2])\n"
          "os.setsid()\n"
          "while time.time() < end:\n"
          "    if os.fork():\n"
          "        os._exit(0)\n"
          "    time.sleep(0.05)\n")


def _load(plan):
    global _plan
    if _plan is None:
        with open(plan) as f:
            _plan = json.load(f)
    return _plan


def leave(kind, marker, linger, who):
    py = sys.executable
    tail = [marker, linger, who]
    if kind == "group":
        subprocess.Popen([py, "-c", SLEEPER, *tail])
    elif kind == "session":
        subprocess.Popen([py, "-c", SLEEPER, *tail], start_new_session=True)
    elif kind in ("daemon", "daemon_noenv"):
        subprocess.Popen([py, "-c", DAEMON, *tail, "noenv" if kind == "daemon_noenv" else "env",
                          SLEEPER]).wait()
    elif kind == "stubborn":
        subprocess.Popen([py, "-c", STUBBORN, *tail], start_new_session=True)
    elif kind == "pgroup":
        subprocess.Popen([py, "-c", SLEEPER, *tail], process_group=0)
    elif kind == "hopper":
        subprocess.Popen([py, "-c", HOPPER, *tail]).wait()
    elif kind == "kept":
        KEPT.append(subprocess.Popen([py, "-c", SLEEPER, *tail]))
    elif kind != "none":
        raise AssertionError(f"unknown kind {kind!r}")


def run(i, salt, plan, **kwargs):
    p = _load(plan)
    kind, then = p["runs"][i]
    dead = [k.pid for k in KEPT if k.poll() is not None]
    if dead:  # between runs of one worker, what a run keeps must be left alone
        raise RuntimeError(f"children kept by earlier runs of this worker died: {dead}")
    leave(kind, p["marker"], str(p["linger_s"]), f"run={i}")
    if then == "raise":
        raise ValueError(f"injected failure in run {i}")
    if then == "crash":
        os._exit(3)
    if then == "hang":
        time.sleep(3600)
    return i * 1000 + salt
