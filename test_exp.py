"""Tests of exp.py: parameter spaces, arguments, packaging, and the runner with real processes."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

import exp
from exp import ParamDict, ParamError, ParamSpace

HERE = Path(__file__).resolve().parent
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 60,
        **kwargs) -> subprocess.CompletedProcess:
    """``python -m exp ARGS`` in a real process."""
    full_env = {**os.environ, "PYTHONPATH": str(HERE), **(env or {})}
    return subprocess.run([sys.executable, "-m", "exp", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def alive_in_group(pgid: int) -> list[str]:
    """``ps`` lines of the live processes of a process group (zombies are dead,
    only not yet reaped)."""
    ps = subprocess.run(["ps", "-eo", "pid,pgid,stat,cmd"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines()[1:]
            if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]


# ─── parameter space: loading ────────────────────────────────────────────────


def test_toml_types_load_with_defaults(tmp_path):
    f = write(tmp_path / "space.conf", """
        [a]
        type = "value"
        value = true
        [b]
        type = "range"
        bounds = [0, 3]
        [c]
        type = "random"
        [d]
        type = "list"
        value = ["x", "y"]
    """)
    ps = ParamSpace(f, seed=1)
    assert ps.param_names() == ["a", "b", "c", "d"]
    assert ps.get_spec("b") == {"type": "range", "bounds": [0, 3], "step": 1, "dtype": "float"}
    assert ps.get_spec("c") == {"type": "random", "bounds": [0, 1], "prior": "uniform",
                                 "dtype": "float", "n": 1}
    assert ps.size == 1 * 3 * 1 * 2
    grid = list(ps.param_grid())
    assert [g["b"] for g in grid] == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert all(0 <= g["c"] < 1 and g["a"] is True for g in grid)
    assert [g["id"] for g in grid] == list(range(6))


INVALID = [
    ('[x]\ntype = "rnage"\n', "[x]: unknown type 'rnage' (valid types are 'value', 'list', 'range', 'random')"),
    ('[x]\nbounds = [0, 1]\n', "[x]: missing key 'type' (valid types are 'value', 'list', 'range', 'random')"),
    ('[x]\ntype = "range"\n', "[x]: missing key 'bounds' (expected [low, high])"),
    ('[x]\ntype = "range"\nbounds = [1, 0]\n', "[x]: bounds must be [low, high] with low < high, got [1, 0]"),
    ('[x]\ntype = "range"\nbounds = [1]\n', "[x]: bounds must be [low, high] with two numbers, got [1]"),
    ('[x]\ntype = "range"\nbounds = [0, inf]\n', "[x]: bounds must be finite, got [0, inf]"),
    ('[x]\ntype = "range"\nbounds = [0, 1]\nstep = 0\n', "[x]: step must be a number > 0, got 0"),
    ('[x]\ntype = "range"\nbounds = [0, 1]\nstep = -0.5\n', "[x]: step must be a number > 0, got -0.5"),
    ('[x]\ntype = "range"\nbound = [0, 1]\n',
     "[x]: unknown key 'bound' for type 'range' (valid keys are 'bounds', 'step', 'dtype')"),
    ('[x]\ntype = "range"\nbounds = [0, 1]\ndtype = "double"\n',
     "[x]: unknown dtype 'double' (valid dtypes are 'int', 'float')"),
    ('[x]\ntype = "range"\nbounds = [0.5, 3]\ndtype = "int"\n',
     "[x]: bounds must be integers for dtype 'int', got [0.5, 3]"),
    ('[x]\ntype = "random"\nbounds = [0, 1]\nprior = "log-uniform"\n',
     "[x]: log-uniform bounds must be > 0, got [0, 1]"),
    ('[x]\ntype = "random"\nprior = "normal"\n',
     "[x]: unknown prior 'normal' (valid priors are 'uniform', 'log-uniform')"),
    ('[x]\ntype = "random"\nn = 0\n', "[x]: n must be an integer from 1 to 1,000,000, got 0"),
    ('[x]\ntype = "list"\nvalue = [1, 2, "A"]\n',
     "[x]: value is not a homogeneous array (mixes number and str): [1, 2, 'A']"),
    ('[x]\ntype = "list"\nvalue = []\n', "[x]: value is an empty array (give at least one value)"),
    ('[x]\ntype = "list"\n', "[x]: missing key 'value' (expected an array such as [1, 2, 3])"),
    ('[x]\ntype = "value"\n', "[x]: missing key 'value'"),
    ('[id]\ntype = "value"\nvalue = 1\n',
     "[id]: 'id' is a reserved name ('id', 'run', 'worker', 'gpu' are added by exp)"),
    ('[run]\ntype = "value"\nvalue = 1\n',
     "[run]: 'run' is a reserved name ('id', 'run', 'worker', 'gpu' are added by exp)"),
    ('x = 3\n', "[x]: expected a table with a 'type' key, got 3"),
    ('[x]\ntype = "value"\nvalue = 1979-05-27\n',
     "[x]: values must be strings, numbers, booleans, arrays or tables, got date datetime.date(1979, 5, 27)"),
    ('[x]\ntype = "value"\nvalue = 1\n[y\n',
     "invalid TOML: Expected ']' at the end of a table declaration (at line 4, column 3)"),
]


@pytest.mark.parametrize("text, message", INVALID, ids=[m.split(": ", 1)[-1][:40] for _, m in INVALID])
def test_invalid_param_files_name_file_and_parameter(tmp_path, text, message):
    f = tmp_path / "bad.conf"
    f.write_text(text)
    with pytest.raises(ParamError) as info:
        ParamSpace(f)
    assert str(info.value) == f"{f}: {message}"
    assert isinstance(info.value, ValueError)


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(exp.ParamDecodeError, match=r"nope.toml: no such file"):
        ParamSpace(tmp_path / "nope.toml")


def test_add_methods_validate_like_files():
    ps = ParamSpace()
    with pytest.raises(ParamError, match=r"^\[lr\]: bounds must be \[low, high\] with low < high"):
        ps.add_range("lr", 1, 0)
    with pytest.raises(ParamError, match="not a homogeneous array"):
        ps.add_list("l", [1, "a"])
    with pytest.raises(ParamError, match="reserved name"):
        ps.add_value("id", 3)


# ─── parameter space: grids ──────────────────────────────────────────────────


def test_seed_readme_example():
    ps = ParamSpace()
    ps.add_value("p1", 1)
    ps.add_list("p2", [True, False])
    ps.add_range("p3", low=0, high=10, dtype=int)
    assert ps.size == 20
    grid = list(ps.param_grid(runs=2))
    assert len(grid) == 2 * ps.size
    assert grid[0] == {"p1": 1, "p2": True, "p3": 0, "id": 0, "run": 1}
    assert grid[1] == {"p1": 1, "p2": True, "p3": 0, "id": 0, "run": 2}
    assert grid[-1] == {"p1": 1, "p2": False, "p3": 9, "id": 19, "run": 2}
    assert all(isinstance(g["p3"], int) for g in grid)


def test_float_range_has_no_drift():
    ps = ParamSpace()
    ps.add_range("x", 0, 1, 0.1)
    assert ps.grid_values()["x"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    ps.add_range("y", -1, 1.01, 0.25)
    assert ps.grid_values()["y"] == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert ps.size == 10 * 9


def test_config_by_id_matches_grid_order():
    ps = ParamSpace()
    ps.add_list("a", [1, 2, 3])
    ps.add_range("b", 0, 4, dtype=int)
    ps.add_list("c", ["x", "y"])
    for config in ps.param_grid():
        cid = config.pop("id")
        config.pop("run")
        assert ps.config(cid) == config
    with pytest.raises(ParamError, match=r"unknown config id 24 \(valid ids are 0..23\)"):
        ps.config(24)


def test_huge_grid_is_lazy_and_constant_memory():
    ps = ParamSpace()
    for name in "abcdefg":
        ps.add_range(name, 0, 10, dtype=int)
    assert ps.size == 10 ** 7
    grid = ps.param_grid()
    tracemalloc.start()
    for config in itertools.islice(grid, 50_000):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert config["id"] == 49_999
    assert peak < 1_000_000  # a list of 10^7 dicts would need gigabytes


def test_random_is_reproducible_with_seed_and_fresh_without():
    def space(seed):
        ps = ParamSpace(seed=seed)
        ps.add_random("lr", 1e-4, 1e-1, prior="log-uniform", n=5)
        ps.add_random("k", 1, 100, dtype=int, n=3)
        return ps
    a, b = space(7), space(7)
    assert list(a.param_grid()) == list(b.param_grid()) == list(a.param_grid())
    values = a.grid_values()
    assert all(1e-4 <= v < 1e-1 for v in values["lr"])
    assert all(isinstance(v, int) and 1 <= v < 100 for v in values["k"])
    unseeded = space(None)
    assert list(unseeded.param_grid()) != list(unseeded.param_grid())
    assert space(7).sample_space() == space(7).sample_space()


def test_persist_turns_random_into_list():
    ps = ParamSpace(seed=3)
    ps.add_random("x", 0, 1, n=4, persist=True)
    spec = ps.get_spec("x")
    assert spec["type"] == "list" and len(spec["value"]) == 4
    assert ps.grid_values()["x"] == spec["value"]


def test_domain_for_the_optimiser(tmp_path):
    ps = ParamSpace()
    ps.add_range("x", -10, 10, dtype=int)
    ps.add_random("lr", 1e-5, 1, prior="log-uniform")
    ps.add_list("act", ["relu", "tanh", "relu"])
    ps.add_value("fixed", 3)
    assert ps.domain("x") == exp.Domain("x", exp.Types.RANGE, exp.DTypes.INT, -10, 10)
    assert ps.domain("lr").prior == "log-uniform" and ps.domain("lr").dtype is exp.DTypes.FLOAT
    assert ps.domain("act").values == ("relu", "tanh")
    assert ps.domain("fixed").values == (3,)
    with pytest.raises(ParamError, match=r"\[nope\]: no such parameter"):
        ps.domain("nope")


def test_write_reads_back_identically(tmp_path):
    ps = ParamSpace()
    ps.add_value("v", {"nested": [1, 2], "s": 'quote " and \\ é'})
    ps.add_list("weird name", ["a\tb", "c\x7f"])
    ps.add_range("r", 0.5, 2.5, 0.5)
    ps.add_random("q", 1e-3, 1.0, prior="log-uniform", n=2)
    ps.write(tmp_path / "out.toml")
    assert ParamSpace(tmp_path / "out.toml") == ps


def test_write_configs_and_config_files(tmp_path):
    ps = ParamSpace()
    ps.add_list("a", [1, 2])
    ps.add_list("b", ["x", "y", "z"])
    ps.write_configs(tmp_path / "configs.csv", runs=2)
    rows = (tmp_path / "configs.csv").read_text().splitlines()
    assert rows[0] == "id,run,a,b"
    assert rows[1:3] == ["0,1,1,x", "0,2,1,x"]
    assert len(rows) == 1 + 6 * 2
    paths = ps.write_config_files(tmp_path / "configs")  # exp 0.5's names and contents
    assert [p.name for p in paths] == [f"params_{i}.conf" for i in range(6)]
    assert paths[5].read_text() == 'a = 2\nb = "z"\nrun = 1\nid = 5\n'
    assert ps.write_config_files(tmp_path / "c2", file_prefix="cfg")[0].name == "cfg_0.conf"


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                max_size=8).filter(lambda s: s not in exp._RESERVED)
scalars = st.one_of(st.integers(-10 ** 6, 10 ** 6), st.booleans(), st.text(max_size=5),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))


@st.composite
def spaces(draw):
    ps = ParamSpace(seed=draw(st.integers(0, 2 ** 32)))
    for name in draw(st.lists(names, min_size=1, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["value", "list", "range_int", "range_float", "random"]))
        if kind == "value":
            ps.add_value(name, draw(scalars))
        elif kind == "list":
            maker = draw(st.sampled_from([st.integers(-99, 99), st.booleans(), st.text(max_size=3)]))
            ps.add_list(name, draw(st.lists(maker, min_size=1, max_size=4)))
        elif kind == "range_int":
            low = draw(st.integers(-50, 50))
            ps.add_range(name, low, low + draw(st.integers(1, 20)), draw(st.integers(1, 5)), int)
        elif kind == "range_float":
            low = draw(st.integers(-50, 50)) / 4
            ps.add_range(name, low, low + draw(st.integers(1, 12)) / 4,
                         draw(st.sampled_from([0.1, 0.25, 0.5, 1.5])))
        else:
            low = draw(st.floats(0.001, 10))
            ps.add_random(name, low, low * draw(st.floats(1.5, 100)),
                          prior=draw(st.sampled_from(["uniform", "log-uniform"])),
                          n=draw(st.integers(1, 3)))
    return ps


@settings(max_examples=150, deadline=None)
@given(ps=spaces(), runs=st.integers(1, 3))
def test_property_round_trip_and_grid_size(tmp_path_factory, ps, runs):
    path = tmp_path_factory.mktemp("space") / "s.toml"
    ps.write(path)
    back = ParamSpace(path, seed=ps.seed)
    assert back == ps
    grid = list(back.param_grid(runs=runs))
    assert len(grid) == ps.size * runs
    assert len({(g["id"], g["run"]) for g in grid}) == len(grid)
    assert list(ps.param_grid(runs=runs)) == grid


# ─── arguments ───────────────────────────────────────────────────────────────


def test_param_dict_readme_example():
    spec = {"x": (float, None), "id": (int, 0), "run": (int, 1), "cat": (str, "A", ["A", "B"]),
            "flag": exp.Param(bool, False)}
    args = ParamDict(spec)
    args.from_dict({"x": "0.5", "id": "3.0", "cat": "B", "flag": "Yes", "other": 1})
    ns = args.to_namespace()
    assert (ns.x, ns.id, ns.run, ns.cat, ns.flag) == (0.5, 3, 1, "B", True)
    assert "other" not in ns
    assert repr(ns) == "Namespace(x=0.5, id=3, run=1, cat='B', flag=True)"
    with pytest.raises(ParamError, match=r"^\[cat\]: 'C' is not one of the options \('A', 'B'\)$"):
        args["cat"] = "C"
    with pytest.raises(ParamError, match=r"^\[id\]: cannot read '2.5' as an integer without losing"):
        args["id"] = "2.5"
    with pytest.raises(ParamError, match=r"^\[flag\]: cannot read 'maybe' as a boolean"):
        args["flag"] = "maybe"


@pytest.mark.parametrize("text", ["yes", "TRUE", "t", "Y", "1", True, 1])
def test_as_bool_true(text):
    assert exp.as_bool(text) is True


@pytest.mark.parametrize("text", ["no", "False", "F", "n", "0", False, 0])
def test_as_bool_false(text):
    assert exp.as_bool(text) is False


def test_as_int():
    assert exp.as_int("2.0") == 2 and exp.as_int(" 7 ") == 7 and exp.as_int(4.0) == 4
    for bad in ("2.5", 2.5, "x", None, True, float("nan")):
        with pytest.raises(ValueError):
            exp.as_int(bad)


# ─── names and packaging ─────────────────────────────────────────────────────


def test_original_import_paths_and_light_import():
    code = ("import sys; from exp.params import ParamSpace, Types, DTypes; "
            "from exp.args import ParamDict, Namespace, Param; import exp; "
            "assert ParamSpace is exp.ParamSpace and ParamDict is exp.ParamDict; "
            "heavy = {'numpy', 'skopt', 'matplotlib', 'distributed', 'multiprocessing.pool'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_lists_commands():
    out = cli("--help")
    assert out.returncode == 0
    assert "run" in out.stdout and "gopt" in out.stdout and "results" in out.stdout


def test_vendored_copy_works_alone(tmp_path):
    shutil.copy(HERE / "exp.py", tmp_path / "exp.py")
    write(tmp_path / "space.toml", """
        [x]
        type = "list"
        value = [1, 2, 3]
    """)
    write(tmp_path / "job.py", "def run(x):\n    return x * 10\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "exp.py", "run", "-p", "space.toml", "-m", "job.py",
                          "-w", "2", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert [r["result"] for r in journal_lines(tmp_path / "space.jsonl")] != []
    assert sorted(r["result"] for r in exp.read_journal(tmp_path / "space.jsonl")) == [10, 20, 30]


@pytest.mark.timeout(60)
def test_a_script_without_main_guard_is_not_run_again_by_workers(tmp_path):
    """Workers are fresh interpreters that load exp.py and the runnable only: the
    script that called run_experiment (and what it imports) is not imported again."""
    write(tmp_path / "job.py", "import sys\n\ndef run(a):\n    return [a, sys.argv[0]]\n")
    write(tmp_path / "script.py", f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import exp
        with open("imports.txt", "a") as f:
            f.write("x")
        space = exp.ParamSpace()
        space.add_list("a", [1, 2, 3, 4])
        records = exp.run_experiment(space, "job.py", workers=2, out="out", quiet=True)
        print(sorted(r["result"][0] for r in records))
    """)
    out = subprocess.run([sys.executable, "script.py", "--flag"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1, 2, 3, 4]"
    assert (tmp_path / "imports.txt").read_text() == "x"
    # the workers see the driver's sys.argv and sys.path, as with multiprocessing's spawn
    assert {r["result"][1] for r in exp.read_journal(tmp_path / "out" / "exp.jsonl")} == {"script.py"}


@pytest.mark.timeout(90)
def test_workers_find_exp_vendored_under_another_name_or_in_a_zip(tmp_path):
    """A vendored copy may be named otherwise (beside a package of the user's called
    exp) or live in a zip: workers load that copy, and the user's exp stays theirs."""
    import zipfile
    (tmp_path / "tools").mkdir()
    shutil.copy(HERE / "exp.py", tmp_path / "tools" / "exprun.py")
    (tmp_path / "exp").mkdir()
    write(tmp_path / "exp" / "__init__.py", "helper = 100\n")
    write(tmp_path / "job.py", "from exp import helper\n\ndef run(a):\n    return helper + a\n")
    with zipfile.ZipFile(tmp_path / "lib.zip", "w") as z:
        z.write(HERE / "exp.py", "exprun.py")
    for where in ("tools", "lib.zip"):
        write(tmp_path / "script.py", f"""
            import sys
            sys.path.insert(0, {where!r})
            import exprun
            space = exprun.ParamSpace()
            space.add_list("a", [1, 2])
            records = exprun.run_experiment(space, "job.py", workers=2, out="out", quiet=True,
                                            fresh=True)
            print([(r["status"], r["result"], r["error"]) for r in records])
        """)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (where, out.stderr)
        assert out.stdout.strip() == "[('ok', 101, None), ('ok', 102, None)]", where


# ─── the runner ──────────────────────────────────────────────────────────────

FAULTY = '''
import os, signal, sys, time

def run(mode, id, **kwargs):
    print(f"start {id} {mode}")
    if mode == "raise":
        raise RuntimeError(f"boom {id}")
    if mode == "exit":
        os._exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "segv":
        import ctypes
        ctypes.string_at(0)
    if mode == "hang":
        time.sleep(3600)
    if mode == "cout":
        os.write(1, b"from the C level\\n")
    return {"score": id * 1.5, "mode": mode}
'''


def faulty_space(tmp_path: Path, modes: list[str]) -> Path:
    return write(tmp_path / "faults.toml", f"""
        [mode]
        type = "list"
        value = {json.dumps(modes)}
    """)


@pytest.mark.timeout(60)
def test_run_all_ok_journal_csv_and_summary(tmp_path, capsys):
    space = write(tmp_path / "basic.conf", """
        [x]
        type = "range"
        bounds = [-3, 3]
        [y]
        type = "list"
        value = ["a", "b"]
    """)
    job = write(tmp_path / "job.py", "def run(x, y, id, run, worker):\n"
                                     "    return {'sq': x * x, 'tag': y, 'worker': worker}\n")
    code = exp.main(["run", "-p", str(space), "-m", str(job), "-w", "2", "--out", str(tmp_path),
                     "-r", "2"])
    assert code == 0
    lines = (tmp_path / "basic.jsonl").read_text().splitlines()
    header, records = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert header["command"] == "run" and header["runs"] == 2
    assert len(records) == 24 and {r["status"] for r in records} == {"ok"}
    assert sorted((r["id"], r["run"]) for r in records) == [(i, r) for i in range(12) for r in (1, 2)]
    assert {r["worker"] for r in records} <= {0, 1}
    assert set(records[0]) >= {"id", "run", "params", "status", "result", "error", "worker",
                               "gpu", "start", "end", "seconds"}
    csv_rows = (tmp_path / "basic.csv").read_text().splitlines()
    assert csv_rows[0] == ("id,run,status,param.x,param.y,result.sq,result.tag,result.worker,"
                           "seconds,step,error,start,end,worker,gpu")  # no column overwrites another
    assert len(csv_rows) == 25
    err = capsys.readouterr().err
    assert "24 run(s): 24 ok" in err and "basic.jsonl" in err
    assert not (tmp_path / "basic.logs").exists()  # nothing printed, no logs kept


@pytest.mark.timeout(90)
def test_run_survives_raise_exit_kill_segfault(tmp_path):
    space = faulty_space(tmp_path, ["ok", "raise", "exit", "ok", "kill", "segv", "cout", "ok"])
    job = write(tmp_path / "faulty.py", FAULTY)
    records = exp.run_experiment(space, str(job), workers=2, out=tmp_path, quiet=True)
    by_mode = {r["params"]["mode"] + str(r["id"]): r for r in records}
    assert len(records) == 8
    assert [r["status"] for r in records] == ["ok", "failed", "crashed", "ok", "crashed",
                                              "crashed", "ok", "ok"]
    assert "RuntimeError: boom 1" in by_mode["raise1"]["error"]
    assert by_mode["exit2"]["error"] == "worker exited with code 3"
    assert by_mode["kill4"]["error"] == "killed by signal SIGKILL (9)"
    assert by_mode["segv5"]["error"] == "killed by signal SIGSEGV (11)"
    logs = tmp_path / "faults.logs"
    assert "RuntimeError: boom 1" in (logs / "1-1.log").read_text()
    assert "start 1 raise" in (logs / "1-1.log").read_text()
    assert (logs / "6-1.log").read_text() == "start 6 cout\nfrom the C level\n"
    assert "start 5 segv" in (logs / "5-1.log").read_text()
    assert not list(logs.glob(".*.tmp")), "temporary worker logs left behind"
    assert records == exp.read_journal(tmp_path / "faults.jsonl")  # deaths' records too
    assert exp.main(["results", str(tmp_path / "faults.jsonl")]) == 0


@pytest.mark.timeout(90)
def test_without_pidfd_and_memfd_deaths_and_timeouts_are_still_pinned(tmp_path, monkeypatch):
    """The fallbacks where Linux's pidfd_open and memfd_create are missing (macOS): a
    pipe each worker holds open tells its death, an unlinked temp file holds its state."""
    monkeypatch.setattr(exp, "_have_pidfd", lambda: False)
    monkeypatch.delattr(os, "memfd_create", raising=False)
    space = faulty_space(tmp_path, ["ok", "raise", "exit", "kill", "hang", "ok"])
    job = write(tmp_path / "faulty.py", FAULTY)
    records = exp.run_experiment(space, str(job), workers=2, out=tmp_path, quiet=True,
                                 timeout=2)
    assert [r["status"] for r in records] == ["ok", "failed", "crashed", "crashed", "timeout",
                                              "ok"]


@pytest.mark.timeout(60)
def test_timeout_kills_and_replaces_the_worker(tmp_path):
    space = faulty_space(tmp_path, ["hang", "ok", "ok", "hang", "ok"])
    job = write(tmp_path / "faulty.py", FAULTY)
    t0 = time.monotonic()
    records = exp.run_experiment(space, str(job), workers=2, out=tmp_path, timeout=1.5,
                                 quiet=True)
    assert time.monotonic() - t0 < 30
    assert [r["status"] for r in records] == ["timeout", "ok", "ok", "timeout", "ok"]
    assert records[0]["error"] == "killed after --timeout 1.5s"
    assert 1.4 < records[0]["seconds"] < 10
    assert records == exp.read_journal(tmp_path / "faults.jsonl")


@pytest.mark.timeout(60)
def test_cancel_stops_at_first_failure(tmp_path):
    space = faulty_space(tmp_path, ["raise"] + ["ok"] * 30)
    job = write(tmp_path / "faulty.py", FAULTY)
    code = exp.main(["run", "-p", str(space), "-m", str(job), "-w", "1", "--out", str(tmp_path),
                     "--cancel", "-q"])
    assert code == 1
    records = exp.read_journal(tmp_path / "faults.jsonl")
    assert records[0]["status"] == "failed" and len(records) < 31


@pytest.mark.timeout(60)
def test_failed_runs_are_kept_and_retried_on_request(tmp_path):
    space = faulty_space(tmp_path, ["ok", "raise", "ok"])
    job = write(tmp_path / "faulty.py", FAULTY)
    args = ["run", "-p", str(space), "-m", str(job), "-w", "2", "--out", str(tmp_path), "-q"]
    assert exp.main(args) == 1
    assert exp.main(args) == 1  # nothing to do: the failure is a finished run
    assert len(journal_lines(tmp_path / "faults.jsonl")) == 3
    job.write_text(FAULTY.replace('raise RuntimeError(f"boom {id}")', 'return "fixed"'))
    assert exp.main([*args, "--retry-failed"]) == 0
    lines = journal_lines(tmp_path / "faults.jsonl")
    assert len(lines) == 4 and lines[-1]["status"] == "ok" and lines[-1]["result"] == "fixed"
    assert lines[-1]["runnable_hash"] != lines[0]["runnable_hash"]


def slow_job(tmp_path: Path, n: int) -> tuple[Path, Path]:
    space = write(tmp_path / "slow.toml", f"""
        [x]
        type = "range"
        bounds = [0, {n}]
        dtype = "int"
    """)
    job = write(tmp_path / "slow.py", "import time\n\ndef run(x):\n    time.sleep(0.05)\n"
                                      "    return x\n")
    return space, job


def assert_complete_once(journal: Path, n: int) -> None:
    records = [json.loads(line) for line in journal.read_text().splitlines()[1:]
               if line.strip() and line.startswith("{") and line.endswith("}")]
    keys = sorted((r["id"], r["run"]) for r in records)
    assert keys == [(i, 1) for i in range(n)], "every (id, run) exactly once"
    assert all(r["status"] == "ok" for r in records)


@pytest.mark.timeout(90)
def test_sigint_to_process_group_exits_130_and_resumes(tmp_path):
    space, job = slow_job(tmp_path, 60)
    args = ["run", "-p", str(space), "-m", str(job), "-w", "2", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "exp", *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(HERE)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "slow.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not journal.exists()
                                           or len(journal.read_text().splitlines()) < 8):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    done = len(exp.read_journal(journal))
    assert 7 <= done < 60
    assert not alive_in_group(proc.pid), "orphan workers"
    out = cli(*args, "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert_complete_once(journal, 60)


@pytest.mark.timeout(120)
def test_sigint_while_many_workers_start_is_quiet_and_leaves_nothing(tmp_path):
    """Ctrl-C in the window where the driver is starting 12 workers: exit 130, no
    traceback from a worker that never got its settings, no process left."""
    space, job = slow_job(tmp_path, 60)
    args = ["run", "-p", str(space), "-m", str(job), "-w", "12", "--out", str(tmp_path), "-q"]
    for delay in (0.08, 0.12, 0.16, 0.2, 0.25, 0.3):
        proc = subprocess.Popen([sys.executable, "-m", "exp", *args], cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(HERE)},
                                start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode in (130, -signal.SIGINT), (delay, err)
        # A Ctrl-C while the interpreter itself starts (compiling exp.py where byte
        # code is not cached) ends it by Python's default handler, before exp runs.
        assert "Traceback" not in err or 'exp.py"' not in err, (delay, err)
        assert "EOFError" not in err, (delay, err)
        time.sleep(0.2)  # let the kernel reap what the driver killed
        assert not alive_in_group(proc.pid), delay


@pytest.mark.timeout(60)
def test_signal_while_workers_exit_still_kills_every_worker(tmp_path):
    """A Ctrl-C that lands while the pool waits for its workers to exit cuts the wait
    short, and is raised only once every worker is dead: one left alive would outlive
    the driver's clean-up (a traceback from a worker whose log folder was removed)."""
    job = write(tmp_path / "slowload.py", "import time\ntime.sleep(30)\ndef run(x):\n    return x\n")
    pool = exp._LocalPool(str(job), [None, None], logs=tmp_path / "logs", runnable_hash="h")
    (tmp_path / "logs").mkdir()
    pool.start()
    pids = [w.process.pid for w in pool.workers]
    import threading
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.shutdown()  # polite: they are still importing, so it would wait 5 s
    took = time.monotonic() - t0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert pool.workers == [None, None]
    assert took < 5, "the polite wait was not cut short"


@pytest.mark.timeout(60)
def test_nothing_to_run_starts_no_worker(tmp_path):
    marker = tmp_path / "loaded"
    job = write(tmp_path / "mark.py", f"open({str(marker)!r}, 'a').write('x')\n"
                "def run(x):\n    return x\n")
    space = write(tmp_path / "s.toml", "[x]\ntype = 'range'\nbounds = [0, 4]\n")
    exp.run_experiment(space, str(job), workers=2, out=tmp_path, quiet=True)
    assert marker.read_text() == "xx"  # each worker loaded it once
    out = cli("run", "-p", str(space), "-m", str(job), "-w", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "nothing to run" in out.stderr
    assert marker.read_text() == "xx", "a worker was started for nothing"


@pytest.mark.timeout(90)
def test_kill9_driver_then_resume_completes_exactly_once(tmp_path):
    space, job = slow_job(tmp_path, 60)
    args = ["run", "-p", str(space), "-m", str(job), "-w", "2", "--out", str(tmp_path), "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "exp", *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(HERE)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "slow.jsonl"
    while not journal.exists() or len(journal.read_text().splitlines()) < 10:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with open(journal, "ab") as f:  # a line torn mid-write
        f.write(b'{"id": 999, "run": 1, "params": {"x"')
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "skipped 1 unreadable line" in out.stderr
    assert_complete_once(journal, 60)
    assert not list(tmp_path.rglob("*.tmp")), "temporary files of the killed run left behind"
    rows = (tmp_path / "slow.csv").read_text().splitlines()
    assert len(rows) == 61


@pytest.mark.timeout(60)
def test_journal_of_another_experiment_is_refused(tmp_path):
    space = faulty_space(tmp_path, ["ok", "cout"])
    job = write(tmp_path / "faulty.py", FAULTY)
    exp.run_experiment(space, str(job), workers=1, out=tmp_path, quiet=True)
    write(tmp_path / "other.py", FAULTY.replace("def run(", "def train("))
    out = cli("run", "-p", str(space), "-m", f"{tmp_path / 'other.py'}:train",
              "--out", str(tmp_path), "--name", "faults")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"exp: error: {tmp_path / 'faults.jsonl'} belongs to another experiment: it is for the "
        "runnable 'faulty.py:run', not 'other.py:train' (use --fresh to start over, or --name "
        "for a new journal)"]
    faulty_space(tmp_path, ["ok", "cout", "raise"])  # a grown space is the same experiment
    out = cli("run", "-p", str(space), "-m", str(job), "--out", str(tmp_path), "-q")
    assert out.returncode == 1  # the new run raises
    assert [r["status"] for r in exp.read_journal(tmp_path / "faults.jsonl")] == \
        ["ok", "ok", "failed"]
    out = cli("run", "-p", str(space), "-m", str(job), "--out", str(tmp_path), "--fresh", "-q")
    assert out.returncode == 1
    assert (tmp_path / "faults.old-1.jsonl").exists()
    assert len(exp.read_journal(tmp_path / "faults.jsonl")) == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make, args, message", [
    (None, ["-p", "missing.toml", "-m", "job.py"], "exp: error: missing.toml: no such file"),
    (None, ["-p", "s.toml", "-m", "nojob.py"], "exp: error: nojob.py: no such file (give "
     "path/to/file.py, file.py:function or package.module:function)"),
    ("def other(x):\n    pass\n", ["-p", "s.toml", "-m", "job.py"],
     "exp: error: job.py: no function 'run' (define def run(**params) or name another with "
     "job.py:FUNCTION)"),
    ("def run(y):\n    pass\n", ["-p", "s.toml", "-m", "job.py"],
     "exp: error: job.py: run() does not accept the parameter 'x' of the space (add it to the "
     "signature or add **kwargs)"),
    ("def run(x, z):\n    pass\n", ["-p", "s.toml", "-m", "job.py"],
     "exp: error: job.py: run() requires 'z', which the space does not define (add it to the "
     "param file or give it a default)"),
    ("def run(x:\n", ["-p", "s.toml", "-m", "job.py"],
     "exp: error: job.py: syntax error at line 1: '(' was never closed"),
    ("def run(x):\n    pass\n", ["-p", "s.toml", "-m", "job.py", "--workers", "0"],
     "exp: error: workers must be >= 1, got 0"),
    ("def run(x):\n    pass\n", ["-p", "s.toml", "-m", "job.py", "-c", "5"],
     "exp: error: unknown config id 5 (valid ids are 0..2)"),
    ("def run(x):\n    pass\n", ["-p", "s.toml", "-m", "job.py", "--timeout", "0"],
     "exp: error: --timeout must be a number of seconds > 0, got 0.0"),
    ("import not_a_module_anywhere\ndef run(x):\n    pass\n", ["-p", "s.toml", "-m", "job.py"],
     "exp: error: job.py: cannot load it in a worker: ModuleNotFoundError: No module named "
     "'not_a_module_anywhere'"),
    ("import os\nprint('no licence server')\nos._exit(4)\ndef run(x):\n    pass\n",
     ["-p", "s.toml", "-m", "job.py"], "exp: error: job.py: a worker died while loading it "
     "(worker exited with code 4); its last output: no licence server"),
    ("import ctypes\nctypes.string_at(0)\ndef run(x):\n    pass\n",
     ["-p", "s.toml", "-m", "job.py"], "exp: error: job.py: a worker died while loading it "
     "(killed by signal SIGSEGV (11))"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, make, args, message):
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1, 2, 3]\n')
    if make:
        (tmp_path / "job.py").write_text(make)
    out = cli("run", *args, cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (2, message)


@pytest.mark.timeout(30)
def test_no_gpu_visible_is_a_clear_error(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1]\n')
    write(tmp_path / "job.py", "def run(x):\n    pass\n")
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    out = cli("run", "-p", "s.toml", "-m", "job.py", "--gpus", "all", cwd=tmp_path, env=env)
    assert out.returncode == 2
    assert out.stderr.startswith("exp: error: --gpus all: no GPU found")
    assert len(out.stderr.strip().splitlines()) == 1


GPU_JOB = '''
import os, time

def run(x, gpu, worker):
    seen = os.environ["CUDA_VISIBLE_DEVICES"]
    start = time.time()
    time.sleep(0.15)
    return {"seen": seen, "gpu": gpu, "worker": worker, "start": start, "end": time.time()}
'''


def fake_nvidia_smi(tmp_path: Path, n: int) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + "".join(f"echo {i}\n" for i in range(n)))
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def max_concurrency(results: list[dict], key) -> dict:
    """Per GPU id, the most runs that overlapped in time."""
    events = []
    for r in results:
        for gpu in key(r):
            events += [(r["start"], 1, gpu), (r["end"], -1, gpu)]
    now, peak = {}, {}
    for _, delta, gpu in sorted(events):
        now[gpu] = now.get(gpu, 0) + delta
        peak[gpu] = max(peak.get(gpu, 0), now[gpu])
    return peak


@pytest.mark.timeout(90)
@pytest.mark.parametrize("extra, per_gpu, per_run", [([], 1, 1), (["--per-gpu", "2"], 2, 1),
                                                     (["--gpus-per-run", "2"], 1, 2)])
def test_gpu_pinning_with_stand_in_nvidia_smi(tmp_path, monkeypatch, extra, per_gpu, per_run):
    env = fake_nvidia_smi(tmp_path, 4)
    monkeypatch.setattr(os, "environ", env)
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 16]\n')
    write(tmp_path / "gpu_job.py", GPU_JOB)
    assert exp.main(["run", "-p", str(tmp_path / "s.toml"), "-m", str(tmp_path / "gpu_job.py"),
                     "--gpu", "--out", str(tmp_path), "-q", *extra]) == 0
    results = [r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")]
    assert len(results) == 16
    for r in results:
        ids = r["seen"].split(",")
        assert len(ids) == per_run and len(set(ids)) == per_run
        assert r["gpu"] == r["seen"]
    peak = max_concurrency(results, lambda r: r["seen"].split(","))
    assert set(peak) == {"0", "1", "2", "3"}
    assert max(peak.values()) == per_gpu, peak
    workers = {r["worker"] for r in results}
    assert len(workers) == 4 * per_gpu // per_run


def test_gpu_slots_and_explicit_lists(monkeypatch):
    assert exp.gpu_slots(["0", "1", "2", "3"], per_gpu=2) == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert exp.gpu_slots(["0", "1", "2", "3"], gpus_per_run=2) == ["0,1", "2,3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    assert exp._slots(None, "all", 1, 1) == ["4", "5", "6"]
    assert exp._slots(None, "2", 1, 1) == ["4", "5"]
    assert exp._slots(None, "0,2", 1, 1) == ["0", "2"]
    assert exp._slots(None, "3,", 1, 1) == ["3"]
    with pytest.raises(exp.ExpError, match="--workers 4 is more than the 3 GPU slot"):
        exp._slots(4, "all", 1, 1)
    with pytest.raises(exp.ExpError, match="--gpus 5: only 3 GPU"):
        exp._slots(None, "5", 1, 1)


@pytest.mark.timeout(60)
def test_dry_run_config_ids_and_module_runnable(tmp_path):
    write(tmp_path / "s.toml", '[a]\ntype = "list"\nvalue = [1, 2, 3, 4]\n')
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "jobs.py", "def square(a, **kw):\n    return a * a\n")
    out = cli("run", "-p", "s.toml", "-m", "pkg.jobs:square", "--dry-run", "-r", "2", cwd=tmp_path)
    assert out.returncode == 0
    assert len(out.stdout.splitlines()) == 8 and "8 run(s) of 4 configuration(s)" in out.stderr
    assert not (tmp_path / "s.jsonl").exists()
    out = cli("run", "-p", "s.toml", "-m", "pkg.jobs:square", "-c", "1", "3", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [(r["id"], r["result"]) for r in exp.read_journal(tmp_path / "s.jsonl")] == [(1, 4), (3, 16)]
    out = cli("results", "s.jsonl", "--csv", "t.csv", "--top", "1", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.splitlines()[1].split() == ["id", "run", "status", "a", "result", "seconds"]
    assert out.stdout.splitlines()[3].split()[:5] == ["1", "1", "ok", "2", "4"]  # the best
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == \
        "id,run,status,param.a,result,seconds,step,error,start,end,worker,gpu"


@pytest.mark.timeout(60)
def test_unserialisable_result_is_a_clear_failure(tmp_path):
    write(tmp_path / "s.toml", '[a]\ntype = "list"\nvalue = [1, 2]\n')
    write(tmp_path / "job.py", "def run(a):\n    return object() if a == 1 else {'ok': a}\n")
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=1,
                                 out=tmp_path, quiet=True)
    assert [r["status"] for r in records] == ["failed", "ok"]
    assert "not JSON-serialisable" in records[0]["error"]


@pytest.mark.timeout(60)
def test_a_result_dict_the_runnable_reuses_is_recorded_as_it_was(tmp_path):
    """A worker holds a few ms of records before sending them: a run that changes
    the dict an earlier run returned must not change that earlier record."""
    write(tmp_path / "s.toml", '[a]\ntype = "range"\nbounds = [0, 2000]\ndtype = "int"\n')
    write(tmp_path / "job.py", "OUT = {}\n\ndef run(a):\n    OUT['y'] = 2 * a\n    return OUT\n")
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=2,
                                 out=tmp_path, quiet=True)
    assert [r["result"]["y"] for r in records] == [2 * a for a in range(2000)]
    assert records == exp.read_journal(tmp_path / "s.jsonl")


@pytest.mark.timeout(120)
def test_a_driver_with_many_open_files_still_talks_to_its_workers(tmp_path):
    """Channel descriptors above 1023 (a driver holding many files open)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-file limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        write(tmp_path / "s.toml", '[a]\ntype = "list"\nvalue = [1, 2, 3, 4]\n')
        write(tmp_path / "job.py", "def run(a):\n    return a\n")
        records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=2,
                                     out=tmp_path, quiet=True)
        assert [r["result"] for r in records] == [1, 2, 3, 4]
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("workers", [1, 2])
def test_large_parameters_of_many_short_runs_do_not_deadlock(tmp_path, workers):
    """Tasks of 100 KB each: the driver must never wait to send a batch to a worker
    that waits for the driver to read its results (each side's socket full)."""
    big = json.dumps(["x" * 100_000 + str(i) for i in range(4)])
    write(tmp_path / "s.toml", f'[s]\ntype = "list"\nvalue = {big}\n'
                               f'[k]\ntype = "range"\nbounds = [0, 300]\ndtype = "int"\n')
    write(tmp_path / "job.py", "def run(s, k):\n    return len(s) + k\n")
    t0 = time.monotonic()
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"),
                                 workers=workers, out=tmp_path, quiet=True)
    assert len(records) == 1200 and {r["status"] for r in records} == {"ok"}
    assert time.monotonic() - t0 < 60


@pytest.mark.timeout(60)
def test_returned_records_equal_the_journal_read_back(tmp_path):
    """The records come from the workers, not from re-reading the journal: they must
    be what reading it gives, whatever the runs returned."""
    write(tmp_path / "s.toml", '[a]\ntype = "range"\nbounds = [0, 9]\ndtype = "int"\n')
    write(tmp_path / "job.py", """
        import math
        def run(a):
            if a == 8:
                loop = []
                loop.append(loop)
                return loop
            return [(1, 2), {3: 'x'}, {'k': (4,)}, math.nan, 'é\\u2028"', 2 ** 70, 0.1, None][a]
    """)
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=2,
                                 out=tmp_path, quiet=True)
    again = exp.read_journal(tmp_path / "s.jsonl")
    assert json.dumps(records) == json.dumps(again)  # NaN != NaN, but it prints the same
    assert [r["status"] for r in records] == ["ok"] * 8 + ["failed"]
    assert records[0]["result"] == [1, 2] and records[1]["result"] == {"3": "x"}
    assert "cannot journal" in records[8]["error"]


def test_read_journal_skips_garbage(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"kind": "header", "space": {}}\nnot json\n[1, 2]\n'
                    '{"id": 0, "run": 1, "params": {}, "status": "ok"}\n'
                    '{"id": [0], "run": 1, "params": {}, "status": "ok"}\n'
                    '{"id": 0, "run": 1, "params": {}, "status": "failed"}\n'
                    '{"id": 1, "run": 1, "sta')
    assert [r["status"] for r in exp.read_journal(path)] == ["failed"]
    assert len(exp.read_journal(path, latest=False)) == 2
    with pytest.raises(exp.JournalError, match="no such journal"):
        exp.read_journal(tmp_path / "none.jsonl")


