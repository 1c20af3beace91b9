"""Tests of exp report: the HTML file of every kind of journal, opened in real headless
Chromium (Debian's chromium package; CI installs it), driven over the DevTools
protocol on a pipe (no port, no driver): no script error, every section drawn,
the table sorts and filters, nothing in the data runs as markup. A screenshot of
each report is kept beside it (and in $EXP_ARTIFACTS when set)."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import exp

pytest.importorskip("skopt", reason="the report needs the gopt extra")
import exp_gopt  # noqa: E402

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE)}
CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which(
    "chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--force-device-scale-factor=1", "--hide-scrollbars",
         "--mute-audio", "--no-default-browser-check", "--disable-extensions",
         "--password-store=basic", "--disable-features=Translate,MediaRouter,OptimizationHints",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost"]


# ─── a headless Chromium over --remote-debugging-pipe ────────────────────────


class Browser:
    """Chromium reads DevTools commands from fd 3 and writes replies and events to fd 4,
    each a JSON object ended by a NUL byte. One reader thread files them; every wait
    has a deadline and notices a dead browser."""

    def __init__(self) -> None:
        if CHROMIUM is None:
            if os.environ.get("CI"):
                pytest.fail("CI must have chromium (apt-get install chromium)")
            pytest.skip("no chromium on this machine (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="exp-chromium-")
        import fcntl
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()
        child = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, res_w)]
        log = os.open(os.path.join(self.profile, "stderr.log"), os.O_WRONLY | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            self.pid = os.posix_spawn(CHROMIUM, [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                                 "--remote-debugging-pipe", "about:blank"],
                                      os.environ, setsid=True, file_actions=[
                                          (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                                          (os.POSIX_SPAWN_DUP2, log, 2),
                                          (os.POSIX_SPAWN_DUP2, child[0], 3),
                                          (os.POSIX_SPAWN_DUP2, child[1], 4)])
        finally:
            for fd in (cmd_r, res_w, *child, log, null):
                os.close(fd)
        self.cv = threading.Condition()
        self.replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self.dead: str | None = None
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target,
                                                           "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def _read(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self.res_r, 1 << 20):
                *whole, pending = (pending + chunk).split(b"\0")
                for part in whole:
                    msg = json.loads(part)
                    with self.cv:
                        (self.replies.__setitem__(msg["id"], msg) if "id" in msg
                         else self.events.append(msg))
                        self.cv.notify_all()
        except OSError:
            pass
        with self.cv:
            self.dead = "the browser closed its pipe"
            self.cv.notify_all()

    def _wait(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.cv:
            while (value := ready()) is None:
                left = deadline - time.monotonic()
                if self.dead or left <= 0:
                    raise AssertionError(f"{what}: {self.dead or f'no answer in {timeout}s'}")
                self.cv.wait(left)
            return value

    def send(self, method: str, params: dict | None = None, *, session: bool = False,
             timeout: float = 60) -> dict:
        with self.cv:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.cmd_w, data):]
        reply = self._wait(lambda: self.replies.pop(mid, None), timeout, method)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    def open(self, path: Path, timeout: float = 60) -> float:
        """Load a file and wait until the report says it is drawn; seconds it took."""
        mark = len(self.events)
        t0 = time.monotonic()
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self._wait(lambda: next((e for e in self.events[mark:]
                                 if e["method"] == "Page.loadEventFired"), None),
                   timeout, "load")
        while not self.js("window.__rendered === true"):
            assert time.monotonic() - t0 < timeout, "the report never said it was drawn"
            time.sleep(0.02)
        return time.monotonic() - t0

    def js(self, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        return res["result"].get("value")

    def errors(self) -> list[str]:
        """Script exceptions, console errors and failed loads, as the page logged them."""
        found = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                found.append(d.get("exception", {}).get("description") or d.get("text"))
            elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                found.append(p["entry"]["text"])
        return found

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre."""
        x, y = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                   "clickCount": 1}, session=True)

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        for ch in text:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch},
                      session=True)
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch}, session=True)

    def screenshot(self, path: Path) -> None:
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": size["width"],
                                                             "height": size["height"], "scale": 1}},
                         session=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        if os.environ.get("EXP_ARTIFACTS"):
            Path(os.environ["EXP_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(os.environ["EXP_ARTIFACTS"]) / path.name)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except AssertionError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.waitid(
                os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            time.sleep(0.05)
        try:
            os.killpg(self.pid, signal.SIGKILL)  # renderers and zygotes with it
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.cmd_w)
        os.close(self.res_r)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


# ─── helpers ─────────────────────────────────────────────────────────────────


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exp", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=240, **kw)


def look(browser: Browser, journal: Path, **kw) -> dict:
    """Write the report, open it, check what every report must hold; what it showed."""
    html = exp_gopt.report(journal, **kw)
    assert html.exists() and html.suffix == ".html"
    text = html.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    browser.events.clear()
    seconds = browser.open(html)
    assert browser.errors() == []
    shown = browser.js("""(() => {
        const sections = [...document.querySelectorAll("main > section")].map(s => ({
            id: s.id, failed: !!s.querySelector(".err"),
            canvases: [...s.querySelectorAll("canvas")].map(c => {
                const g = c.getContext("2d"), d = g.getImageData(0, 0, c.width, c.height).data;
                let ink = 0;
                for (let k = 3; k < d.length; k += 4 * 97) if (d[k] > 0) ink++;
                return {w: c.width, h: c.height, ink};
            })}));
        return {sections, title: document.getElementById("title").textContent,
                rows: document.querySelectorAll("#runs-table tbody tr[data-row]").length,
                count: (document.getElementById("count") || {}).textContent};
    })()""")
    for s in shown["sections"]:
        assert not s["failed"], s["id"]
        for c in s["canvases"]:
            assert c["w"] > 100 and c["h"] > 50 and c["ink"] > 20, (s["id"], c)
    browser.screenshot(html.with_suffix(".png"))
    shown["seconds"] = seconds
    shown["ids"] = [s["id"] for s in shown["sections"]]
    return shown


def visible_ids(browser: Browser) -> list[int]:
    return browser.js("[...document.querySelectorAll('#runs-table tbody tr[data-row]')]"
                      ".map(r => +r.dataset.id)")


SPACE = """
[lr]
type = "random"
bounds = [0.0001, 1.0]
prior = "log-uniform"
n = 4
[layers]
type = "range"
bounds = [1, 4]
dtype = "int"
[kind]
type = "list"
value = ["mlp", "cnn", "rnn"]
"""

TRAIN = """
import math, sys, time, exp

def run(lr, layers, kind):
    if kind == "cnn" and layers == 3:
        print("about to fail", file=sys.stderr)
        raise ValueError("no cnn of 3 layers")
    loss = None
    for epoch in range(1, 7):
        loss = abs(math.log10(lr) + 2) / epoch + layers * 0.1 + (kind == "rnn")
        exp.report(epoch, loss=loss, acc=1 / (1 + loss))
        time.sleep(0.002)
    return {"loss": loss, "acc": 1 / (1 + loss)}
"""


# ─── every kind of journal ───────────────────────────────────────────────────


@pytest.mark.timeout(300)
def test_grid_with_repeats_reports_failures_and_logs(tmp_path, browser):
    write(tmp_path / "s.toml", SPACE)
    write(tmp_path / "train.py", TRAIN)
    out = cli("run", "-p", "s.toml", "-m", "train.py", "-w", "2", "-r", "2", "--seed", "1",
              "--objective", "loss", "--prune", "median", "--min-step", "3", "--report",
              cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # some runs fail, by design
    assert "report s.html" in out.stderr
    shown = look(browser, tmp_path / "s.jsonl")
    assert shown["ids"] == ["overview", "runs", "history", "parallel", "slices", "importance",
                            "curves", "timeline", "failures"]
    assert 0 < shown["rows"] < 60  # only the rows in view are in the document
    records = exp.read_journal(tmp_path / "s.jsonl")
    failed = [r for r in records if r["status"] == "failed"]
    assert failed
    # the failures name their error and show the end of their log
    text = browser.js("document.getElementById('failures').textContent")
    assert "ValueError: no cnn of 3 layers" in text and "about to fail" in text
    # grouping repeats: a row per configuration, mean ± sd
    before = browser.js("document.getElementById('count').textContent")
    browser.click("#group")
    after = browser.js("document.getElementById('count').textContent")
    assert "configurations" in after and after != before
    assert "±" in browser.js("document.querySelector('#runs-table tbody').textContent")
    browser.click("#group")
    # the best runs by the recorded objective, lowest loss first
    best = browser.js("[...document.querySelectorAll('#best tr')].slice(1).map(r => +r.cells[0].textContent)")
    loss = {r["id"]: r["result"]["loss"] for r in records if r["status"] == "ok"}
    assert min(loss.values()) == loss[best[0]]


@pytest.mark.timeout(300)
def test_table_sorts_and_filters(tmp_path, browser):
    write(tmp_path / "s.toml", SPACE)
    write(tmp_path / "train.py", TRAIN)
    assert cli("run", "-p", "s.toml", "-m", "train.py", "-w", "2", "--seed", "2", "-q",
               cwd=tmp_path).returncode == 1
    look(browser, tmp_path / "s.jsonl", objective="acc", maximize=True)
    records = exp.read_journal(tmp_path / "s.jsonl")
    first = visible_ids(browser)
    assert first[:3] == [0, 1, 2]  # by id, as journaled
    acc = {r["id"]: r["result"]["acc"] for r in records if r["status"] == "ok"}
    browser.click('#runs-table th[data-col="acc"]')
    assert acc[visible_ids(browser)[0]] == min(acc.values())
    browser.click('#runs-table th[data-col="acc"]')  # again: the other way
    assert acc[visible_ids(browser)[0]] == max(acc.values())
    # a status box, then text: fewer rows, the count says so
    browser.click('input[data-status="failed"]')
    shown = browser.js("document.getElementById('count').textContent")
    n_ok = sum(r["status"] == "ok" for r in records)
    assert shown.startswith(f"{n_ok} of {len(records)}")
    browser.click('input[data-status="failed"]')
    browser.type("#runs input[type=search]", "rnn")
    time.sleep(0.3)
    rows = browser.js("[...document.querySelectorAll('#runs-table tbody tr[data-row]')]"
                      ".map(r => r.textContent)")
    assert rows and all("rnn" in r for r in rows)
    assert len(rows) == sum(r["params"]["kind"] == "rnn" for r in records)


@pytest.mark.timeout(300)
def test_search_of_several_objectives_has_its_front(tmp_path, browser):
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0.0, 1.0]\n'
                               '[y]\ntype = "range"\nbounds = [0.0, 1.0]\n')
    write(tmp_path / "two.py", "def run(x, y):\n"
                               "    return {'a': x, 'b': (1 - x) ** 2 + y, 'mem': 100 * y}\n")
    assert cli("gopt", "-p", "s.toml", "-m", "two.py", "-n", "16", "-w", "2", "--seed", "1",
               "--objective", "a", "--objective", "b", "--constraint", "mem <= 50", "-q",
               "--report", cwd=tmp_path).returncode == 0
    shown = look(browser, tmp_path / "s-gopt.jsonl")
    assert "pareto" in shown["ids"] and "curves" not in shown["ids"]
    note = browser.js("document.getElementById('pareto').textContent")
    front = exp.pareto(tmp_path / "s-gopt.jsonl")
    assert f"{len(front.table.rows)} non-dominated of {front.feasible} feasible" in note
    # a search draws its model's partial dependence in the slices
    assert "partial dependence" in browser.js("document.getElementById('slices').textContent")


