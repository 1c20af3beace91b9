"""Start-up cost: `exp --help` and `import exp` against the bare interpreter and the peers' imports.

    python bench/bench_startup.py [--repeat 30]

Each command is a whole process, timed from launch to exit; the table gives
the median and the cost over the bare interpreter (`python -c pass`). Byte
code is cached first (a fresh PYTHONPYCACHEPREFIX), as it is for an
installed package.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def median_seconds(cmd: list[str], env: dict, repeat: int) -> float:
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp()
    env["PYTHONPATH"] = str(REPO)
    py = sys.executable
    cases = [("python -c pass", [py, "-c", "pass"]),
             ("exp --help", [py, "-c", "import sys, exp; sys.exit(exp.main(['--help']))"]),
             ("python -m exp --help", [py, "-m", "exp", "--help"]),
             ("import exp", [py, "-c", "import exp"])]
    for name, module in [("import optuna", "optuna"), ("import ray.tune", "ray.tune"),
                         ("import hydra", "hydra"), ("import skopt", "skopt")]:
        probe = subprocess.run([py, "-c", f"import {module}"], env=env, capture_output=True)
        if probe.returncode == 0:
            cases.append((name, [py, "-c", f"import {module}"]))
    results = {name: median_seconds(cmd, env, args.repeat) for name, cmd in cases}
    bare = results["python -c pass"]
    print("| command | median ms | over the bare interpreter, ms |")
    print("| --- | ---: | ---: |")
    for name, t in results.items():
        print(f"| `{name}` | {t * 1e3:.1f} | {(t - bare) * 1e3:+.1f} |")


if __name__ == "__main__":
    main()