@pytest.mark.timeout(60)
def test_crash_and_timeout_among_batched_short_runs_are_pinned_on_their_run(tmp_path):
    """Short runs are queued several per worker and reported in bursts; a death
    or a timeout still lands on exactly the run that caused it."""
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 600]\ndtype = "int"\n')
    write(tmp_path / "job.py", textwrap.dedent("""
        import os, time
        def run(x):
            if x in (150, 420):
                os._exit(5)
            if x == 300:
                time.sleep(60)
            return x
    """))
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=2,
                                 out=tmp_path, timeout=2, quiet=True)
    lines = journal_lines(tmp_path / "s.jsonl")
    assert sorted(r["id"] for r in lines) == list(range(600)), "each run exactly once"
    bad = {r["id"]: r["status"] for r in records if r["status"] != "ok"}
    assert bad == {150: "crashed", 300: "timeout", 420: "crashed"}
    assert all(r["result"] == r["id"] for r in records if r["status"] == "ok")


# ─── regressions found by the fault-injection campaign (stress/RESULTS.md) ──


@pytest.mark.timeout(60)
def test_a_forked_child_does_not_hide_its_workers_death(tmp_path):
    """D2: the child inherits the worker's pipes; the death must still be seen at once."""
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [0, 1, 2]\n')
    write(tmp_path / "job.py", textwrap.dedent("""
        import os, time
        def run(x):
            if x == 1:
                if os.fork() == 0:
                    time.sleep(20)  # a lingering child, holding every inherited fd
                    os._exit(0)
                os._exit(4)
            return x
    """))
    t0 = time.monotonic()
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=1,
                                 out=tmp_path, timeout=15, quiet=True)
    assert time.monotonic() - t0 < 10
    assert [r["status"] for r in records] == ["ok", "crashed", "ok"]
    assert records[1]["error"] == "worker exited with code 4"


