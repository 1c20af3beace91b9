"""exp report at scale: synthetic searches of 10,000 and 50,000 runs (four parameters,
one of them log-uniform, one a list; two metrics; 2% failures; eight workers), the
time to write the report, its size, the time until headless Chromium has drawn it,
and the time a sort of the table takes there.

    python bench/bench_report.py                 # 10,000 and 50,000 runs, 3 repeats
    python bench/bench_report.py --runs 1000 --repeats 1

Needs the gopt extra and Debian's chromium. Prints a markdown table (medians).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import exp  # noqa: E402
import exp_gopt  # noqa: E402
from test_report import Browser  # noqa: E402  (the tests' DevTools client)

SPACE = """
[lr]
type = "random"
bounds = [0.0001, 1.0]
prior = "log-uniform"
[layers]
type = "range"
bounds = [1, 8]
dtype = "int"
[dropout]
type = "range"
bounds = [0.0, 0.5]
[kind]
type = "list"
value = ["mlp", "cnn", "rnn", "transformer"]
"""


def synthetic(folder: Path, n: int) -> Path:
    """A search journal of n runs: a real header (exp gopt wrote it), then n records
    as exp writes them."""
    (folder / "s.toml").write_text(SPACE)
    (folder / "job.py").write_text("def run(lr, layers, dropout, kind):\n"
                                   "    return {'loss': lr * layers + dropout, 'acc': 0.5}\n")
    subprocess.run([sys.executable, "-m", "exp", "gopt", "-p", "s.toml", "-m", "job.py",
                    "-n", "2", "-q", "--objective", "loss", "--seed", "1"], cwd=folder,
                   check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    journal = folder / "s-gopt.jsonl"
    header = journal.read_text().splitlines()[0]
    rng = random.Random(n)
    t = 1.7e9
    with open(journal, "w") as f:
        f.write(header + "\n")
        for i in range(n):
            lr, layers = 10 ** rng.uniform(-4, 0), rng.randint(1, 8)
            dropout, kind = rng.uniform(0, 0.5), rng.choice(["mlp", "cnn", "rnn", "transformer"])
            loss = abs(lr - 0.01) * 10 + layers * 0.02 + dropout * rng.random()
            seconds = rng.uniform(2, 40)
            bad = rng.random() < 0.02
            f.write(exp._dumps({"id": i, "run": 1, "status": "failed" if bad else "ok",
                                "result": None if bad else {"loss": loss, "acc": 1 / (1 + loss)},
                                "params": {"lr": lr, "layers": layers, "dropout": dropout,
                                           "kind": kind},
                                "error": f"Traceback ...\nRuntimeError: CUDA out of memory ({layers})\n"
                                if bad else None, "worker": i % 8, "gpu": str(i % 8),
                                "start": t, "end": t + seconds, "seconds": seconds}) + "\n")
            t += seconds / 8
    return journal


def measure(n: int, repeats: int, browser: Browser) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        journal = synthetic(Path(tmp), n)
        write, render, sort = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            html = exp_gopt.report(journal)
            write.append(time.perf_counter() - t0)
            browser.events.clear()
            render.append(browser.open(html, timeout=300))
            assert browser.errors() == [], browser.errors()
            sort.append(browser.js("""(() => {
                const th = document.querySelector('#runs-table th[data-col="loss"]');
                const t0 = performance.now(); th.click(); return (performance.now() - t0) / 1000;
            })()"""))
            top = browser.js("+document.querySelector('#runs-table tbody tr[data-row]').dataset.id")
            best = min((r for r in exp.read_journal(journal) if r["status"] == "ok"),
                       key=lambda r: r["result"]["loss"])
            assert top == best["id"], (top, best["id"])
        return {"runs": n, "write": statistics.median(write), "render": statistics.median(render),
                "sort": statistics.median(sort), "mb": html.stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    browser = Browser()
    try:
        rows = [measure(n, args.repeats, browser) for n in args.runs]
    finally:
        browser.close()
    print("| runs | write (s) | size (MB) | drawn in Chromium (s) | sort by a metric (s) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['runs']:,} | {r['write']:.2f} | {r['mb']:.1f} | {r['render']:.2f} | "
              f"{r['sort']:.3f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
