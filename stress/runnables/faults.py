"""One experiment, many kinds of worker faults; the plan (run -> fault) is a JSON file.

Kinds and the status each must end with (see stress/campaign.py, FAULTS):
ok, raise, exit, sigkill, segfault, loop, memhog, flood, fork, fork_exit.
"""

import json
import os
import resource
import signal
import sys
import time

_plan = None


def _kind(plan, i):
    global _plan
    if _plan is None:
        with open(plan) as f:
            _plan = json.load(f)
    return _plan["kinds"][i], _plan


def run(i, plan, **kwargs):
    kind, p = _kind(plan, i)
    if kind == "ok":
        time.sleep(0.002)
        return i
    if kind == "raise":
        raise ValueError(f"injected failure in run {i}")
    if kind == "exit":
        os._exit(3)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "segfault":
        import ctypes
        ctypes.string_at(0)
    if kind == "loop":
        while True:
            pass
    if kind == "memhog":
        # Bounded so the machine stays safe: the address space may grow by at
        # most MEMHOG_MB more than this worker already uses.
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (vm + p["memhog_mb"] * 2**20, hard))
        chunks = []
        while True:
            chunks.append(bytearray(8 * 2**20))
    if kind == "flood":
        block = ("x" * 1023 + "\n") * 1024  # 1 MiB
        for _ in range(p["flood_mb"]):
            sys.stdout.write(block)
        sys.stdout.flush()
        return i
    if kind in ("fork", "fork_exit"):
        child = os.fork()
        if child == 0:  # the grandchild lingers a bounded time, holding what it inherited
            time.sleep(p["fork_linger_s"])
            os._exit(0)
        if kind == "fork_exit":
            os._exit(0)
        return i
    raise AssertionError(f"unknown fault kind {kind!r}")
