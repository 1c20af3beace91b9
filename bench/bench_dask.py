"""Dispatch overhead per run: exp's local pool against a local Dask cluster, in one run.

    python bench/bench_dask.py [--runs 400] [--repeat 3]

Both engines run the same trivial runnable with 2 parallel slots (2 local
workers; a LocalCluster of 2 worker processes with 1 thread each, on
127.0.0.1) and write the same journal. Reported: the median wall time of the
dispatch phase (journal timestamps, first run start to last run end) per run.
Cluster and worker start-up are excluded and reported separately.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import exp  # noqa: E402


def dispatch_seconds(journal: Path) -> float:
    lines = [json.loads(x) for x in journal.read_text().splitlines()[1:] if x.strip()]
    return max(r["end"] for r in lines) - min(r["start"] for r in lines)


def measure(space: Path, job: Path, runs: int, repeat: int, **kwargs) -> list[float]:
    out = []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            records = exp.run_experiment(space, str(job), out=d, quiet=True, **kwargs)
            assert len(records) == runs and all(r["status"] == "ok" for r in records)
            out.append(dispatch_seconds(Path(d) / f"{space.stem}.jsonl") / runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from distributed import LocalCluster
    with tempfile.TemporaryDirectory() as d:
        space = Path(d) / "s.toml"
        space.write_text(f'[x]\ntype = "range"\nbounds = [0, {args.runs}]\ndtype = "int"\n')
        job = Path(d) / "job.py"
        job.write_text("def run(x):\n    return x + 1\n")
        local = measure(space, job, args.runs, args.repeat, workers=2)
        t0 = time.monotonic()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0") as cluster:
            started = time.monotonic() - t0
            remote = measure(space, job, args.runs, args.repeat, cluster=cluster.scheduler_address)
    lm, rm = statistics.median(local) * 1e3, statistics.median(remote) * 1e3
    print(f"| engine | ms per run (median of {args.repeat}) | runs/s |")
    print("| --- | --- | --- |")
    print(f"| exp local pool, 2 workers | {lm:.3f} | {1e3 / lm:,.0f} |")
    print(f"| exp on LocalCluster, 2 workers x 1 thread | {rm:.3f} | {1e3 / rm:,.0f} |")
    print(f"\nDask adds {rm - lm:.2f} ms per run ({rm / lm:.0f}x the local pool's dispatch); "
          f"LocalCluster start-up {started:.1f} s, not counted.")


if __name__ == "__main__":
    main()
