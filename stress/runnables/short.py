"""Short runs for the kill and SIGINT phases: 1 to 50 ms each, a checkable result."""

import time
import zlib


def run(i, salt, **kwargs):
    time.sleep(duration_ms(i, salt) / 1000)
    return expected(i, salt)


def duration_ms(i, salt):
    return 1 + zlib.crc32(f"{salt}-{i}".encode()) % 50


def expected(i, salt):
    """What run() returns: lets the campaign catch a result pinned on the wrong run."""
    return i * 1000 + salt