@pytest.mark.timeout(300)
def test_only_failures_a_single_run_and_only_categories(tmp_path, browser):
    write(tmp_path / "s.toml", '[kind]\ntype = "list"\nvalue = ["a", "b", "c"]\n'
                               '[mode]\ntype = "list"\nvalue = ["x", "y"]\n')
    write(tmp_path / "bad.py", "def run(kind, mode):\n    raise RuntimeError(kind + mode)\n")
    assert cli("run", "-p", "s.toml", "-m", "bad.py", "-q", "--name", "bad",
               cwd=tmp_path).returncode == 1
    shown = look(browser, tmp_path / "bad.jsonl")
    assert "6 failed" in browser.js("document.getElementById('overview').textContent")
    assert "RuntimeError: cy" in browser.js("document.getElementById('failures').textContent")
    assert shown["rows"] == 6
    write(tmp_path / "cat.py", "def run(kind, mode):\n    return {'score': ord(kind) - ord(mode)}\n")
    assert cli("run", "-p", "s.toml", "-m", "cat.py", "-q", "--name", "cat",
               "--objective", "score", cwd=tmp_path).returncode == 0
    shown = look(browser, tmp_path / "cat.jsonl")
    assert {"parallel", "slices", "importance"} <= set(shown["ids"])
    write(tmp_path / "one.toml", '[x]\ntype = "value"\nvalue = 3\n')
    write(tmp_path / "one.py", "def run(x):\n    return x * 2\n")
    assert cli("run", "-p", "one.toml", "-m", "one.py", "-q", cwd=tmp_path).returncode == 0
    shown = look(browser, tmp_path / "one.jsonl")
    assert shown["rows"] == 1
    assert "No parameter varies" in browser.js("document.getElementById('parallel').textContent")


