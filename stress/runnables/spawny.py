"""A third of the runs start a short Python (20-50 ms of work), the rest return at once.

Run times that vary like this make the local pool take runs back from a busy
worker's queue at the end of an experiment, while more of its batches are
still on their way to it.
"""

import subprocess
import sys
import zlib


def run(i, salt, **kwargs):
    if zlib.crc32(f"{salt}-{i}".encode()) % 3 == 0:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    return i * 1000 + salt
