"""Coming from exp 0.5: its commands, runnables and imports keep working.

Commands run as subprocesses the way a user types them: the console script,
``python -m exp``, ``python exp.py``, ``python -m exp.run`` / ``exp.gopt``, and a
copy of exp.py vendored into a project.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import exp
from exp import ParamDecodeError, ParamSpace
from test_exp import HERE, write

ENV = {**os.environ, "PYTHONPATH": str(HERE)}


def run(args: list[str], cwd: Path, env: dict | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env or ENV, capture_output=True, text=True,
                          timeout=timeout)


def console_script() -> str:
    found = shutil.which("exp", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the exp console script is not installed in this environment")
    return found


def entry_points(command: str) -> dict[str, list[str]]:
    """Every way to start ``exp COMMAND``."""
    return {
        "console script": [console_script(), command],
        "python -m exp": [sys.executable, "-m", "exp", command],
        "python exp.py": [sys.executable, str(HERE / "exp.py"), command],
        f"python -m exp.{command}": [sys.executable, "-m", f"exp.{command}"],
    }


def stand_in_nvidia_smi(tmp_path: Path, loads: list[tuple[int, int, int]]) -> dict:
    """An nvidia-smi on PATH that reports (utilisation %, memory used, memory total)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    rows = "".join(f"{i}, GPU-{i:04d}, {u}, {used}, {total}\\n"
                   for i, (u, used, total) in enumerate(loads))
    ids = "".join(f"{i}\\n" for i in range(len(loads)))
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\ncase "$*" in\n  *utilization*) printf "{rows}" ;;\n'
                   f'  *) printf "{ids}" ;;\nesac\n')
    smi.chmod(0o755)
    env = {k: v for k, v in ENV.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


# ─── entry points ────────────────────────────────────────────────────────────


@pytest.mark.timeout(180)
@pytest.mark.parametrize("command", ["run", "gopt"])
def test_every_entry_point_gives_one_line_and_exit_2(tmp_path, command):
    if command == "gopt":
        pytest.importorskip("skopt")
    write(tmp_path / "bad.conf", '[x]\ntype = "rnage"\n')
    write(tmp_path / "ok.conf", '[x]\ntype = "range"\nbounds = [0, 3]\n')
    write(tmp_path / "job.py", "def run(x, **kw):\n    return x\n")
    env = stand_in_nvidia_smi(tmp_path, [])  # no GPU at all
    cases = {
        "bad.conf": ("exp: error: bad.conf: [x]: unknown type 'rnage' (valid types are 'value', "
                     "'list', 'range', 'random')"),
        "ok.conf": ("exp: error: --gpu: no GPU found (nvidia-smi lists none); run without --gpu "
                    "to use CPU workers"),
    }
    for name, argv in entry_points(command).items():
        for conf, message in cases.items():
            extra = ["-g"] if conf == "ok.conf" else []
            out = run([*argv, "-p", conf, "-m", "job.py", *extra], tmp_path, env)
            assert (out.returncode, out.stderr.strip()) == (2, message), (name, out.stderr)
    for conf, message in cases.items():  # the library raises the same message
        call = (exp.run_experiment if command == "run"
                else pytest.importorskip("exp_gopt").optimize)
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            with pytest.raises(exp.ExpError) as info:
                call(tmp_path / conf, str(tmp_path / "job.py"), out=tmp_path,
                     gpus="free" if conf == "ok.conf" else None, quiet=True)
        finally:
            os.environ.clear()
            os.environ.update(old)
        assert "exp: error: " + str(info.value).replace(str(tmp_path) + "/", "") == message


@pytest.mark.timeout(60)
def test_console_script_sees_the_current_directory_like_python_m(tmp_path):
    (tmp_path / "mypkg").mkdir()
    write(tmp_path / "mypkg" / "__init__.py", "")
    write(tmp_path / "mypkg" / "train.py", "def run(x):\n    return x + 1\n")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 3]\n')
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    for argv in ([console_script(), "run"], [sys.executable, "-m", "exp", "run"]):
        out = run([*argv, "-p", "s.toml", "-m", "mypkg.train:run", "-q", "--fresh"], tmp_path, env)
        assert out.returncode == 0, (argv, out.stderr)
    assert [r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")] == [1.0, 2.0, 3.0]


def test_import_exp_run_and_exp_gopt_give_the_commands():
    import exp.gopt
    import exp.run
    assert callable(exp.run.main) and callable(exp.gopt.main)
    from exp.args import Namespace, Param, ParamDict  # noqa: F401
    from exp.params import DTypes, ParamSpace, Types  # noqa: F401
    out = run([sys.executable, "-m", "exp.run", "-h"], HERE)
    assert out.returncode == 0 and out.stdout.startswith("usage: exp run")
    for command in ("run", "gopt", "results"):
        out = run([sys.executable, "-m", "exp", command, "-h"], HERE)
        assert out.returncode == 0 and "-h, --help" in out.stdout, command


# ─── the original's flags ────────────────────────────────────────────────────


@pytest.mark.timeout(60)
def test_config_ids_repeated_or_listed(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 6]\n')
    write(tmp_path / "job.py", "def run(x):\n    return x\n")
    for flags in (["-c", "1", "-c", "3"], ["-c", "1", "3"], ["--config-ids", "3", "-c", "1"]):
        out = run([sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py", "-q",
                   "--fresh", *flags], tmp_path)
        assert out.returncode == 0, out.stderr
        assert [r["id"] for r in exp.read_journal(tmp_path / "s.jsonl")] == [1, 3], flags


@pytest.mark.timeout(120)
def test_gopt_takes_the_originals_flags(tmp_path):
    pytest.importorskip("skopt")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [-5, 5]\n')
    write(tmp_path / "job.py", "def run(x, **kwargs):\n    return (x - 1) ** 2\n")
    out = run([sys.executable, "-m", "exp.gopt", "-p", "s.toml", "-m", "job.py", "-n", "8",
               "-s", "rf", "-a", "lcb", "-o", "results/opt.csv", "--kuma", "-w", "1"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "KUMA-SAN" not in out.stderr + out.stdout  # not a terminal: no bear
    assert len(exp.read_journal(tmp_path / "results" / "s-gopt.jsonl")) == 8
    out = run([sys.executable, "-m", "exp", "gopt", "-p", "s.toml", "-m", "job.py", "-n", "2",
               "-s", "xx"], tmp_path)
    assert out.returncode == 2 and "invalid choice: 'xx'" in out.stderr


@pytest.mark.timeout(60)
def test_kuma_draws_the_bear_on_a_terminal(tmp_path):
    pty = pytest.importorskip("pty")
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 4]\n')
    write(tmp_path / "job.py", "import time\ndef run(x):\n    time.sleep(0.3)\n    return x\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child: exp on a terminal
        os.chdir(tmp_path)
        os.environ["PYTHONPATH"] = str(HERE)
        os.execv(sys.executable, [sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m",
                                  "job.py", "-w", "1", "--kuma"])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    text = output.decode(errors="replace")
    assert "KUMA-SAN IS" in text and "RUNNING!" in text and "( •(ｴ)•)||" in text
    assert "4/4" in text


@pytest.mark.timeout(60)
def test_runnables_get_pid_as_the_original_passed_it(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 4]\n')
    write(tmp_path / "named.py", "def run(x, pid):\n    return pid\n")
    write(tmp_path / "kw.py", "def run(**kwargs):\n    return kwargs['pid'] == kwargs['worker']\n")
    write(tmp_path / "plain.py", "def run(x):\n    return x\n")
    for job, ok in (("named.py", lambda r: r in (0, 1)), ("kw.py", lambda r: r is True),
                    ("plain.py", lambda r: True)):
        out = run([sys.executable, "-m", "exp.run", "-p", "s.toml", "-m", job, "-w", "2",
                   "--name", job, "-q"], tmp_path)
        assert out.returncode == 0, out.stderr
        assert all(ok(r["result"]) for r in exp.read_journal(tmp_path / f"{job}.jsonl")), job


@pytest.mark.timeout(120)
def test_gpu_flag_picks_the_free_gpus(tmp_path):
    write(tmp_path / "s.toml", '[x]\ntype = "range"\nbounds = [0, 8]\n')
    write(tmp_path / "job.py", "import os, time\ndef run(x, gpu):\n    time.sleep(0.05)\n"
                               "    return os.environ['CUDA_VISIBLE_DEVICES']\n")
    # GPU 0 busy computing, 1 idle, 2 idle but its memory half full, 3 idle
    env = stand_in_nvidia_smi(tmp_path, [(93, 70000, 81559), (0, 500, 81559),
                                         (5, 40000, 81559), (12, 3000, 81559)])
    args = [sys.executable, "-m", "exp", "run", "-p", "s.toml", "-m", "job.py", "-q", "--fresh"]

    def gpus_used(*flags: str) -> set[str]:
        out = run([*args, *flags], tmp_path, env)
        assert out.returncode == 0, out.stderr
        return {r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")}

    assert gpus_used("-g") == {"1", "3"}
    assert gpus_used("--gpus", "free") == {"1", "3"}
    assert gpus_used("--gpus", "all") == {"0", "1", "2", "3"}
    assert gpus_used("-g", "--gpu-max-mem", "60") == {"1", "2", "3"}
    assert gpus_used("-g", "--gpu-max-util", "95", "--gpu-max-mem", "90") == {"0", "1", "2", "3"}
    env_cvd = {**env, "CUDA_VISIBLE_DEVICES": "0,2,3"}
    out = run([*args, "-g"], tmp_path, env_cvd)
    assert out.returncode == 0
    assert {r["result"] for r in exp.read_journal(tmp_path / "s.jsonl")} == {"3"}
    busy = stand_in_nvidia_smi(tmp_path, [(93, 70000, 81559), (50, 1000, 81559)])
    out = run([*args, "-g"], tmp_path, busy)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "exp: error: --gpu: no free GPU (utilisation <= 20% and memory <= 10%): 0 (93% busy, "
        "86% of memory used), 1 (50% busy, 1% of memory used); wait for them, raise "
        "--gpu-max-util or --gpu-max-mem, or name GPUs with --gpus IDS")


# ─── the original's library ──────────────────────────────────────────────────


def test_param_space_api_of_exp_05(tmp_path, monkeypatch):
    ps = ParamSpace(seed=4)
    ps.add_value("v", 7)
    ps.add_list("l", [3, 1, 3, 2, 1])
    ps.add_range("r")  # low=0, high=1, step 1: [0.0]
    ps.add_range("i", 0, 10, 3, dtype=int)
    ps.add_random("lr", 1e-3, 1e-1, prior="log-uniform", n=3)
    assert ps.get_value("v") == 7 and ps.get_param("v") == 7
    assert ps.get_list("l") == [3, 1, 3, 2, 1] and ps.get_list("l", unique=True) == [3, 1, 2]
    assert ps.get_range("r") == [0.0] and ps.get_range("i") == [0, 3, 6, 9]
    draws = ps.get_random("lr")
    assert len(draws) == 3 and all(1e-3 <= d < 1e-1 for d in draws)
    assert ps.get_param("i", exp.Types.RANGE) == [0, 3, 6, 9]
    with pytest.raises(exp.ParamError, match=r"\[i\]: has type 'range', not 'list'"):
        ps.get_param("i", "list")
    assert ps.sample_param("l") in (1, 2, 3) and set(ps.sample_space()) == set(ps.params)
    assert ps.get_spec("i") == {"type": "range", "bounds": [0, 10], "step": 3, "dtype": "int"}
    assert ps.domain("l")["domain"] == [3, 1, 2] and ps.domain("l")["dtype"] == "categorical"
    assert ps.domain("v")["domain"] == [7] and "prior" not in ps.domain("v").keys()
    assert dict(domain=ps.domain("i")["domain"], dtype=ps.domain("i")["dtype"],
                prior=ps.domain("i")["prior"]) == {"domain": [0, 10], "dtype": "int",
                                                    "prior": "uniform"}
    assert ps.domain("lr").prior == "log-uniform" and ps.domain("lr")[0] == "lr"
    assert exp.Types.from_str("RANGE") is exp.Types.RANGE
    assert exp.DTypes.from_type(int) is exp.DTypes.INT and exp.DTypes.from_type("Float") is \
        exp.DTypes.FLOAT
    assert exp.DTypes.CATEGORICAL.value == "categorical"
    with pytest.raises(ValueError, match="unknown type 'rnage'"):
        exp.Types.from_str("rnage")
    empty = ParamSpace()
    assert empty.size == 0 and list(empty.param_grid()) == []
    monkeypatch.chdir(tmp_path)
    ps.write_configs()
    assert Path("params.csv").read_text().splitlines()[0] == "id,run,v,l,r,i,lr"
    assert [p.name for p in ps.write_config_files()][:2] == ["params_0.conf", "params_1.conf"]


@pytest.mark.parametrize("text", ['[x]\ntype = "rnage"\n', '[x]\nbounds = [0, 1]\n', 'x = 3\n',
                                  '[x]\ntype = "range"\nbounds = [1, 0]\n', '[x\n'])
def test_every_error_in_a_file_is_a_decode_error(tmp_path, text):
    f = tmp_path / "bad.conf"
    f.write_text(text)
    with pytest.raises(ParamDecodeError):
        ParamSpace(f)


def test_args_api_of_exp_05():
    from exp.args import Param, ParamDict, as_bool, convert_type
    p = Param(int, 3, [1, 3])
    assert (p.typefn, p.value, p.default, p.options) == (int, 3, 3, [1, 3])
    args = ParamDict({"x": (float, None), "id": (int, 0), "cat": (str, "A", ["A", "B"])})
    assert args.defaults["cat"].value == "A"
    args.add_params({"flag": (bool, False)})
    assert args["flag"] is False
    args.from_dict({"x": "2.5", "id": "3", "cat": "B", "flag": "yes", "extra": "raw"})
    assert dict(args) == {"x": 2.5, "id": 3, "cat": "B", "flag": True}
    args["cat"] = None  # None puts the default back
    assert args["cat"] == "A"
    assert as_bool(None) is False and convert_type(bool) is as_bool
    with pytest.raises(exp.ParamError, match="'C' is not one of the options"):
        args["cat"] = "C"


def test_version_is_above_the_originals():
    assert tuple(map(int, exp.__version__.split(".")[:3])) >= (1, 0, 0)


# ─── vendored and the original's walkthrough ─────────────────────────────────


@pytest.mark.timeout(180)
def test_the_originals_readme_walkthrough_with_a_vendored_copy(tmp_path):
    """basic.conf and runnable.py of exp 0.5's README, exp.py (and exp_gopt.py) copied
    into the project: ``python -m exp.run`` with the standard library alone (-S), and
    ``python -m exp.gopt``."""
    shutil.copy(HERE / "exp.py", tmp_path / "exp.py")
    write(tmp_path / "basic.conf", '[x]\ntype = "range"\nbounds = [-10,10]\n')
    write(tmp_path / "runnable.py", "def run(x=1, **kwargs):\n    return x ** 2\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = run([sys.executable, "-S", "-m", "exp.run", "-p", "basic.conf", "-m", "runnable.py",
               "--workers", "10"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "basic.jsonl")
    assert len(records) == 20 and min(r["result"] for r in records) == 0
    out = run([sys.executable, "-S", "exp.py", "results", "basic.jsonl"], tmp_path, env)
    assert out.returncode == 0 and "20 run(s): 20 ok" in out.stdout
    pytest.importorskip("skopt")
    shutil.copy(HERE / "exp_gopt.py", tmp_path / "exp_gopt.py")
    where = run([sys.executable, "-c", "import exp, exp_gopt; print(exp.__file__, "
                 "exp_gopt.__file__)"], tmp_path, env)
    assert where.stdout.split() == [str(tmp_path / "exp.py"), str(tmp_path / "exp_gopt.py")]
    out = run([sys.executable, "-m", "exp.gopt", "-p", "basic.conf", "-m", "runnable.py",
               "--workers", "2", "-n", "20", "--plot"], tmp_path, env, timeout=150)
    assert out.returncode == 0, out.stderr
    records = exp.read_journal(tmp_path / "basic-gopt.jsonl")
    assert len(records) == 20 and min(r["result"] for r in records) < 1
    assert (tmp_path / "basic-gopt_convergence.png").stat().st_size > 0