@pytest.mark.timeout(60)
def test_a_forked_child_that_returns_never_reports(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [0, 1, 2]\n')
    write(tmp_path / "job.py", "import os\ndef run(x):\n    if x == 1:\n        os.fork()\n"
                               "    return x\n")
    exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=1, out=tmp_path,
                       quiet=True)
    assert sorted(r["id"] for r in journal_lines(tmp_path / "s.jsonl")) == [0, 1, 2]


@pytest.mark.parametrize("text, message", [
    ('["a\\nb"]\ntype = "rnage"\n', "['a\\nb']: unknown type 'rnage'"),
    ("x = " + "[" * 2000 + "]" * 2000 + "\n", "invalid TOML: nested too deeply"),
    ('[x]\ntype = "range"\nbounds = [0, 1]\nstep = 1e-12\n',
     "[x]: bounds [0, 1] with step 1e-12 give 1,000,000,000,000 values (at most 1,000,000; use "
     "a larger step, or 'random' values)"),
])
def test_hostile_param_files_give_one_line(tmp_path, text, message):
    """D4, D5, D11."""
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ParamError) as info:
        ParamSpace(f)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.timeout(60)
def test_hostile_journals_and_paths(tmp_path):
    """D6, D7, D8, D10: each is one line, or a resume that works."""
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1, 2]\n')
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    args = ["run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q"]
    (tmp_path / "s.jsonl").write_text('{"kind": "hea')  # a torn header: written again
    assert cli(*args, cwd=tmp_path).returncode == 0
    assert cli(*args, cwd=tmp_path).returncode == 0
    with open(tmp_path / "s.jsonl", "a") as f:  # a record of an id the space lacks
        f.write('{"id": 7, "run": 1, "params": {"x": 9}, "status": "failed"}\n')
    assert cli(*args, cwd=tmp_path).returncode == 0
    (tmp_path / "d.jsonl").mkdir()
    for extra, start in [(["--name", "d"], "exp: error: d.jsonl is a folder, not a journal"),
                         (["--timeout", "inf"], "exp: error: --timeout must be a number"),
                         (["-w", "100000000"], "exp: error: workers must be <= 4096"),
                         (["--out", "job.py"], "exp: error: cannot use the output folder job.py"),
                         (["--name", "n" * 300], "exp: error: --name must be a plain file name")]:
        out = cli(*args, *extra, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.startswith(start), (extra, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_runnable_the_source_cannot_show_is_checked_in_the_worker(tmp_path):
    """D9: a lambda cannot be read from the source; the worker refuses it before any run."""
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1, 2]\n')
    write(tmp_path / "job.py", "run = lambda y: y\n")
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        2, "exp: error: job.py: <lambda>() does not accept the parameter 'x' of the space (add "
           "it to the signature or add **kwargs)")
    assert not (tmp_path / "s.jsonl").exists()  # nothing ran: no journal is left behind


