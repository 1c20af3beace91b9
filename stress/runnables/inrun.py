"""Runs that change their own process before they return or raise; the plan is a JSON file.

Each run prints a line to stdout and one to stderr first, then makes its change
(its kind, see stress/campaign.py, INRUN), then returns ``i * 1000 + salt`` or
raises, as the plan says. The campaign checks that each run's status is its own
and that each run's log holds its own lines, whatever the run before it did.
"""

import json
import os
import sys
import tempfile

_plan = None


def _load(plan):
    global _plan
    if _plan is None:
        with open(plan) as f:
            _plan = json.load(f)
    return _plan


def change(kind, p):
    """Do what the kind says to this process."""
    if kind == "none":
        return
    if kind == "chdir":
        os.chdir(p["elsewhere"])
    elif kind == "chdir_root":
        os.chdir("/")
    elif kind == "chdir_gone":  # into a folder that is then removed: getcwd() fails after
        gone = tempfile.mkdtemp(dir=p["elsewhere"])
        os.chdir(gone)
        os.rmdir(gone)
    elif kind == "close0":
        os.close(0)
    elif kind == "close1":
        os.close(1)
    elif kind == "close2":
        os.close(2)
    elif kind == "close012":
        for fd in (0, 1, 2):
            os.close(fd)
    elif kind == "dup2_null":  # fds 1 and 2 pointed elsewhere, not closed
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    elif kind == "stdout_none":
        sys.stdout = None
    elif kind == "stderr_none":
        sys.stderr = None
    elif kind == "stdout_close":
        sys.stdout.close()
    elif kind == "stderr_close":
        sys.stderr.close()
    elif kind == "streams_swap":  # the Python streams replaced by other files
        sys.stdout = open(os.devnull, "w")
        sys.stderr = sys.stdout
    elif kind == "environ_clear":
        os.environ.clear()
    elif kind == "environ_junk":
        for key in ("PATH", "HOME", "TMPDIR", "PYTHONPATH", "LANG", "LC_ALL", "PWD"):
            os.environ[key] = "/nonexistent-exp-stress"
    elif kind == "environ_del":
        for key in ("PATH", "HOME", "PYTHONPATH", "PWD"):
            os.environ.pop(key, None)
    else:
        raise AssertionError(f"unknown kind {kind!r}")


def run(i, salt, plan, **kwargs):
    p = _load(plan)
    kind, then = p["runs"][i]
    print(f"run {i} {salt} begins", flush=True)
    print(f"run {i} {salt} on stderr", file=sys.stderr, flush=True)
    change(kind, p)
    try:  # after the change: may reach the log or nowhere, but must not break the run
        print(f"run {i} {salt} after {kind}", flush=True)
    except (OSError, ValueError, AttributeError):
        pass
    if then == "raise":
        raise ValueError(f"injected failure in run {i} after {kind}")
    return i * 1000 + salt