@pytest.mark.timeout(300)
def test_a_journal_still_being_written(tmp_path, browser):
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 400]\n')
    write(tmp_path / "slow.py", "import time\ndef run(x):\n    time.sleep(0.05)\n    return x\n")
    proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "slow.py",
                             "-w", "2", "-q"], cwd=tmp_path, env=ENV)
    try:
        journal = tmp_path / "s.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists()
                                               or len(exp.read_journal(journal)) < 10):
            time.sleep(0.05)
        look(browser, journal)
        assert "still running" in browser.js("document.getElementById('subtitle').textContent")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    # interrupted with --report: written all the same
    proc = subprocess.Popen([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "slow.py",
                             "-w", "2", "--report"], cwd=tmp_path, env=ENV,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "report s.html" in err, err
    assert (tmp_path / "s.html").exists()


@pytest.mark.timeout(300)
def test_nothing_in_the_data_runs_as_markup(tmp_path, browser):
    evil = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
    write(tmp_path / "s.toml", '[tag]\ntype = "list"\nvalue = [' + json.dumps(evil) +
          ', "it\'s \\"quoted\\" & <b>bold</b>"]\n')
    write(tmp_path / "e.py", "def run(tag):\n"
                             "    if 'script' in tag:\n"
                             "        raise ValueError(tag)\n"
                             "    return {'<i>score</i>': 1.0, 'ok': 2.0}\n")
    cli("run", "-p", "s.toml", "-m", "e.py", "-q", "--name", "</title><script>x=1</script>",
        cwd=tmp_path)
    journals = list(tmp_path.glob("*.jsonl"))
    if not journals:  # the name is refused; a plain one then
        assert cli("run", "-p", "s.toml", "-m", "e.py", "-q", cwd=tmp_path).returncode == 1
        journals = [tmp_path / "s.jsonl"]
    look(browser, journals[0])
    assert browser.js("window.__pwned === undefined")
    assert browser.js("document.querySelectorAll('main script, main img').length") == 0
    body = browser.js("document.body.textContent")
    assert evil in body and "it's \"quoted\" & <b>bold</b>" in body and "<i>score</i>" in body


@pytest.mark.timeout(300)
def test_many_runs_stay_responsive(tmp_path, browser):
    """A synthetic search of 5,000 runs: drawn, the table holds only what is in view,
    sorting reorders it."""
    write(tmp_path / "s.toml", SPACE)
    write(tmp_path / "sq.py", "def run(lr, layers, kind):\n    return {'loss': lr * layers}\n")
    assert cli("gopt", "-p", "s.toml", "-m", "sq.py", "-n", "3", "-q", "--seed", "1", "--objective", "loss",
               cwd=tmp_path).returncode == 0
    journal = tmp_path / "s-gopt.jsonl"
    header = journal.read_text().splitlines()[0]
    rng = random.Random(0)
    with open(journal, "w") as f:
        f.write(header + "\n")
        for i in range(5000):
            lr, layers, kind = 10 ** rng.uniform(-4, 0), rng.randint(1, 4), rng.choice(
                ["mlp", "cnn", "rnn"])
            f.write(json.dumps({"id": i, "run": 1, "status": "ok" if i % 50 else "failed",
                                "result": {"loss": lr * layers + rng.random() * 0.01},
                                "params": {"lr": lr, "layers": layers, "kind": kind},
                                "error": None if i % 50 else "Boom\n", "worker": i % 4,
                                "gpu": None, "start": 1e9 + i, "end": 1e9 + i + 3.5,
                                "seconds": 3.5}) + "\n")
    t0 = time.perf_counter()
    shown = look(browser, journal)
    assert time.perf_counter() - t0 < 60
    assert shown["rows"] < 60
    browser.click('#runs-table th[data-col="loss"]')
    loss = {r["id"]: r["result"]["loss"] for r in exp.read_journal(journal) if r["status"] == "ok"}
    assert loss[visible_ids(browser)[0]] == min(loss.values())