@pytest.mark.timeout(90)
def test_many_deaths_among_short_runs(tmp_path):
    """Batches are sent to workers that may have died a moment ago: never an error."""
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 500]\ndtype = "int"\n')
    write(tmp_path / "job.py", "import os, signal\ndef run(x):\n    if x % 10 == 7:\n"
                               "        os.kill(os.getpid(), signal.SIGKILL)\n    return x\n")
    records = exp.run_experiment(tmp_path / "s.toml", str(tmp_path / "job.py"), workers=2,
                                 out=tmp_path, quiet=True)
    assert len(records) == 500
    assert {r["id"] for r in records if r["status"] == "crashed"} == set(range(7, 500, 10))
    assert all(r["status"] == "ok" for r in records if r["id"] % 10 != 7)


@pytest.mark.timeout(60)
def test_random_space_without_seed_resumes_with_the_recorded_seed(tmp_path):
    write(tmp_path / "s.toml", '[lr]\ntype = "random"\nbounds = [0.001, 1]\n'
                               'prior = "log-uniform"\nn = 4\n')
    write(tmp_path / "job.py", "def run(lr):\n    return lr\n")
    args = ["run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q", "-c", "0", "1"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "s.jsonl")
    assert [r["id"] for r in records] == [0, 1, 2, 3]
    seed = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])["seed"]
    assert [r["params"]["lr"] for r in records] == ParamSpace(tmp_path / "s.toml", seed=seed).grid_values()["lr"]
    out = cli(*args, "--seed", str(seed + 1), cwd=tmp_path)
    assert out.returncode == 2 and f"it was run with seed {seed!r}, not {seed + 1}" in out.stderr


