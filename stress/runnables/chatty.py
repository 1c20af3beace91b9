"""Runs that write to stdout and stderr, from Python and from a subprocess (fd level)."""

import os
import sys


def run(i, salt, **kwargs):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    os.system(f"echo sub {i}")
    return i * 1000 + salt