@pytest.mark.timeout(60)
def test_newcomer_stumbles(tmp_path):
    """What a first try ran into: each now works or says what to do in one line."""
    write(tmp_path / "s.toml", '[x]\ntype = "list"\nvalue = [1, 2, 3]\n')
    write(tmp_path / "job.py", "def run(x):\n    return {'acc': x / 10}\n")
    write(tmp_path / "broken.py", "import not_installed_anywhere\ndef run(x):\n    return x\n")
    # a runnable that could not load leaves a header only: the corrected command goes on
    assert cli("run", "-p", "s.toml", "-m", "broken.py", cwd=tmp_path).returncode == 2
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # running it again says there is nothing to do, and how to do more
    out = cli("run", "-p", "s.toml", "-m", "job.py", "-w", "1", cwd=tmp_path)
    assert out.returncode == 0 and out.stderr.startswith("nothing to run: every run is already")
    # an objective typo is named, with the keys there are
    out = cli("results", "s.jsonl", "--objective", "accuracy", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        2, "exp: error: --objective 'accuracy': no result has that key (result keys: 'acc')")
    # a file that is no journal
    out = cli("results", "s.toml", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        2, "exp: error: s.toml: not an exp journal (its first line is no exp header)")
    # output piped into a reader that stops early
    dry = subprocess.run(f"{sys.executable} -m exp run -p s.toml -m job.py --dry-run -r 3000 "
                         "| head -1", shell=True, cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE)}, timeout=60)
    # (run 1 of each configuration is in the journal: what is left to run comes first)
    assert dry.stdout.startswith('{"id":0,"run":2') and "error" not in dry.stderr
