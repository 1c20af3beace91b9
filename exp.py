"""exp: experiment design, deployment and optimisation in one file.

Write a function and a TOML file describing its parameter space; exp runs
every configuration in parallel worker processes (one per CPU slot, or pinned
one per GPU), journals each finished run at once and resumes an interrupted
experiment with the same command::

    # space.toml                      # runnable.py
    [lr]                              def run(lr, layers, **kwargs):
    type = "random"                       return train(lr, layers)
    bounds = [1e-4, 1e-1]
    prior = "log-uniform"             $ exp run -p space.toml -m runnable.py
    n = 4                             $ exp gopt -p space.toml -m runnable.py -n 50
    [layers]
    type = "list"
    value = [1, 2, 3]

Only the standard library is imported here, so this file can be copied alone
into a project. Bayesian optimisation (``exp gopt``) lives in ``exp_gopt`` and
needs the ``gopt`` extra; running on a Dask cluster needs the ``dask`` extra.
"""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = [
    "ParamSpace", "Types", "DTypes", "Domain",
    "Param", "ParamDict", "Namespace", "as_bool", "as_int", "convert_type",
    "ExpError", "ParamError", "ParamDecodeError", "RunnableError", "JournalError",
    "report", "should_stop", "Pruned", "ReportError",
    "load_runnable", "run_experiment", "plan", "Plan", "Records", "results", "Table",
    "dataframe", "read_journal", "read_reports", "write_csv",
    "summarize",
    "visible_gpus", "free_gpus", "gpu_slots",
    "main",
]

import os
import signal
import sys

# Run as a command: until main() takes over, a Ctrl-C ends the start-up
# quietly (status 130 in the shell) instead of with a traceback from an import.
_AS_COMMAND = __name__ == "__main__" or os.path.basename(getattr(sys, "argv", [""])[0]) == "exp"
if _AS_COMMAND and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

if __name__ == "__main__":  # python -m exp, python exp.py: run the module named exp, so that
    # exp_gopt (which imports exp) and the command share one copy of every class (ExpError)
    import importlib
    if __spec__ is not None:  # python -m exp (or -m pkg.exp, vendored in a package)
        _exp = importlib.import_module(__spec__.name)
    else:  # python path/to/exp.py: the same file, as exp
        import importlib.util
        _spec = importlib.util.spec_from_file_location("exp", __file__)
        _exp = sys.modules["exp"] = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_exp)
    sys.exit(_exp.main())

# Modules only some commands need (argparse, random, tomllib, csv, hashlib,
# fractions, inspect, logging, subprocess, pickle) are imported where used, and
# value types are named tuples rather than dataclasses (which import inspect):
# `exp --help` stays fast, and so does the start of each worker process.
import contextlib  # noqa: E402 - the lines above must run first
import enum  # noqa: E402
import functools  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import operator  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, NamedTuple  # noqa: E402

if TYPE_CHECKING:
    import argparse
    import random
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from fractions import Fraction


def _log() -> Any:
    """The ``exp`` logger (logging is imported on first use: ``exp --help`` stays fast)."""
    import logging
    return logging.getLogger("exp")


# ─── constants and types ─────────────────────────────────────────────────────


class Types(str, enum.Enum):
    """The four parameter types of a param file."""

    VALUE = "value"
    LIST = "list"
    RANGE = "range"
    RANDOM = "random"

    @staticmethod
    def from_str(value: str, case_sensitive: bool = False) -> Types:
        """The type named ``value`` (any case unless ``case_sensitive``), as exp 0.5 had it."""
        text = str(getattr(value, "value", value))
        try:
            return Types(text if case_sensitive else text.lower())
        except ValueError:
            raise ValueError(f"unknown type {value!r} (valid types are {_quoted(Types)})") from None


class DTypes(str, enum.Enum):
    """Numeric types of range and random parameters; list and value ones are categorical."""

    INT = "int"
    FLOAT = "float"
    CATEGORICAL = "categorical"

    @staticmethod
    def from_type(dtype: type | str, case_sensitive: bool = False) -> DTypes:
        """The dtype of ``int``, ``float`` or a name (``"int"``, ``"categorical"``...)."""
        if isinstance(dtype, DTypes):
            return dtype
        text = {int: "int", float: "float"}.get(dtype, dtype) if isinstance(dtype, type) else dtype
        try:
            return DTypes(str(text) if case_sensitive else str(text).lower())
        except ValueError:
            raise ValueError(f"unknown dtype {dtype!r} (valid dtypes are {_quoted(DTypes)})") \
                from None


_PRIORS = ("uniform", "log-uniform")
_NUMERIC = ("int", "float")  # the dtypes a param file may give
#: Most values one parameter may take in a grid (each is held in memory).
_MAX_VALUES = 1_000_000
_KEYS = {
    Types.VALUE: ("value",),
    Types.LIST: ("value",),
    Types.RANGE: ("bounds", "step", "dtype"),
    Types.RANDOM: ("bounds", "prior", "dtype", "n", "persist"),
}
#: Keys exp adds to a configuration; a space may not define them.
_RESERVED = ("id", "run", "worker", "gpu")
#: What exp passes a runnable that accepts it: those, and exp 0.5's name of the worker
#: index, "pid" (a parameter of that name is passed instead).
_PASSED = (*_RESERVED, "pid")
STATUSES = ("ok", "pruned", "failed", "timeout", "crashed")
EXIT_OK, EXIT_NOT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: The journal's format (its header's "journal"; 1 when absent). A journal of a
#: newer format is refused, never misread.
_JOURNAL_FORMAT = 2


def _quoted(items: Iterable[Any]) -> str:
    return ", ".join(repr(getattr(i, "value", i)) for i in items)


# ─── exceptions ──────────────────────────────────────────────────────────────


class ExpError(Exception):
    """Root of every error a user can cause; the CLI prints it in one line."""


class ParamError(ExpError, ValueError):
    """A parameter is invalid: the message names the file and the parameter."""

    def __init__(self, message: str, *, file: str | os.PathLike | None = None,
                 param: str | None = None):
        self.file, self.param, self.reason = file, param, message
        prefix = f"{_printable(os.fspath(file))}: " if file is not None else ""
        prefix += f"[{_printable(param)}]: " if param is not None else ""
        super().__init__(prefix + message)


def _printable(text: Any) -> str:
    """Text for a one-line message: repr() when it holds newlines or escape codes."""
    text = str(text)
    return text if text.isprintable() else repr(text)


class ParamDecodeError(ParamError):
    """A param file cannot be read or is not valid TOML."""


class RunnableError(ExpError):
    """The runnable cannot be found, imported or called with the space."""


class JournalError(ExpError):
    """A journal cannot be used for this experiment."""


class _Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt so the driver cleans up once."""


class Pruned(BaseException):
    """Raised by ``report`` in a run the early-stopping scheduler has stopped.

    A ``BaseException``, so that ``except Exception`` in a training loop does
    not swallow it; ``finally`` blocks and checkpoint saving still run. The run
    ends ``pruned``, its last reported metrics as its result.
    """

    _exp_pruned = True  # how a worker knows it, whichever copy of exp raised it


class ReportError(ExpError, ValueError):
    """A call of ``report`` that exp cannot record (the run then fails with it)."""


# ─── helpers ─────────────────────────────────────────────────────────────────


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _exact(x: int | float) -> Fraction:
    """The decimal a user wrote (0.1 is 1/10, not the nearest binary float)."""
    from fractions import Fraction
    return Fraction(x) if isinstance(x, int) else Fraction(repr(x))


def _json_default(obj: Any) -> Any:
    """JSON for numpy scalars and arrays without importing numpy."""
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"result of type {type(obj).__name__} is not JSON-serialisable")


_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), allow_nan=False)
try:  # the encoder json.dumps builds on each call, built once (a hot path: twice per run),
    # without the check for values that contain themselves: only for flat values
    from json.encoder import c_make_encoder, encode_basestring_ascii
    _C_ENCODE = c_make_encoder(None, _json_default, encode_basestring_ascii, None, ":", ",",
                               False, False, False)
except (ImportError, TypeError):  # no C accelerator
    _C_ENCODE = None

_SCALARS = frozenset({int, float, str, bool, type(None)})
#: How the journal writes non-finite numbers, which strict JSON has no word for
#: (JavaScript's ``Number()`` reads these strings back as the numbers).
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _is_flat(value: Any) -> bool:
    """A JSON scalar, or a dict of them with text keys: JSON reads it back the same."""
    return type(value) in _SCALARS or (type(value) is dict and all(
        type(k) is str and type(v) in _SCALARS for k, v in value.items()))


def _dumps(obj: Any) -> str:
    """Compact strict JSON, numpy values too; non-finite numbers as the strings
    "NaN", "Infinity", "-Infinity". ValueError for a value that contains itself."""
    try:
        if _C_ENCODE is not None and _is_flat(obj):
            return "".join(_C_ENCODE(obj, 0))
        return _ENCODER.encode(obj)
    except ValueError:
        finite = _finite(obj)
        if finite is obj:  # nothing to replace: it holds itself
            raise
        return _ENCODER.encode(finite)


def _finite(obj: Any, depth: int = 0) -> Any:
    """``obj`` with each non-finite float replaced by its journal string (the same
    object when there is none)."""
    if depth > 200:
        raise ValueError("the value is nested too deeply (or contains itself)")
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if obj != obj else "Infinity" if obj > 0 else "-Infinity"
    if isinstance(obj, (str, int, type(None))):
        return obj
    if isinstance(obj, dict):
        items = {k: _finite(v, depth + 1) for k, v in obj.items()}
        return obj if all(items[k] is v for k, v in obj.items()) else items
    if isinstance(obj, (list, tuple)):
        items = [_finite(v, depth + 1) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else items
    try:
        plain = _json_default(obj)
    except TypeError:
        return obj
    return _finite(plain, depth + 1)


def _loads(data: str | bytes) -> Any:
    """JSON as the journal writes it: the strings "NaN", "Infinity", "-Infinity"
    become numbers again (and so do the bare words older journals wrote)."""
    obj = json.loads(data)
    if (b'"NaN"' in data or b'Infinity"' in data) if isinstance(data, bytes) \
            else ('"NaN"' in data or 'Infinity"' in data):
        obj = _nonfinite(obj)
    return obj


def _nonfinite(obj: Any) -> Any:
    if type(obj) is str:
        return _NONFINITE.get(obj, obj)
    if type(obj) is dict:
        return {k: _nonfinite(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_nonfinite(v) for v in obj]
    return obj


def _file_hash(path: str | os.PathLike) -> str:
    return _sha256(Path(path).read_bytes())


def _sha256(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()[:16]


def _std_fds() -> None:
    """Open /dev/null on standard descriptors that are closed (``exp run … >&-`` from
    cron), so that no socket or file of exp's lands on fd 0, 1 or 2, where a
    worker's capture of a run's output would replace it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)


def _signal_text(exitcode: int | None) -> str:
    if exitcode is None:
        return "worker died"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name} ({-exitcode})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"worker exited with code {exitcode}"


def _extra(module: str, feature: str, extra: str) -> Any:
    """Import an optional module, or say in one line which extra to install."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = getattr(e, "name", None) or module
        raise ExpError(f"{feature} needs the {extra} extra ({missing} is missing): "
                       f"pip install 'exp[{extra}]' (from a clone of exp: pip install "
                       f"'.[{extra}]')") from None


# ─── parameter space ─────────────────────────────────────────────────────────


class Domain(NamedTuple):
    """What an optimiser needs of one parameter (bounds both ends included).

    Also read as exp 0.5's dict: ``domain["domain"]`` (the values of a list or
    value, else ``[low, high]``), ``domain["dtype"]`` ("int", "float" or
    "categorical") and, for ranges and random parameters, ``domain["prior"]``.
    """

    name: str
    type: Types
    dtype: DTypes | None = None
    low: float | int | None = None
    high: float | int | None = None
    prior: str = "uniform"
    values: tuple = ()

    def _as_dict(self) -> dict[str, Any]:
        if self.type in (Types.VALUE, Types.LIST):
            return {"domain": list(self.values), "dtype": DTypes.CATEGORICAL.value}
        return {"domain": [self.low, self.high], "dtype": self.dtype.value, "prior": self.prior}

    def __getitem__(self, key: Any) -> Any:
        return self._as_dict()[key] if isinstance(key, str) else tuple.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._as_dict().get(key, default)

    def keys(self) -> list[str]:
        return list(self._as_dict())


class ParamSpace:
    """A set of named parameters, loaded from a TOML file or built in code.

    ``param_grid`` iterates over every configuration lazily (constant memory
    for any size); ``size`` is computed without enumerating.
    """

    def __init__(self, filename: str | os.PathLike | None = None, *, seed: int | None = None):
        self.filename = os.fspath(filename) if filename is not None else None
        self.seed = seed
        import random
        self._rng = random.Random(seed)
        self.params: dict[str, dict[str, Any]] = {}
        if filename is not None:
            for name, spec in _read_toml(self.filename).items():
                try:
                    self._add(name, spec)
                except ParamDecodeError:
                    raise
                except ParamError as e:  # every problem of a file is a decode error (exp 0.5)
                    raise ParamDecodeError(e.reason, file=e.file, param=e.param) from None

    # building
    def add_value(self, name: str, value: Any) -> None:
        self._add(name, {"type": "value", "value": value})

    def add_list(self, name: str, values: Iterable[Any]) -> None:
        self._add(name, {"type": "list", "value": list(values)})

    def add_range(self, name: str, low: float = 0, high: float = 1, step: float = 1,
                  dtype: type | str = float) -> None:
        self._add(name, {"type": "range", "bounds": [low, high], "step": step,
                         "dtype": _dtype_name(dtype)})

    def add_random(self, name: str, low: float = 0, high: float = 1, prior: str = "uniform",
                   dtype: type | str = float, n: int | None = 1, persist: bool = False) -> None:
        self._add(name, {"type": "random", "bounds": [low, high], "prior": prior,
                         "dtype": _dtype_name(dtype), "n": 1 if n is None else n,
                         "persist": persist})

    @classmethod
    def _from_dict(cls, space: dict[str, dict[str, Any]], *, seed: int | None = None) -> ParamSpace:
        """The space a journal records (its tables as ``to_dict`` gives them)."""
        ps = cls(seed=seed)
        for name, spec in space.items():
            ps._add(name, dict(spec))
        return ps

    def _add(self, name: str, spec: Any) -> None:
        spec = _validate(name, spec, self.filename)
        if spec.pop("persist", False):
            spec = {"type": "list", "value": _draw(spec, self._rng)}
        self.params[name] = spec

    # reading
    def param_names(self) -> list[str]:
        return list(self.params)

    def get_spec(self, name: str) -> dict[str, Any]:
        """The parameter's table, every default filled in (a copy)."""
        return dict(self._spec(name))

    def get_param(self, name: str, type: Types | str | None = None) -> Any:
        """The parameter's values, as exp 0.5 gave them: a value's value, a list, the
        values of a range, or ``n`` fresh draws of a random parameter.

        ``type`` (optional) must be the parameter's type.
        """
        spec = self._spec(name)
        if type is not None and Types.from_str(type) is not Types(spec["type"]):
            raise ParamError(f"has type {spec['type']!r}, not {Types.from_str(type).value!r}",
                             file=self.filename, param=name)
        if spec["type"] == "value":
            return spec["value"]
        if spec["type"] == "list":
            return list(spec["value"])
        return _values(spec, self._rng)

    def get_value(self, name: str) -> Any:
        return self.get_param(name, Types.VALUE)

    def get_list(self, name: str, unique: bool = False) -> list[Any]:
        values = self.get_param(name, Types.LIST)
        return list(dict.fromkeys(values)) if unique else values

    def get_range(self, name: str) -> list[Any]:
        return self.get_param(name, Types.RANGE)

    def get_random(self, name: str) -> list[Any]:
        """``n`` values drawn afresh from the parameter's prior."""
        return self.get_param(name, Types.RANDOM)

    def sample_param(self, name: str) -> Any:
        """One value of the parameter at random (a random one drawn afresh)."""
        return self._rng.choice(_values(self._spec(name), self._rng))

    def domain(self, name: str) -> Domain:
        spec = self._spec(name)
        kind = Types(spec["type"])
        if kind is Types.VALUE:  # any TOML value, arrays and tables too
            return Domain(name, kind, values=(spec["value"],))
        if kind is Types.LIST:
            return Domain(name, kind, values=tuple(dict.fromkeys(spec["value"])))
        low, high = spec["bounds"]
        return Domain(name, kind, DTypes(spec["dtype"]), low, high, spec.get("prior", "uniform"))

    def _spec(self, name: str) -> dict[str, Any]:
        try:
            return self.params[name]
        except KeyError:
            raise ParamError(f"no such parameter (valid names are {_quoted(self.params)})",
                             file=self.filename, param=name) from None

    @property
    def size(self) -> int:
        """Configurations of the grid (0 for a space without parameters)."""
        if not self.params:
            return 0
        return math.prod(_count(spec) for spec in self.params.values())

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"ParamSpace({self.filename or ''!r}, params={self.param_names()}, size={self.size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpace) and self.params == other.params

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dict(spec) for name, spec in self.params.items()}

    # configurations
    def grid_values(self, rng: random.Random | None = None) -> dict[str, list[Any]]:
        """The values each parameter takes in a grid (random ones drawn from rng)."""
        return {name: list(axis) for name, axis in self._grid_axes(rng).items()}

    def _grid_axes(self, rng: random.Random | None = None) -> dict[str, Sequence[Any]]:
        """grid_values, with an int range as a ``range``: a grid of one axis of ten
        million values holds none of them."""
        rng = rng or self._grid_rng()
        return {name: _axis(spec, rng) for name, spec in self.params.items()}

    def _grid_rng(self) -> random.Random:
        # With a seed every grid is the same (a resumed experiment needs that);
        # without one each grid draws afresh.
        import random
        return random.Random(self.seed) if self.seed is not None else self._rng

    def param_grid(self, runs: int = 1) -> Iterator[dict[str, Any]]:
        """Every configuration, ``runs`` times each: dicts with ``id`` and ``run``."""
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
            raise ParamError(f"runs must be an integer >= 1, got {runs!r}")
        return _grid(self._grid_axes(), runs) if self.params else iter(())

    def config(self, cid: int, values: dict[str, list[Any]] | None = None) -> dict[str, Any]:
        """Configuration ``cid`` of the grid, computed directly (mixed radix)."""
        values = values or self._grid_axes()
        if not 0 <= cid < self.size:
            raise ParamError(f"unknown config id {cid!r} (valid ids are 0..{self.size - 1})")
        config, rest = {}, cid
        for name in reversed(values):
            rest, i = divmod(rest, len(values[name]))
            config[name] = values[name][i]
        return {name: config[name] for name in values}

    def sample_space(self) -> dict[str, Any]:
        """One random configuration (random parameters drawn afresh)."""
        return {name: self.sample_param(name) for name in self.params}

    # writing
    def write(self, path: str | os.PathLike) -> None:
        """Write the space as TOML; ``ParamSpace(path)`` reads it back identically."""
        lines = []
        for name, spec in self.params.items():
            lines.append(f"[{_toml_key(name)}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in spec.items()]
            lines.append("")
        Path(path).write_text("\n".join(lines), encoding="utf-8")

    def write_configs(self, output_path: str | os.PathLike = "params.csv", runs: int = 1) -> None:
        """One CSV row per configuration and run: id, run, then the parameters.

        Random values are those of a grid drawn now: give the space a seed for
        the values an experiment with that seed runs.
        """
        import csv
        with open(output_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "run", *self.params])
            for config in self.param_grid(runs):
                writer.writerow([config["id"], config["run"], *(config[n] for n in self.params)])

    def write_config_files(self, output_path: str | os.PathLike = "params",
                           file_prefix: str = "params") -> list[Path]:
        """One flat TOML file per configuration, ``OUTPUT_PATH/PREFIX_ID.conf``: its
        parameters, then ``run = 1`` and its ``id`` (exp 0.5's files)."""
        directory = Path(output_path)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for config in self.param_grid():
            path = directory / f"{file_prefix}_{config['id']}.conf"
            lines = [(k, v) for k, v in config.items() if k not in ("id", "run")]
            lines += [("run", config["run"]), ("id", config["id"])]
            path.write_text("".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in lines),
                            encoding="utf-8")
            paths.append(path)
        return paths


def _grid(values: dict[str, Sequence[Any]], runs: int) -> Iterator[dict[str, Any]]:
    """Configurations in id order (the last parameter varies fastest), each ``runs`` times."""
    names = list(values)
    for cid, combo in enumerate(_product(list(values.values()))):
        for r in range(1, runs + 1):
            yield {**dict(zip(names, combo)), "id": cid, "run": r}


def _product(axes: list[Sequence[Any]]) -> Iterator[tuple]:
    """itertools.product without its copy of every axis (a range stays a range)."""
    if not axes:
        yield ()
        return
    *outer, last = axes
    for prefix in _product(outer):
        for value in last:
            yield (*prefix, value)


def _dtype_name(dtype: type | str) -> str:
    return {int: "int", float: "float"}.get(dtype, dtype) if isinstance(dtype, type) else dtype


def _read_toml(filename: str) -> dict[str, Any]:
    import tomllib
    try:
        with open(filename, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ParamDecodeError("no such file", file=filename) from None
    except IsADirectoryError:
        raise ParamDecodeError("is a directory, not a param file", file=filename) from None
    except OSError as e:
        raise ParamDecodeError(f"cannot read: {e.strerror}", file=filename) from None
    except UnicodeDecodeError as e:
        raise ParamDecodeError(f"not UTF-8 text ({e.reason} at byte {e.start})",
                               file=filename) from None
    except tomllib.TOMLDecodeError as e:
        where = ""
        if "end of document" in str(e):
            with open(filename, "rb") as f:
                lines = f.read().count(b"\n") + 1
            where = f" (line {lines})"
        raise ParamDecodeError(f"invalid TOML: {e}{where}", file=filename) from None
    except RecursionError:
        raise ParamDecodeError("invalid TOML: nested too deeply", file=filename) from None


def _validate(name: Any, spec: Any, file: str | None) -> dict[str, Any]:
    """Check one parameter table and return it with every default filled in."""
    def fail(message: str) -> ParamError:
        return ParamError(message, file=file, param=name)

    if not isinstance(name, str) or not name:
        raise ParamError(f"parameter names must be non-empty strings, got {name!r}", file=file)
    if name in _RESERVED:
        raise fail(f"{name!r} is a reserved name ({_quoted(_RESERVED)} are added by exp)")
    if not isinstance(spec, dict):
        raise fail(f"expected a table with a 'type' key, got {spec!r}")
    if "type" not in spec:
        raise fail(f"missing key 'type' (valid types are {_quoted(Types)})")
    try:
        kind = Types(spec["type"])
    except ValueError:
        raise fail(f"unknown type {spec['type']!r} (valid types are {_quoted(Types)})") from None
    for key in spec:
        if key != "type" and key not in _KEYS[kind]:
            raise fail(f"unknown key {key!r} for type {kind.value!r} (valid keys are "
                       f"{_quoted(_KEYS[kind])})")
    if kind is Types.VALUE:
        if "value" not in spec:
            raise fail("missing key 'value'")
        _check_plain(spec["value"], fail)
        return {"type": kind.value, "value": spec["value"]}
    if kind is Types.LIST:
        return {"type": kind.value, "value": _check_list(spec.get("value"), fail)}
    dtype = spec.get("dtype", "float")
    if dtype not in ("int", "float"):
        raise fail(f"unknown dtype {dtype!r} (valid dtypes are {_quoted(_NUMERIC)})")
    default_bounds = [0, 1] if kind is Types.RANDOM else None
    low, high = _check_bounds(spec.get("bounds", default_bounds), dtype, fail)
    if kind is Types.RANGE:
        step = spec.get("step", 1)
        if not _is_number(step) or not math.isfinite(step) or step <= 0:
            raise fail(f"step must be a number > 0, got {step!r}")
        if dtype == "int" and step != int(step):
            raise fail(f"step must be an integer for dtype 'int', got {step!r}")
        count = _range_count(low, high, step)
        if count > _MAX_VALUES:
            raise fail(f"bounds [{low!r}, {high!r}] with step {step!r} give {count:,} values "
                       f"(at most {_MAX_VALUES:,}; use a larger step, or 'random' values)")
        return {"type": kind.value, "bounds": [low, high], "step": step, "dtype": dtype}
    prior = spec.get("prior", "uniform")
    if prior not in _PRIORS:
        raise fail(f"unknown prior {prior!r} (valid priors are {_quoted(_PRIORS)})")
    if prior == "log-uniform" and low <= 0:
        raise fail(f"log-uniform bounds must be > 0, got [{low!r}, {high!r}]")
    n = spec.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_VALUES:
        raise fail(f"n must be an integer from 1 to {_MAX_VALUES:,}, got {n!r}")
    persist = spec.get("persist", False)
    if not isinstance(persist, bool):
        raise fail(f"persist must be true or false, got {persist!r}")
    return {"type": kind.value, "bounds": [low, high], "prior": prior, "dtype": dtype,
            "n": n, "persist": persist}


def _check_bounds(bounds: Any, dtype: str, fail: Callable[[str], ParamError]) -> tuple:
    if bounds is None:
        raise fail("missing key 'bounds' (expected [low, high])")
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(_is_number(b) for b in bounds)):
        raise fail(f"bounds must be [low, high] with two numbers, got {bounds!r}")
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high)):
        raise fail(f"bounds must be finite, got [{low!r}, {high!r}]")
    if not low < high:
        raise fail(f"bounds must be [low, high] with low < high, got [{low!r}, {high!r}]")
    if dtype == "int":
        if low != int(low) or high != int(high):
            raise fail(f"bounds must be integers for dtype 'int', got [{low!r}, {high!r}]")
        return int(low), int(high)
    return low, high


def _check_plain(value: Any, fail: Callable[[str], ParamError], depth: int = 0) -> None:
    """Values must survive the JSON journal: no dates or times, no absurd nesting."""
    if depth > 64:
        raise fail("value is nested more than 64 levels deep")
    if isinstance(value, dict):
        for v in value.values():
            _check_plain(v, fail, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_plain(v, fail, depth + 1)
    elif not isinstance(value, (str, int, float, bool)):
        raise fail(f"values must be strings, numbers, booleans, arrays or tables, "
                   f"got {type(value).__name__} {value!r}")


def _kind(x: Any) -> str:
    return "number" if _is_number(x) else type(x).__name__


def _check_list(values: Any, fail: Callable[[str], ParamError]) -> list[Any]:
    if values is None:
        raise fail("missing key 'value' (expected an array such as [1, 2, 3])")
    if not isinstance(values, list):
        raise fail(f"value must be an array, got {values!r}")
    if not values:
        raise fail("value is an empty array (give at least one value)")
    kinds = {_kind(v) for v in values}
    if not kinds <= {"number", "str", "bool"}:
        raise fail(f"list values must be strings, numbers or booleans, got {values!r}")
    if len(kinds) > 1:
        raise fail(f"value is not a homogeneous array (mixes {' and '.join(sorted(kinds))}): "
                   f"{values!r}")
    return list(values)


def _range_count(low: Any, high: Any, step: Any) -> int:
    return max(0, math.ceil((_exact(high) - _exact(low)) / _exact(step)))


def _count(spec: dict[str, Any]) -> int:
    kind = spec["type"]
    if kind == "value":
        return 1
    if kind == "list":
        return len(spec["value"])
    if kind == "random":
        return spec["n"]
    return _range_count(*spec["bounds"], spec["step"])


def _values(spec: dict[str, Any], rng: random.Random) -> list[Any]:
    return list(_axis(spec, rng))


def _axis(spec: dict[str, Any], rng: random.Random) -> Sequence[Any]:
    """A parameter's values in a grid: a ``range`` for an int range, else a list."""
    kind = spec["type"]
    if kind == "value":
        return [spec["value"]]
    if kind == "list":
        return spec["value"]
    if kind == "random":
        return _draw(spec, rng)
    low, high = spec["bounds"]
    cast = int if spec["dtype"] == "int" else float
    if type(low) is int and type(high) is int and type(spec["step"]) is int:
        if cast is int:
            return range(low, high, spec["step"])  # exact, and no memory
        return list(map(cast, range(low, high, spec["step"])))
    start, step = _exact(low), _exact(spec["step"])
    return [cast(start + i * step) for i in range(_range_count(low, high, spec["step"]))]


def _draw(spec: dict[str, Any], rng: random.Random) -> list[Any]:
    """``n`` values from the prior on [low, high)."""
    low, high = spec["bounds"]
    log_scale = spec["prior"] == "log-uniform"
    out = []
    wide = not log_scale and math.isinf(high - low)  # [-1e308, 1e308]: high - low overflows
    for _ in range(spec["n"]):
        if log_scale:
            x = math.exp(rng.uniform(math.log(low), math.log(high)))
        elif wide:
            r = rng.random()
            x = low * (1 - r) + high * r
        else:
            x = rng.uniform(low, high)
        out.append(min(int(math.floor(x)), high - 1) if spec["dtype"] == "int"
                   else min(x, math.nextafter(high, low)))
    return out


def _toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON strings are TOML basic strings, but for DEL which TOML forbids raw.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


# ─── arguments (ParamDict, Namespace) ────────────────────────────────────────

_TRUE = ("yes", "true", "t", "y", "1")
_FALSE = ("no", "false", "f", "n", "0")


def as_bool(value: Any) -> bool:
    """``True`` for yes/true/t/y/1 and ``False`` for their negatives (any case); None is False."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy's bool_, int64
        value = value.item()
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"cannot read {value!r} as a boolean (use one of {_quoted(_TRUE + _FALSE)})")


def as_int(value: Any) -> int:
    """An int from an int, an integral float or a string such as ``"2.0"``; never truncates."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read {value!r} as an integer") from None
    if isinstance(value, bool) or not number.is_integer():
        raise ValueError(f"cannot read {value!r} as an integer without losing its fraction"
                         if math.isfinite(number) and not isinstance(value, bool)
                         else f"cannot read {value!r} as an integer")
    return int(number)


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {bool: as_bool, int: as_int}


def convert_type(typefn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The converter exp uses for a type: ``as_bool`` for bool, ``as_int`` for int."""
    return _CONVERTERS.get(typefn, typefn)


class Param(NamedTuple):
    """How to read one argument: a type function, its default ``value`` and,
    optionally, the options (``default`` is the same field)."""

    typefn: Callable[[Any], Any]
    value: Any = None
    options: tuple | list | None = None

    @property
    def default(self) -> Any:
        return self.value


class Namespace:
    """Attribute access to a dict of arguments, with a readable repr."""

    def __init__(self, values: dict[str, Any] | None = None, **kwargs: Any):
        self.__dict__.update(values or {}, **kwargs)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and vars(self) == vars(other)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__


class ParamDict(dict):
    """A dict of arguments with defaults, type conversion and allowed options.

    ``spec`` maps names to ``Param`` or tuples ``(typefn, default[, options])``.
    Assigning a known name converts the value (``"yes"`` to ``True`` for a bool,
    ``"2.0"`` to ``2`` for an int) and checks it against the options.
    """

    def __init__(self, spec: dict[str, Param | tuple] | None = None):
        super().__init__()
        self.spec: dict[str, Param] = {}
        self.defaults = self.spec  # exp 0.5's name
        self.add_params(spec or {})

    def add_params(self, spec: dict[str, Param | tuple]) -> None:
        """Add each ``name: (typefn, default[, options])``, its default as its value."""
        for name, param in spec.items():
            self.add(name, *param)

    def add(self, name: str, typefn: Callable[[Any], Any], default: Any = None,
            options: Iterable[Any] | None = None) -> None:
        self.spec[name] = Param(typefn, default, tuple(options) if options is not None else None)
        if default is not None:
            self[name] = default
        else:
            super().__setitem__(name, None)

    def __setitem__(self, name: str, value: Any) -> None:
        """Convert and check a known name's value; None puts its default back."""
        param = self.spec.get(name)
        if param is not None and value is None:
            value = param.value
        if param is not None and value is not None:
            convert = convert_type(param.typefn)
            try:
                value = convert(value)
            except (TypeError, ValueError) as e:
                raise ParamError(str(e), param=name) from None
            if param.options is not None and value not in param.options:
                raise ParamError(f"{value!r} is not one of the options ({_quoted(param.options)})",
                                 param=name)
        super().__setitem__(name, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def from_dict(self, values: dict[str, Any]) -> None:
        """Take the values whose names are in the spec; ignore the rest."""
        for name, value in values.items():
            if name in self.spec:
                self[name] = value

    def to_namespace(self) -> Namespace:
        return Namespace(dict(self))


# ─── runnable loading ────────────────────────────────────────────────────────


class _Runnable(NamedTuple):
    """Where the function lives: a file or an importable module, and its name."""

    spec: str
    file: str | None  # absolute path of the .py file, None for a module spec
    module: str | None  # dotted module name, None for a file spec
    function: str

    @property
    def identity(self) -> str:
        """What must match for a journal to be resumed (survives moving the folder)."""
        where = os.path.basename(self.file) if self.file else self.module
        return f"{where}:{self.function}"

    def source_hash(self) -> str:
        if self.file:
            return _file_hash(self.file)
        origin = _module_origin(self.module)
        return _file_hash(origin) if origin else ""


def _parse_runnable(spec: str) -> _Runnable:
    path, _, function = spec.rpartition(":") if ":" in spec.replace("\\:", "") else (spec, "", "")
    if os.name == "nt" and len(path) == 1:  # a drive letter, not a function
        path, function = spec, ""
    function = function or "run"
    if not function.isidentifier():
        raise RunnableError(f"{spec}: {function!r} is not a function name")
    if path.endswith(".py") or os.sep in path or "/" in path:
        file = os.path.abspath(path)
        if not os.path.isfile(file):
            raise RunnableError(f"{path}: no such file (give path/to/file.py, "
                                "file.py:function or package.module:function)")
        return _Runnable(spec, file, None, function)
    if not all(part.isidentifier() for part in path.split(".")):
        raise RunnableError(f"{spec}: not a file.py or package.module name")
    return _Runnable(spec, None, path, function)


def _module_origin(module: str) -> str | None:
    import importlib.util
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise RunnableError(f"{module}: cannot import its package: {e}") from None
    if found is None:
        raise RunnableError(f"{module}: no such module on sys.path (is it installed, or "
                            "should it be a path to a .py file?)")
    return found.origin if found.origin and found.origin.endswith(".py") else None


def _static_signature(runnable: _Runnable) -> tuple[set[str], set[str], bool] | None:
    """(accepted names, required names, takes **kwargs) read from the source.

    Reading the source with ``ast`` instead of importing it keeps heavy imports
    (and CUDA initialisation) out of the driver. None when the function is not
    a plain ``def`` in that file (assigned, imported): then workers check it.
    """
    import ast
    file = runnable.file or _module_origin(runnable.module)
    if not file:
        return None
    where = runnable.spec.rpartition(":")[0] if ":" in runnable.spec else runnable.spec
    try:
        tree = ast.parse(Path(file).read_bytes(), filename=file)
    except SyntaxError as e:
        raise RunnableError(f"{where}: syntax error at line {e.lineno}: {e.msg}") from None
    except (OSError, ValueError) as e:
        raise RunnableError(f"{where}: cannot read: {e}") from None
    found = None
    bound_otherwise = False  # assigned, imported or defined conditionally: cannot read it
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == runnable.function:
            found = node
        elif runnable.function in _bound_names(node):
            bound_otherwise = True
    if found is None:
        if bound_otherwise:
            return None
        raise RunnableError(f"{where}: no function {runnable.function!r} (define "
                            f"def {runnable.function}(**params) or name another with "
                            f"{where}:FUNCTION)")
    if isinstance(found, ast.AsyncFunctionDef):
        raise RunnableError(f"{where}: {runnable.function}() is async; exp calls plain functions")
    a = found.args
    named = [x.arg for x in a.args] + [x.arg for x in a.kwonlyargs]
    positional = a.posonlyargs + a.args
    n_required = len(positional) - len(a.defaults)
    required = {x.arg for x in positional[:n_required]}
    required |= {x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None}
    return set(named), required, a.kwarg is not None


def _bound_names(node: Any) -> set[str]:
    """Top-level names a statement binds other than by a plain ``def``."""
    import ast
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, ast.alias):
            names.add(sub.asname or sub.name.split(".")[0])
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
    return names


def _check_signature(runnable: _Runnable, names: Iterable[str]) -> None:
    """Refuse before any run a space the function cannot be called with."""
    sig = _static_signature(runnable)
    if sig is not None:
        _check_accepts(runnable.spec, runnable.function, sig, names)


def _check_accepts(where: str, function: str, sig: tuple[set[str], set[str], bool],
                   names: Iterable[str]) -> None:
    accepted, required, var_kw = sig
    names = set(names)
    for name in sorted(names - accepted) if not var_kw else ():
        raise RunnableError(f"{where}: {function}() does not accept the parameter "
                            f"{name!r} of the space (add it to the signature or add **kwargs)")
    missing = required - names - set(_PASSED)
    if missing:
        raise RunnableError(f"{where}: {function}() requires {_quoted(sorted(missing))}, "
                            "which the space does not define (add it to the param file or give "
                            "it a default)")


def _live_signature(func: Callable[..., Any]) -> tuple[set[str], set[str], bool] | None:
    """The same as _static_signature, from the imported function (lambdas, partials…)."""
    import inspect
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = {p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)}
    return named, required, any(p.kind is p.VAR_KEYWORD for p in params)


def load_runnable(spec: str) -> Callable[..., Any]:
    """Import and return the function named by ``file.py``, ``file.py:func`` or ``pkg.mod:func``."""
    import importlib
    import importlib.util
    runnable = _parse_runnable(spec)
    if runnable.file:
        folder = os.path.dirname(runnable.file)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # so the runnable's own imports work
        name = "_exp_runnable_" + Path(runnable.file).stem
        module_spec = importlib.util.spec_from_file_location(name, runnable.file)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(runnable.module)
    func = getattr(module, runnable.function, None)
    if not callable(func):
        raise RunnableError(f"{spec}: no function {runnable.function!r}")
    return func


def _accepted_extras(func: Callable[..., Any]) -> tuple[bool, frozenset[str]]:
    """(takes **kwargs, which of exp's extra keys it accepts by name)."""
    sig = _live_signature(func)
    if sig is None:
        return True, frozenset()
    return sig[2], frozenset(sig[0] & set(_PASSED))


# ─── journal ─────────────────────────────────────────────────────────────────


def _read_lines(path: Path) -> tuple[dict | None, list[dict], int]:
    """(header, records, lines skipped). A torn or garbled line is skipped, never fatal."""
    with open(path, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    try:  # one parse for the whole file; line by line only when some line is bad
        objs = _loads(b"[" + b",".join(lines) + b"]")
        if len(objs) != len(lines):
            raise ValueError("a line held more than one value")
    except ValueError:
        objs = []
        for line in lines:
            try:
                objs.append(_loads(line))
            except ValueError:
                objs.append(None)
    header, records, skipped = None, [], 0
    for obj in objs:
        if _is_header(obj):
            header = header or obj
        elif _is_record(obj):
            records.append(obj)
        elif not _is_note(obj):
            skipped += 1
    return header, records, skipped


def _is_note(obj: Any) -> bool:
    """A line that is neither header nor run record: a report, a change of space."""
    return isinstance(obj, dict) and obj.get("kind") in ("report", "space")


def _scan(path: Path) -> Iterator[dict]:
    """The readable lines of a journal, one at a time (a torn line is skipped)."""
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    obj = _loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    yield obj


def read_reports(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The reports of a journal's runs: ``id``, ``run``, ``attempt``, ``step``,
    ``metrics``, ``time``; only each run's latest attempt (an attempt the driver
    was killed during and a later one superseded is left out)."""
    path = Path(path)
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    reports, latest = [], {}
    for obj in _scan(path):
        if obj.get("kind") == "report" and type(obj.get("id")) is int:
            reports.append(obj)
            latest[(obj["id"], obj.get("run"))] = obj.get("attempt")
    return [r for r in reports if latest[(r["id"], r.get("run"))] == r.get("attempt")]


#: One byte per run in a _Ledger: its latest status (0: no record).
_CODE = {name.encode(): i for i, name in enumerate(STATUSES, 1)}
_STATUS_NAME = dict(enumerate(STATUSES, 1))


def _head(line: bytes) -> tuple[int, int, int] | None:
    """(id, run, status code) of a whole run record line as exp writes it (those keys
    first), read without parsing the line; None for any other line."""
    m = _head_re().match(line)
    if m is None or line[-2:] != b"}\n":
        return None
    code = _CODE.get(m[3])
    run = int(m[2])
    return (int(m[1]), run, code) if code and run >= 1 else None


@functools.cache
def _head_re() -> Any:
    import re
    return re.compile(rb'\{"id":(\d+),"run":(\d+),"status":"([a-z]+)","result":')


def _result_of(line: bytes) -> Any:
    """The result of a line _head read (it follows the status), parsing only it."""
    m = _head_re().match(line)
    if m is not None:
        end = line.find(b',"params":', m.end())
        raw = line[m.end():end] if end > 0 else b""
        try:  # a number (most results), or a value with no "params" key inside
            if raw[:1] in _DIGITS:
                return int(raw) if raw.isdigit() or raw[1:].isdigit() else float(raw)
            return _loads(raw) if raw else _result_slow(line)
        except ValueError:
            pass
    return _result_slow(line)


_DIGITS = frozenset(b"-0123456789"[i:i + 1] for i in range(11))


def _result_slow(line: bytes) -> Any:
    text = line.decode("utf-8", "surrogateescape")
    at = text.find(',"result":')
    if at < 0:
        return None
    value, _ = _DECODER.raw_decode(text, at + 10)
    return _nonfinite(value) if type(value) in (str, dict, list) else value


_DECODER = json.JSONDecoder()


class _GridIndex:
    """The grid of the current space: the id of a configuration from its values.

    A run's identity is its configuration and repeat, so records journaled
    under an earlier space (a sweep that grew) are found their id in this one
    by their parameter values (``assume`` gives values of parameters the
    earlier runs did not have).
    """

    def __init__(self, space: ParamSpace, runs: int, assume: dict[str, Any] | None = None):
        self.values = space._grid_axes()
        self.names = list(self.values)
        self.size, self.runs, self.assume = space.size, runs, dict(assume or {})
        self._index: dict[str, dict[str, int]] | None = None

    def slot(self, cid: int, run: int) -> int | None:
        """The run's place in a ledger, or None when it is not in the experiment."""
        return cid * self.runs + run - 1 if 0 <= cid < self.size and 1 <= run <= self.runs \
            else None

    def id_of(self, params: dict[str, Any]) -> int | None:
        """The configuration id of these values, or None when they are not in the grid."""
        if self._index is None:  # value (as JSON, so 1 is not 1.0 and nan is nan) -> index
            self._index = {n: {_dumps(v): i for i, v in enumerate(vs)}
                           for n, vs in self.values.items() if not isinstance(vs, range)}
        params = {**self.assume, **params}
        if len(params) != len(self.names):
            return None
        cid = 0
        for name in self.names:
            if name not in params:
                return None
            axis, value = self.values[name], params[name]
            if isinstance(axis, range):  # an int range: arithmetic, no index
                i = axis.index(value) if type(value) is int and value in axis else None
            else:
                i = self._index[name].get(_dumps(value))
            if i is None:
                return None
            cid = cid * len(axis) + i
        return cid


class _Ledger:
    """The latest status of every run of a grid experiment, one byte each: what
    resume skips and the summary counts, in memory that does not hold records."""

    def __init__(self, grid: _GridIndex):
        self.grid = grid
        self.codes = bytearray(grid.size * grid.runs)

    def set(self, slot: int, code: int) -> int:
        """Record a status; returns the one it replaces (0 for none)."""
        old = self.codes[slot]
        self.codes[slot] = code
        return old

    def counts(self) -> dict[str, int]:
        return {name: self.codes.count(code) for code, name in _STATUS_NAME.items()}

    def done(self, slot: int, retry_failed: bool) -> bool:
        code = self.codes[slot]
        return code in (1, 2) or (code > 0 and not retry_failed)


def _grid_records(path: Path, grid: _GridIndex, current: str,
                  skipped: list[int] | None = None) -> Iterator[tuple[int | None, int, bytes]]:
    """(slot in the current grid or None, status code, line) of each run record of a
    journal, in order. ``current`` is the current space as JSON: records written
    while the journal's space was another one are placed by their values.
    ``skipped[0]`` counts the lines that cannot be read (a torn last line)."""
    space_json = None  # the space the lines are written under, as JSON; None: the header's
    placed_by_id = True
    match, size, runs = _head_re().match, grid.size, grid.runs
    for line in _lines(path):
        m = match(line) if placed_by_id else None
        if m is not None and line[-2:] == b"}\n" and (code := _CODE.get(m[3])):
            cid, run = int(m[1]), int(m[2])  # _head, inlined: the hot loop of large journals
            yield (cid * runs + run - 1 if cid < size and 1 <= run <= runs else None), code, line
            continue
        try:
            obj = _loads(line) if line.strip() else {"kind": "blank"}
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            if skipped is not None:
                skipped[0] += 1
            continue
        kind = obj.get("kind")
        if kind in ("header", "space") and isinstance(obj.get("space"), dict):
            if kind == "header" and space_json is not None:
                continue
            space_json = _dumps(obj["space"])
            placed_by_id = space_json == current  # more repeats: ids still hold
            continue
        if not _is_record(obj):
            if skipped is not None and not _is_note(obj) and kind not in ("header", "blank"):
                skipped[0] += 1
            continue
        if placed_by_id:
            slot = grid.slot(obj["id"], obj["run"])
        else:
            cid = grid.id_of(obj["params"])
            slot = grid.slot(cid, obj["run"]) if cid is not None else None
        yield slot, _CODE[obj["status"].encode()], line


def _lines(path: Path) -> Iterator[bytes]:
    """A file's lines as bytes, one at a time (flat memory at any size)."""
    with open(path, "rb") as f:
        yield from f


def _is_header(obj: Any) -> bool:
    return (isinstance(obj, dict) and obj.get("kind") == "header"
            and isinstance(obj.get("space"), dict)
            and all(isinstance(v, dict) for v in obj["space"].values()))


def _is_record(obj: Any) -> bool:
    return (isinstance(obj, dict) and type(obj.get("id")) is int and type(obj.get("run")) is int
            and obj["run"] >= 1 and obj.get("status") in STATUSES
            and isinstance(obj.get("params"), dict))


def read_journal(path: str | os.PathLike, *, latest: bool = True) -> list[dict[str, Any]]:
    """The run records of a journal; with ``latest``, the last one of each (id, run)."""
    path = Path(path)
    _, records, skipped = _load_journal(path)
    _warn_skipped(path, skipped)
    return _latest(records) if latest else records


def _load_journal(path: Path) -> tuple[dict | None, list[dict[str, Any]], int]:
    """(header, every record, lines skipped) of a journal, read once."""
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    try:
        return _read_lines(path)
    except OSError as e:
        raise JournalError(f"{path}: cannot read: {e.strerror}") from None


def _warn_skipped(path: Path, skipped: int) -> None:
    if skipped:
        _log().warning("%s: skipped %d unreadable line(s)", path, skipped)


_BY_ID_RUN = operator.itemgetter("id", "run")  # the order of records everywhere


def _latest(records: list[dict]) -> list[dict]:
    """The last record of each (id, run), in (id, run) order."""
    last = {(r["id"], r["run"]): r for r in records}
    return sorted(last.values(), key=_BY_ID_RUN)


def _read_header(path: Path) -> tuple[dict | None, bool]:
    """(the header line, or None when there is none; whether any line follows it).

    Lines before it that cannot be read (a header torn when the driver was
    killed, written again after it) are passed over; a run before any header
    means the journal has runs but no header.
    """
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                obj = _loads(line)
            except ValueError:
                continue
            if _is_header(obj):
                return obj, any(rest.strip() for rest in itertools.islice(f, 3))
            if _is_record(obj) or _is_note(obj):
                return None, True
    return None, False


def _check_format(path: Path, header: dict) -> None:
    """Refuse a journal written in a format newer than this exp reads."""
    version = header.get("journal", 1)
    if not isinstance(version, int) or version > _JOURNAL_FORMAT:
        raise JournalError(f"{path} was written by exp {header.get('exp')!r} in journal format "
                           f"{version!r}; this exp {__version__} reads formats up to "
                           f"{_JOURNAL_FORMAT} (upgrade exp, or use --name for a new journal)")


def _header_diff(old: dict, new: dict, *, grow: bool = False,
                 assume: Iterable[str] = ()) -> str | None:
    """What makes a journal belong to another experiment, in words, or None.

    ``old`` is the journal's experiment as it stands (its header, with its
    latest change of space). With ``grow`` (a grid), a space that changed is
    the same experiment grown, unless it adds a parameter its runs did not have
    (without ``assume`` saying what value they had) or loses one.
    """
    if old.get("command") != new["command"]:
        return f"it was written by 'exp {old.get('command')}', not 'exp {new['command']}'"
    if old.get("runnable") != new["runnable"]:
        return f"it is for the runnable {old.get('runnable')!r}, not {new['runnable']!r}"
    if "seed" in new and old.get("seed") != new["seed"]:
        return (f"it was run with seed {old.get('seed')!r}, not {new['seed']!r} (its random "
                "values would differ)")
    old_space, new_space = old.get("space") or {}, new["space"]
    for name in old_space.keys() - new_space.keys():
        return f"its space has the parameter {name!r}, which this one does not"
    for name in new_space.keys() - old_space.keys():
        if grow and name in assume:
            continue
        if grow:
            return (f"this space adds the parameter {name!r}, which its runs did not have "
                    f"(say the value they had with --assume {name}=VALUE)")
        return f"its space lacks the parameter {name!r}"
    if grow:
        return None
    for name in new_space:  # as JSON, so that a nan equals itself
        if _dumps(old_space[name]) != _dumps(new_space[name]):
            return f"parameter {name!r} was {old_space[name]} and is now {new_space[name]}"
    if "runs" in new and old.get("runs") != new["runs"]:
        return f"it was run with runs {old.get('runs')!r}, not {new['runs']!r}"
    return None


def _latest_space(path: Path) -> dict | None:
    """The last change of space a journal records ({"kind": "space", ...}), or None
    (a search through the file in large blocks: fast at any size)."""
    marker, last, offset, tail = b'\n{"kind":"space"', -1, 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            data = tail + chunk
            at = data.rfind(marker)
            if at >= 0:
                last = offset - len(tail) + at + 1
            tail = data[-(len(marker) - 1):]
            offset += len(chunk)
        if last < 0:
            return None
        f.seek(last)
        line = f.readline()
    try:
        obj = _loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("space"), dict) else None


class _Journal:
    """The append-only JSON-lines journal of one experiment, owned by one driver.

    Opening it reads its header and its latest change of space only; runs are
    read by whoever needs them, line by line (``_grid_records``, ``_scan``).
    """

    def __init__(self, path: Path, header: dict[str, Any], *, fresh: bool = False,
                 inherit: Iterable[str] = (), grow: bool = False,
                 assume: dict[str, Any] | None = None, hint: str = ""):
        """Open or start the journal; ``inherit`` names header keys the caller left
        to the journal (a seed that was drawn, not given, is the recorded one).
        ``grow`` (a grid): a changed space or repeat count is accepted and
        recorded as a line of its own; ``hint`` ends a refusal (what to do)."""
        self.path = path
        self.whole = True  # False once a write may not have reached the file
        self.written = 0  # run records this driver appended
        self._file = None
        truncate = False  # the file holds only another experiment's header
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise JournalError(f"{path} is a folder, not a journal (use another --name)")
            if fresh and path.exists():
                with self._locked(path):  # never move the journal of a running experiment
                    _move_aside(path)
            old, has_runs = _read_header(path) if path.exists() else (None, False)
            self.mtime = path.stat().st_mtime if path.exists() else 0.0  # before this driver
        except OSError as e:
            raise JournalError(f"cannot use the output folder {path.parent}: "
                               f"{e.strerror or e}") from None
        if old is None and has_runs:
            raise JournalError(f"{path}: has runs but no readable header line; move it away "
                               "or use --fresh")
        self.change = None  # the change of space to record (grow), as its line's fields
        if old is not None:
            _check_format(path, old)
            header = {**header, **{k: old[k] for k in inherit if k in old}}
            now = {**old, **(_latest_space(path) or {})} if has_runs else old
            diff = _header_diff(now, header, grow=grow, assume=assume or {})
            if diff and not has_runs:
                old = None  # no run in it: nothing to keep, start it anew
                truncate = True
            elif diff:
                raise JournalError(f"{path} belongs to another experiment: {diff} "
                                   f"({hint or 'use --fresh to start over, or --name for a new journal'})")
            else:
                if old.get("runnable_hash") != header.get("runnable_hash"):
                    _log().warning("%s has changed since this journal was started; new runs "
                                   "record the new version", header["runnable"])
                if _dumps(now.get("space")) != _dumps(header["space"]) or \
                        now.get("runs") != header.get("runs"):
                    self.change = {"kind": "space", "space": header["space"],
                                   "runs": header.get("runs"), "assume": dict(assume or {}),
                                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                self.current = {**now, "space": header["space"], "runs": header.get("runs")}
                header = old
        self.header = header
        if old is None:
            self.current = header
        self._open()
        if truncate:
            self._file.truncate(0)
        _remove_leftovers(path)
        # A journal this driver started and no run has reached yet: if the call
        # fails before any run ends, nothing is left behind (see discard).
        self.created = old is None
        if old is None:  # a new journal, or one whose header line never made it whole
            self.write(_dumps(header).encode() + b"\n")
            self.flush()
        self.has_runs = has_runs and old is not None

    def record_change(self) -> None:
        """Journal the accepted change of space (the history of a sweep), once."""
        if self.change is not None:
            self.write(_dumps(self.change).encode() + b"\n")
            self.flush()
            self.change = None

    def discard(self) -> bool:
        """Remove a journal this driver started if no run reached it; True if removed."""
        if not self.created or self.written:
            return False
        self.close()
        try:
            self.path.unlink()
        except OSError:
            return False
        return True

    @staticmethod
    def _lock(path: Path) -> Any:
        """The journal opened for appending and locked against other drivers."""
        try:
            f = open(path, "ab")
        except OSError as e:
            raise JournalError(f"cannot write the journal {path}: {e.strerror}") from None
        if _fcntl is not None:
            try:
                _fcntl.flock(f.fileno(), _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except OSError:
                f.close()
                raise JournalError(f"{path} is in use by another exp process "
                                   "(wait for it, or use --name)") from None
        return f

    @classmethod
    @contextlib.contextmanager
    def _locked(cls, path: Path) -> Iterator[None]:
        f = cls._lock(path)
        try:
            yield
        finally:
            f.close()

    def _open(self) -> None:
        self._file = self._lock(self.path)
        size = self._file.tell()
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":  # a torn last line: start on a line of our own
                    self._file.write(b"\n")

    def write(self, line: bytes) -> None:
        try:
            self._file.write(line)
        except OSError:
            self.whole = False
            raise

    def add(self, outcome: _Outcome) -> None:
        """Append a run's line."""
        self.write(outcome.line)
        self.written += 1

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as e:
            self.whole = False
            raise JournalError(f"cannot write the journal {self.path}: {e.strerror}") from None

    def close(self) -> None:
        """Flush, sync and close; never raises, so it cannot hide why the run stopped."""
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            self.whole = False
            _log().warning("the journal %s may miss its last lines: %s", self.path, e.strerror)
        try:
            self._file.close()
        except OSError:
            pass
        self._file = None


try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not on Windows
    _fcntl = None


def _remove_leftovers(path: Path) -> None:
    """Temporary files of a driver or workers killed earlier (the journal lock is ours)."""
    stem = path.name.removesuffix(".jsonl")
    leftovers = list(path.parent.glob(f".{stem}.csv.*.tmp"))
    leftovers += list((path.parent / f"{stem}.logs").glob(".worker-*.tmp"))
    for tmp in leftovers:
        tmp.unlink(missing_ok=True)


def _move_aside(path: Path) -> Path:
    """Rename NAME.jsonl (and NAME.logs) to NAME.old-K.* with the first free K."""
    stem = path.name.removesuffix(".jsonl")
    for k in itertools.count(1):
        target = path.with_name(f"{stem}.old-{k}.jsonl")
        if not target.exists():
            break
    path.rename(target)
    logs = path.with_name(stem + ".logs")
    if logs.is_dir():
        logs.rename(path.with_name(f"{stem}.old-{k}.logs"))
    _log().warning("moved the old journal to %s", target)
    return target


# ─── reports (run side) ──────────────────────────────────────────────────────
#
# A run calls report(step, **metrics) in any process: the driver's address and
# the run's identity come from the environment (EXP_REPORT_TO, set once per
# worker; EXP_RUN, set before each run and inherited by the processes a run
# starts), never from this module's state, so every copy of exp reports alike.
# Each call sends its report at once as a datagram, unless the driver's socket
# is full (the kernel holds a few): then the reports wait in one buffer all
# copies of exp in the process share (a module in sys.modules) and go as one
# datagram with the next call, so a call costs microseconds and never waits
# for the driver. A stop decision comes back as a datagram to the process's own
# socket and is seen at its next call. Where the scheduler may decide on a report
# (early stopping on, from its first step: EXP_VERDICT_FROM), the call waits for
# the verdict, go on or stop, for up to VERDICT_WAIT: a run told to stop at this
# step stops now, not an epoch later. A driver too busy to answer in time costs
# the run that wait at most; the stop then comes with the next call.

_REPORT_TO, _RUN_ENV, _VERDICT_FROM = "EXP_REPORT_TO", "EXP_RUN", "EXP_VERDICT_FROM"
_REPORT_BATCH = 256  # reports in one datagram at most
_MSG_REPORTS, _MSG_STOP, _MSG_GO = b"R", b"S", b"G"
#: Seconds a report waits for the scheduler's verdict on it (the round trip is ~0.1 ms).
VERDICT_WAIT = 0.05


def report(step: float, value: float | None = None, **metrics: float) -> None:
    """Record a run's metrics at ``step`` (an epoch, a number of samples ...).

    Inside a run of exp the report goes to the driver, which journals it and
    lets the early-stopping scheduler decide: when it stops the run on this
    report, this call raises ``Pruned`` (the report is recorded); once it has
    stopped the run on an earlier one, the call raises ``Pruned`` and records
    nothing. Outside exp it does nothing, so the same training script runs
    alone. ``value`` is the metric named "value".
    """
    env = os.environ.get(_RUN_ENV)
    if env is None:
        return
    state = _report_state(env)
    if state is None:
        return
    if _stopped(state, env):  # the scheduler decided on an earlier report
        raise Pruned(f"stopped by exp's scheduler after step {state.last!r}")
    if value is not None:
        metrics["value"] = value
    if not _is_number(step) or not math.isfinite(step):
        raise ReportError(f"exp.report: step must be a finite number, got {step!r}")
    if state.token != env:  # a new run in this process
        state.token, state.last = env, None
    last = state.last
    if last is not None and step < last:
        raise ReportError(f"exp.report: step {step!r} after step {last!r} (steps must not go "
                          "backwards)")
    if not metrics:
        raise ReportError("exp.report: nothing to report (give a value or metrics, e.g. "
                          "exp.report(epoch, loss=loss))")
    for name, x in metrics.items():
        if hasattr(x, "item") and getattr(x, "shape", None) == ():  # numpy or torch scalars
            x = metrics[name] = x.item()
        if not _is_number(x):
            raise ReportError(f"exp.report: metric {name!r} must be a number, got {x!r}")
    state.last = step
    ask = state.verdict_from is not None and step >= state.verdict_from
    state.buffer.append((env, step, metrics, time.time(), 1) if ask
                        else (env, step, metrics, time.time()))
    if _send_reports(state) and ask and _verdict(state, env):
        raise Pruned(f"stopped by exp's scheduler at step {step!r}")


def should_stop() -> bool:
    """True once the scheduler has stopped this run (the next ``report`` raises ``Pruned``)."""
    env = os.environ.get(_RUN_ENV)
    if env is None:
        return False
    state = _report_state(env)
    if state is None:
        return False
    if state.buffer:
        _send_reports(state)
    return _stopped(state, env)


def _report_state(env: str) -> Any:
    """This process's reporting state, shared by every copy of exp in it; None when
    the driver cannot be reached."""
    import types
    state = sys.modules.get("_exp_reports")
    if state is None or state.pid != os.getpid():  # first use, or a fork of a reporter
        address = os.environ.get(_REPORT_TO)
        if not address:
            return None
        import socket
        state = sys.modules["_exp_reports"] = types.ModuleType("_exp_reports")
        state.pid, state.address, state.buffer = os.getpid(), address, []
        state.token, state.last = None, None  # the run reporting here, its last step
        state.stop, state.dead = None, False  # stop: the run told to stop
        verdict_from = os.environ.get(_VERDICT_FROM)
        state.verdict_from = float(verdict_from) if verdict_from else None
        state.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        state.sock.bind(_own_address())
        state.sock.setblocking(False)
        import select
        state.poll = select.poll()
        state.poll.register(state.sock.fileno(), select.POLLIN)
        import atexit
        atexit.register(_flush_reports, 1.0)
    return None if state.dead else state


def _own_address() -> Any:
    """Where a reporting process hears back: an abstract socket on Linux, else a file."""
    if sys.platform.startswith("linux"):
        return ""  # the kernel picks an abstract address
    import tempfile
    return os.path.join(tempfile.mkdtemp(prefix="exp-r"), "s")


def _socket_address(text: str) -> Any:
    """The driver's address as EXP_REPORT_TO writes it ("@name": Linux's abstract namespace)."""
    return b"\0" + text[1:].encode() if text.startswith("@") else text


def _send_reports(state: Any, wait: float = 0.0) -> bool:
    """Send the buffered reports; with ``wait``, for up to that many seconds while the
    driver's socket is full. True when nothing is left."""
    deadline = time.monotonic() + wait
    while state.buffer:
        batch = state.buffer[:_REPORT_BATCH]
        try:
            state.sock.sendto(_MSG_REPORTS + _dumps(batch).encode(),
                              _socket_address(state.address))
        except BlockingIOError:  # the driver is behind: keep them, never block the run
            if time.monotonic() >= deadline:
                return False
            import select
            select.select([], [state.sock], [], 0.005)
            continue
        except OSError:  # the driver is gone: nothing to report to
            state.dead = True
            state.buffer.clear()
            return True
        del state.buffer[:len(batch)]
    return True


def _stopped(state: Any, env: str) -> bool:
    while state.poll.poll(0):
        _heard(state, env)
    return state.stop == env


def _heard(state: Any, env: str) -> bool:
    """Read one message from the driver; True if it is the verdict on this run's report."""
    try:
        msg = state.sock.recv(4096)
    except OSError:
        return False
    token = msg[1:].decode()
    if msg[:1] == _MSG_STOP:
        state.stop = token
    return token == env and msg[:1] in (_MSG_STOP, _MSG_GO)


def _verdict(state: Any, env: str) -> bool:
    """Wait (up to VERDICT_WAIT) for the scheduler's verdict on the report just sent;
    True: stop. A verdict that comes later is read by the next call."""
    deadline = time.monotonic() + VERDICT_WAIT
    while (left := deadline - time.monotonic()) > 0:
        if state.poll.poll(max(1, int(left * 1000))) and _heard(state, env):
            break
    return state.stop == env


def _flush_reports(wait: float = 5.0) -> None:
    """Send what this process has not sent yet (a worker, before it reports a run's end)."""
    state = sys.modules.get("_exp_reports")
    if state is not None and state.pid == os.getpid() and state.buffer and not state.dead:
        _send_reports(state, wait)


def _is_pruned(error: BaseException) -> bool:
    return bool(getattr(error, "_exp_pruned", False))


# ─── worker (child side) ─────────────────────────────────────────────────────
#
# A worker is a fresh interpreter started with subprocess (no fork: fork and
# CUDA do not mix) that loads exp.py by path and nothing of the driver's
# __main__, then reads its settings and batches of tasks from one socket.


class _Channel:
    """Whole messages over one end of a socket pair: an 8-byte length, then the bytes."""

    __slots__ = ("fd",)

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def send_bytes(self, data: bytes) -> None:
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            view = view[os.write(self.fd, view):]

    def recv_bytes(self) -> bytes:
        return self._read(int.from_bytes(self._read(8), "big"))

    def _read(self, n: int) -> bytes:
        data = os.read(self.fd, n)
        if len(data) == n:
            return data
        buf = bytearray(data)
        while len(buf) < n:
            more = os.read(self.fd, n - len(buf))
            if not more:
                raise EOFError("the other end closed the channel")
            buf += more
        return bytes(buf)

    def send(self, obj: Any) -> None:
        import pickle
        self.send_bytes(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))

    def recv(self) -> Any:
        import pickle
        return pickle.loads(self.recv_bytes())

    def poll(self) -> bool:
        """Is a message (or the end of the channel) ready to read?"""
        import select
        poller = select.poll()  # not select.select: descriptors above 1023 are fine
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: What a worker interpreter runs: exp.py loaded from its file, wherever it is
#: vendored, under a name no module of the user's has and without putting its
#: folder first on sys.path; or, from a zip, imported by name (``_exp_source``).
_CHILD_CODE = """
import importlib, importlib.util, sys
how, where = sys.argv[2], sys.argv[3]
if how == "file":
    spec = importlib.util.spec_from_file_location("_exp_worker", where)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)
else:
    sys.path[:0] = sys.argv[4:]
    exp = importlib.import_module(where)
exp._child_main()
"""


def _exp_source() -> list[str]:
    """How a worker finds this module: its file, else its name and sys.path."""
    if os.path.isfile(__file__):
        return ["file", os.path.abspath(__file__)]
    name = __spec__.name if __spec__ is not None else "exp"
    return ["name", name, *sys.path]


def _child_main() -> None:
    """Entry of a worker process: ``python -c _CHILD_CODE FD SOURCE...``."""
    conn = _Channel(int(sys.argv[1]))
    try:
        settings = conn.recv()
    except (EOFError, OSError):  # the driver stopped while this process started
        return
    os.set_inheritable(conn.fd, False)  # not into the processes runs start
    sys.path[:], sys.argv[:] = settings.pop("path"), settings.pop("argv")
    if settings.get("permits") is not None:
        os.set_inheritable(settings["permits"], False)
    state_fd = settings.pop("state_fd")
    if state_fd is not None:
        import mmap
        settings["state"] = memoryview(mmap.mmap(state_fd, _STATE_SIZE)).cast("d")
        os.close(state_fd)
    _worker_main(conn, **settings)


class _Task(NamedTuple):
    """One run to do: configuration ``id``, repeat ``run`` (from 1), its parameters."""

    id: int
    run: int
    params: dict[str, Any]


def _entry(task: _Task, status: str, result: Any, error: str | None, worker: int | str,
           gpu: str | None, start: float, end: float,
           runnable_hash: str) -> tuple[dict[str, Any], bytes]:
    """A run's journal record and line; the record is what the line reads back as.

    Built the same way by workers and, for deaths, by the driver. The line is
    written by hand around the encoder (a hot path: one per run): only the
    parameters, the result, the error and the worker label go through JSON.
    TypeError, ValueError or RecursionError for a result JSON cannot hold.
    """
    t0, t1, dt = f"{start:.6f}", f"{end:.6f}", f"{end - start:.6f}"
    params = task.params
    # id, run, status and result first: readers of large journals take those from
    # the start of a line without parsing the rest (_head).
    line = (f'{{"id":{task.id},"run":{task.run},"status":"{status}",'
            f'"result":{_dumps(result)},"params":{_dumps(params)},'
            f'"error":{"null" if error is None else _dumps(error)},'
            f'"worker":{worker if type(worker) is int else _dumps(worker)},'
            f'"gpu":{"null" if gpu is None else _dumps(gpu)},"start":{t0},"end":{t1},'
            f'"seconds":{dt},"runnable_hash":"{runnable_hash}"}}\n').encode()
    # The run gets its own kwargs dict, never ``params``: no copy needed when flat.
    record = {"id": task.id, "run": task.run, "status": status, "result": _as_read(result),
              "params": params if _is_flat(params) else _as_read(params), "error": error,
              "worker": worker, "gpu": gpu, "start": float(t0), "end": float(t1),
              "seconds": float(dt), "runnable_hash": runnable_hash}
    return record, line


def _as_read(value: Any) -> Any:
    """``value`` as JSON reads it back (a tuple becomes a list, a numpy number a
    float, ...): a copy, since a run may change the dict it returned once the
    worker holds the record, and the record is sent only a few ms later."""
    if type(value) in _SCALARS:
        return _NONFINITE.get(value, value) if type(value) is str else value
    if _is_flat(value):
        return _nonfinite(value)
    return _loads(_dumps(value))


#: First byte of each message a worker sends. A message of results holds, pickled,
#: one status byte per run (``o`` or ``f``), their records and their journal lines.
_MSG_READY, _MSG_FATAL, _MSG_RESULTS, _MSG_OK, _MSG_FAILED = b"R", b"X", b"r", b"o", b"f"
_MSG_REFUSED = b"E"  # the runnable cannot take the space: a complete error message follows
_MSG_TIMEOUT, _MSG_CRASHED = b"t", b"c"  # only from a Dask worker thread, about its child
_MSG_DROPPED = b"D"  # the tasks the driver took back were dropped: how many follows
_MSG_PRUNED = b"p"  # the run raised exp.Pruned
_STATUS_OF = {_MSG_OK: "ok", _MSG_FAILED: "failed", _MSG_PRUNED: "pruned",
              _MSG_TIMEOUT: "timeout", _MSG_CRASHED: "crashed"}
_STATUS_BY_INT = {k[0]: v for k, v in _STATUS_OF.items()}  # a status byte read from bytes


def _results_message(statuses: bytes, records: list[dict], lines: bytes) -> bytes:
    import pickle
    return _MSG_RESULTS + pickle.dumps((bytes(statuses), records, bytes(lines)),
                                       pickle.HIGHEST_PROTOCOL)


def _read_results(msg: bytes) -> tuple[bytes, list[dict], bytes]:
    """(status bytes, records, journal lines) of a message of results."""
    import pickle
    return pickle.loads(memoryview(msg)[1:])


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the driver dies (kill -9 included), and
    make it the subreaper of its runs' processes, so that their orphans come back to
    it and ``_end_leftovers`` finds them, whatever session they moved to."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
        if os.getppid() == 1:
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _children(pid: int | str = "self") -> list[int]:
    """Live and zombie child processes (Linux; elsewhere none are known)."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found += map(int, f.read().split())
    except OSError:
        pass
    return found


def _end_leftovers() -> None:
    """Kill and reap every process this worker's runs started that still runs.

    Called as the worker ends. Between runs such processes are left alone, so a
    pool that a runnable keeps for its next runs (joblib's, a DataLoader's
    persistent workers) goes on working; but nothing outlives the worker.
    Orphans of those processes come back to this worker (a subreaper), so a
    few rounds find them all, whatever session or process group they moved to.
    """
    for _ in range(100):
        pids = _children()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


#: The exp command makes itself the subreaper of what it starts (Linux): what a worker
#: that died had started comes to it, and is killed (see _kill_orphans).
_REAPING = False


def _become_reaper() -> None:
    """For the exp command only: a library user's process keeps its own children."""
    global _REAPING
    try:
        import ctypes
        _REAPING = ctypes.CDLL(None, use_errno=True).prctl(36, 1) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _kill_orphans(workers: Iterable[int]) -> None:
    """Kill the processes that came to the exp command from a worker that died (its
    runs' processes, in whatever session): every child but the live workers."""
    if not _REAPING:
        return
    keep = set(workers)
    for pid in _children():
        if pid not in keep:
            _kill_tree(pid)
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def _kill_tree(pid: int) -> None:
    """SIGKILL a worker, every process below it and its process group.

    Every process of the tree is stopped first, the worker too, so none can
    fork or exit (which would hand its children to init) while the tree is
    walked; the process group catches, after a worker's own death, the
    children its runs left in it.
    """
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        try:
            os.kill(p, signal.SIGSTOP)
        except OSError:
            pass
        todo += _children(p)
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _capture_tmp(logs: Path, pid: int) -> Path:
    """The file a worker's output goes to until a run that wrote something ends."""
    return logs / f".worker-{pid}.tmp"


class _Capture:
    """Send fds 1 and 2 to a reused per-worker file; keep it as a run's log only if written.

    File-descriptor level, so output of C extensions and subprocesses is caught.
    Each run starts as the worker set things up, whatever the run before did to
    its process: fds 1 and 2 on the capture file, ``sys.stdout`` and
    ``sys.stderr`` the worker's own, the worker's working directory. The file is
    written through a descriptor of the capture's own and its path is absolute,
    so a run that closes fd 1, replaces ``sys.stdout`` or changes directory
    cannot break the capture. A run that prints nothing costs a few syscalls.
    """

    def __init__(self, logs: Path, worker: int | str):
        self.logs = logs.absolute()
        self.tmp = _capture_tmp(self.logs, os.getpid())
        self.load_log = self.logs / f"worker-{_safe_label(worker)}.log"
        self.cwd = os.getcwd()
        self.fd = -1
        self.null = _high_fd(os.open(os.devnull, os.O_RDWR))  # what fd 0 is in each run
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.broken = False  # a flush failed: the streams hold text that is no run's
        self._open()

    def _open(self) -> None:
        fd = _high_fd(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        os.dup2(fd, 1)  # what the worker itself writes from here on goes to the new file
        os.dup2(fd, 2)

    def start(self) -> None:
        """Before a run: the worker's standard streams and working directory."""
        if self.broken:  # text the streams could not write when the run closed fd 1: dropped
            os.dup2(self.null, 1)
            os.dup2(self.null, 2)
            self._flush()
            self.broken = False
        os.dup2(self.null, 0)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not getattr(self, name) or getattr(stream, "closed", True):
                mine = getattr(self, name)
                if mine is None or mine.closed:
                    mine = open(1 if name == "stdout" else 2, "w", buffering=1,
                                encoding="utf-8", errors="backslashreplace", closefd=False)
                    setattr(self, name, mine)
                setattr(sys, name, mine)
        try:
            if os.getcwd() == self.cwd:
                return
        except OSError:  # the run deleted the directory it was in
            pass
        os.chdir(self.cwd)

    def write(self, text: str) -> None:
        """Into the capture file itself, wherever the run left fd 2."""
        self._flush()
        try:
            os.write(self.fd, text.encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    def _flush(self) -> None:
        for stream in {id(x): x for x in (sys.stdout, sys.stderr, self.stdout, self.stderr)
                       if x is not None}.values():
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                self.broken = True

    def keep(self, task: _Task) -> None:
        self._flush()
        if os.fstat(self.fd).st_size:
            os.replace(self.tmp, self.logs / f"{task.id}-{task.run}.log")
            self._open()

    def keep_load(self) -> None:
        """What loading the runnable printed goes to ``worker-N.log``, not to a run's log."""
        self._flush()
        if os.fstat(self.fd).st_size:
            with open(self.tmp, "rb") as f, open(self.load_log, "ab") as log:
                log.write(f.read())
            self._open()

    def close(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _high_fd(fd: int) -> int:
    """The same file on a descriptor above the standard ones (a run that closed fd 1
    would otherwise hand its number to exp's next file), close-on-exec."""
    import fcntl
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _safe_label(worker: int | str) -> str:
    """A worker label (a number, or a Dask worker's address) as part of a file name."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in str(worker))[:100]


#: A worker sends the results it holds once this much time has passed since
#: its last send, or when its queue runs dry: one write per few ms of short
#: runs instead of one per run, and at once for any run longer than this.
_SEND_EVERY = 0.005


def _worker_main(conn: _Channel, runnable: str, worker: int | str, gpu: str | None, logs: str,
                 runnable_hash: str, state: Any = None, names: Iterable[str] | None = None,
                 permits: int | None = None, report_to: str | None = None,
                 verdict_from: float | None = None,
                 session: str = "") -> None:
    """Run the tasks the driver sends, in order, reporting each as it ends.

    ``state`` (shared memory, local pool only) holds the monotonic start time of
    the run in progress and how many runs this worker has started, so the
    driver can pin a death or a timeout on one run even while results are
    held back for a few milliseconds. ``permits`` (local pool only) is a
    pipe with one byte per task sent: a task starts only with a byte read
    from it, and the driver reads back the bytes of tasks it gives to an idle
    worker instead; the kernel hands each byte to one reader only, so a task
    taken back never starts here (the worker then drops the rest of its queue
    and says so).
    """
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _ENDING_SIGNALS)  # held while we started
    if gpu is not None:  # before the user's module can import CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if report_to is not None:  # where exp.report finds the driver, in any process of a run
        os.environ[_REPORT_TO] = report_to
    if verdict_from is not None:  # reports from this step on wait for the scheduler's verdict
        os.environ[_VERDICT_FROM] = repr(float(verdict_from))
    capture = _Capture(Path(logs), worker)  # paths resolved before the user's code runs
    try:
        func = load_runnable(runnable)
        var_kw, extras_named = _accepted_extras(func)
        sig = _live_signature(func) if names is not None else None
        if sig is not None:  # what the driver could not read from the source
            _check_accepts(runnable, getattr(func, "__name__", "run"), sig, names)
    except RunnableError as e:
        conn.send_bytes(_MSG_REFUSED + str(e).encode())
        return
    except BaseException:
        import traceback
        text = traceback.format_exc()
        capture.write(text)
        conn.send_bytes(_MSG_FATAL + text.encode())
        return
    capture.keep_load()
    extras = {k: v for k, v in {"worker": worker, "gpu": gpu}.items()
              if var_kw or k in extras_named}
    if (var_kw or "pid" in extras_named) and "pid" not in (names or ()):
        extras["pid"] = worker  # exp 0.5's name of the worker index (a parameter "pid" wins)
    pass_id, pass_run = var_kw or "id" in extras_named, var_kw or "run" in extras_named
    conn.send_bytes(_MSG_READY)
    clock, monotonic, me = time.time, time.monotonic, os.getpid()
    statuses, records, lines, last_sent = bytearray(), [], bytearray(), monotonic()
    todo: deque[tuple] = deque()
    attempt, runs = f"{session}.{me}.", 0  # each run's attempt: unique across sessions
    run_env = _RunVariable(_RUN_ENV)

    def send() -> None:
        nonlocal last_sent
        _flush_reports()  # a run's reports reach the driver before its end does
        conn.send_bytes(_results_message(statuses, records, lines))
        statuses.clear()
        records.clear()
        lines.clear()
        last_sent = monotonic()

    while True:
        if not todo:
            try:
                batch = conn.recv()
            except (EOFError, OSError):
                break
            if batch is None:
                break
            todo.extend(batch)
        tid, trun, params = todo.popleft()
        if permits is not None:
            try:
                os.read(permits, 1)
            except BlockingIOError:  # the driver took the rest of the queue back
                # That is this task and all after it: those held here, and those in
                # batches still in the socket (sent before the driver took them back;
                # it sends no more until it hears this).
                if statuses:
                    send()
                dropped, stop = 1 + len(todo), False
                todo.clear()
                while not stop and conn.poll():
                    batch = conn.recv()
                    stop = batch is None
                    dropped += len(batch or ())
                conn.send_bytes(_MSG_DROPPED + str(dropped).encode())
                if stop:
                    break
                continue
        task = _Task(tid, trun, params)
        kwargs = {**params, **extras}
        if pass_id:
            kwargs["id"] = tid
        if pass_run:
            kwargs["run"] = trun
        capture.start()
        runs += 1
        run_env.set(f"{tid},{trun},{attempt}{runs}")
        if state is not None:
            state[0] = monotonic()  # the start first: the driver reads the count first
            state[1] += 1
        start = clock()
        try:
            result, status, error = func(**kwargs), _MSG_OK, None
        except BaseException as e:  # noqa: BLE001 - a failing run is data, SystemExit too
            import traceback
            result, error = None, traceback.format_exc()
            status = _MSG_PRUNED if _is_pruned(e) else _MSG_FAILED
        if os.getpid() != me:  # a process the run forked came back here: it must not report
            os._exit(0)
        end = clock()
        try:
            record, line = _entry(task, _STATUS_OF[status], result, error,
                                  worker, gpu, start, end, runnable_hash)
        except (TypeError, ValueError, RecursionError) as e:  # the child serialises,
            # so this is no dead pipe (RecursionError: nested too deep)
            status, error = _MSG_FAILED, f"the run returned a value exp cannot journal: {e}\n"
            record, line = _entry(task, "failed", None, error, worker, gpu, start, end,
                                  runnable_hash)
        if status == _MSG_FAILED:
            capture.write(error)
        capture.keep(task)
        statuses += status
        records.append(record)
        lines += line
        if not todo or monotonic() - last_sent >= _SEND_EVERY:
            send()
    _end_leftovers()
    capture.close()


class _RunVariable:
    """An environment variable set before each run, in flat memory.

    glibc's setenv keeps every value it was ever given (about 76 bytes each: a
    worker of ten million runs would hold 760 MB of them), so on glibc the
    variable is a buffer of its own, given to putenv once (which keeps the
    pointer, not a copy) and rewritten in place; ``os.environ``'s mapping is
    updated beside it, so the run's own code, any copy of exp in it and the
    processes it starts all see the current value. Elsewhere, os.environ.
    """

    SIZE = 512

    def __init__(self, name: str):
        self.name, self.buffer, self.at = name, None, 0
        data = getattr(os.environ, "_data", None)
        if sys.platform != "linux" or not isinstance(data, dict):
            return
        try:
            import ctypes
            prefix = f"{name}=".encode()
            buffer = ctypes.create_string_buffer(prefix, self.SIZE)
            if ctypes.CDLL(None).putenv(buffer) == 0:
                self.buffer, self.at, self._memmove = buffer, len(prefix), ctypes.memmove
                self._address = ctypes.addressof(buffer) + len(prefix)
                self._key, self._data = os.environ.encodekey(name), data
        except (OSError, AttributeError, TypeError):
            self.buffer = None

    def set(self, value: str) -> None:
        raw = value.encode()
        if self.buffer is None or self.at + len(raw) >= self.SIZE:
            os.environ[self.name] = value  # (and no longer this buffer, which glibc forgets)
            self.buffer = None
            return
        self._memmove(self._address, raw + b"\0", len(raw) + 1)
        self._data[self._key] = raw


# ─── pool (parent side) ──────────────────────────────────────────────────────
#
#   driver ──batch of tasks──► socket ──► worker 0 ── runs them in order ──┐
#     ▲   ──batch of tasks──► socket ──► worker 1 ──                         │
#     └───── each run's journal line and record, sent every few ms ◄─────────┘
#     │
#     └──► journal (NAME.jsonl), one write per line, one flush per wake-up
#
# driver: owns the journal; knows, per worker, the ordered queue it sent, so
#   the head of that queue is the run in progress (the shared state says
#   which run of it has started, and when). It blocks on
#   connection.wait(sockets + death watches, timeout=next deadline).
# worker: reads batches from its socket, writes run logs, sends lines and records.
# A dead worker (death watch ready) is blamed for its run in progress only; the
# tasks queued behind it go back to the pending set and the worker is replaced.


class _Outcome:
    """A finished run as the experiment loop sees it (gopt may rewrite it as failed)."""

    __slots__ = ("task", "status", "line", "_record")

    def __init__(self, task: _Task, status: str, line: bytes,
                 record: dict[str, Any] | None = None):
        self.task, self.status = task, status
        self.line = line  # the journal line, ready to append
        self._record = record  # the line as read back, when the worker sent it

    def record(self) -> dict[str, Any]:
        """The journal record (parsed once; the same dict on every call)."""
        if self._record is None:
            self._record = _loads(self.line)
        return self._record


#: Bytes of a worker's shared state: two doubles (start of the run in progress,
#: runs started), written by the worker, read by the driver.
_STATE_SIZE = 16


#: Signals that end the driver (Ctrl-C, and SIGTERM/SIGHUP through _interruptible).
_ENDING_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class _SigintHeld:
    """SIGINT, SIGTERM and SIGHUP held off in this thread while a worker is started
    and registered.

    A Ctrl-C that reached a new worker before it could ignore SIGINT would kill
    it mid-import: it starts with SIGINT blocked (the mask survives exec),
    ignores it, then unblocks. And a signal delivered to the driver mid-start
    would leave a worker the pool does not know of: it comes when the block ends.
    """

    def __enter__(self) -> None:
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, _ENDING_SIGNALS)
        except BaseException:  # a Ctrl-C already pending, raised just after the block
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            raise

    def __exit__(self, *exc: Any) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)


class _SignalsDeferred:
    """Ctrl-C, SIGTERM and SIGHUP noted (``got``), not raised, inside the block; the
    first of them raised as its handler would when the block ends.

    For clean-up that must run to its end. Python runs signal handlers in the
    main thread only, so elsewhere there is nothing to defer.
    """

    def __enter__(self) -> _SignalsDeferred:
        self.got: list[int] = []
        self.previous: dict[int, Any] = {}
        if _is_main_thread():
            for signum in _ENDING_SIGNALS:
                old = signal.getsignal(signum)
                if callable(old):
                    self.previous[signum] = old
                    signal.signal(signum, lambda n, _frame: self.got.append(n))
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, old in self.previous.items():
            signal.signal(signum, old)
        if self.got:
            self.previous[self.got[0]](self.got[0], None)


class _Process:
    """A worker process (``_child_main``), its channel, death watch and shared state.

    Start it under ``_SigintHeld``.
    """

    def __init__(self, settings: dict[str, Any], *, shared_state: bool, permits: bool = False):
        import socket
        import subprocess
        ours, theirs = socket.socketpair()
        keep = [theirs.fileno()]
        state_fd = self._state_file() if shared_state else None
        if state_fd is not None:
            import mmap
            self._mmap = mmap.mmap(state_fd, _STATE_SIZE)
            keep.append(state_fd)
        sentinel = None
        if not _have_pidfd():  # the fallback death watch: EOF once it (and its forks) exit
            sentinel, theirs_sentinel = os.pipe()
            keep.append(theirs_sentinel)
        # One byte per task sent, read by the worker before it starts one (see
        # _worker_main); both ends stay with the driver, the read end goes to the
        # worker too. None where tasks are sent one at a time.
        self.permits: tuple[int, int] | None = None
        if permits:
            self.permits = os.pipe()
            os.set_blocking(self.permits[0], False)
            keep.append(self.permits[0])
        flags = getattr(subprocess, "_args_from_interpreter_flags", list)()
        try:
            self.popen = subprocess.Popen(
                [sys.executable, *flags, "-c", _CHILD_CODE, str(theirs.fileno()), *_exp_source()],
                pass_fds=keep, stdin=subprocess.DEVNULL,
                process_group=0)  # its group: what its runs leave in it is killed with it
        except BaseException:  # no process: none of our ends will be closed later
            ours.close()
            if sentinel is not None:
                os.close(sentinel)
            if self.permits is not None:
                os.close(self.permits[0])
                os.close(self.permits[1])
            raise
        finally:
            for fd in keep[1:]:
                if self.permits is None or fd != self.permits[0]:
                    os.close(fd)
            theirs.close()  # else the driver would never see EOF from a dead worker
        self.pid = self.popen.pid
        self.conn = _Channel(ours.detach())  # settings and batches in, results out
        # [start of the run in progress, runs started], written by the worker only
        self.state = memoryview(self._mmap).cast("d") if state_fd is not None else None
        # Readable once it has exited. A pidfd fires when the worker itself
        # exits; the sentinel pipe only when every process holding it has, so a
        # worker that dies leaving a forked child behind is seen late.
        self.death = sentinel
        try:
            if sentinel is None:
                self.death = os.pidfd_open(self.pid)
            try:
                self.conn.send({**settings, "state_fd": state_fd, "path": sys.path,
                                "argv": sys.argv,
                                "permits": self.permits[0] if self.permits else None})
            except OSError:
                pass  # it died at once: its death watch tells
        except BaseException:  # no worker the pool will know of: none left running
            self.kill()
            self.join()
            self.close()
            raise

    @staticmethod
    def _state_file() -> int:
        """A small file in memory both processes map (Linux), else an unlinked temp file."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("exp-worker-state")
        else:
            import tempfile
            with tempfile.TemporaryFile() as f:
                fd = os.dup(f.fileno())
        os.ftruncate(fd, _STATE_SIZE)
        return fd

    @property
    def exitcode(self) -> int | None:
        """As multiprocessing's: negative for a signal; None while it runs."""
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and what its runs started (see _kill_tree); after its
        own death, what they left in its process group."""
        if self.popen.poll() is None:
            _kill_tree(self.pid)
        else:
            try:  # its pid is not reused while its group has members
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self.popen.poll()

    def join(self, timeout: float | None = None) -> None:
        import subprocess
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Release the driver's ends (the process must have been joined)."""
        self.conn.close()
        if isinstance(self.death, int):
            os.close(self.death)
            self.death = None
        if self.permits is not None:
            os.close(self.permits[0])
            os.close(self.permits[1])
            self.permits = None
        if self.state is not None:
            self.state.release()
            self._mmap.close()
            self.state = None


class _Worker:
    """The driver's view of one worker process."""

    __slots__ = ("index", "gpu", "process", "queue", "reported", "ready", "heard", "sent",
                 "unreported_bytes", "batches", "taken_back", "spawned")

    def __init__(self, index: int, gpu: str | None, process: _Process):
        self.index, self.gpu, self.process = index, gpu, process
        self.spawned = time.monotonic()  # loading the runnable must end in --load-timeout
        self.taken_back = False  # tasks were taken back; nothing more is sent until it drops them
        self.queue: deque[_Task] = deque()  # sent, not reported, in run order
        self.reported = 0  # results received over this worker's life
        self.sent = 0  # tasks sent over its life
        self.unreported_bytes = 0  # size of the batches it has not reported in full
        self.batches: deque[tuple[int, int]] = deque()  # (tasks sent up to it, its bytes)
        self.ready = False  # runnable loaded
        self.heard = 0.0  # monotonic time of the last message, to estimate run times

    def running(self) -> tuple[int, float] | None:
        """(offset in queue, monotonic start) of the run in progress, or None."""
        state = self.process.state  # [start of the run in progress, runs started]
        while True:  # the worker writes start then count; read count, start, count
            started = int(state[1])
            since = state[0]
            if int(state[1]) == started:
                break
        offset = started - 1 - self.reported
        return (offset, since) if 0 <= offset < len(self.queue) else None


class _LocalPool:
    """Worker processes on this machine, one per slot (a slot is None or GPU ids)."""

    #: Target seconds of work queued per worker when runs are short: enough to
    #: hide the round trip, small enough to balance the tail and limit requeues.
    QUEUE_SECONDS = 0.02
    MAX_QUEUE = 256
    #: Runs shorter than this always have the next one queued behind them, so a
    #: worker never waits a driver round trip between two runs.
    PREFETCH_BELOW = 1.0
    #: Bytes of tasks a busy worker may have been sent and not reported: well
    #: under what a socket pair holds (about 200 KiB on Linux), see _fit.
    UNREAD_BYTES = 64 * 1024

    def __init__(self, runnable: str, slots: list[str | None], *, logs: Path,
                 runnable_hash: str, timeout: float | None = None, batching: bool = True,
                 names: Iterable[str] = (), load_timeout: float = 300.0):
        self.names = tuple(names)  # the space's parameters, which the function must accept
        self.runnable, self.slots, self.logs = runnable, slots, logs.absolute()
        self.runnable_hash, self.timeout, self.batching = runnable_hash, timeout, batching
        self.load_timeout = load_timeout
        self.workers: list[_Worker | None] = [None] * len(slots)
        self.pending: deque[_Task] = deque()  # submitted, not yet sent to a worker
        # Moving mean of run seconds; sets the queue depth. None until a run has
        # ended: until then one run per worker, however many workers wait.
        self._mean: float | None = None
        self.startup_seconds = 0.0
        self.reports: _Reports | None = None  # set by the loop: where runs report to

    @property
    def capacity(self) -> int:
        return len(self.slots)

    def start(self) -> None:
        self._t_start = time.monotonic()
        for i in range(len(self.slots)):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        settings = {"runnable": self.runnable, "worker": i, "gpu": self.slots[i],
                    "logs": str(self.logs), "runnable_hash": self.runnable_hash,
                    "names": self.names}
        if self.reports is not None:
            settings.update(report_to=self.reports.address, session=self.reports.session,
                            verdict_from=self.reports.verdict_from())
        with _SigintHeld():
            self.workers[i] = _Worker(i, self.slots[i],
                                      _Process(settings, shared_state=True, permits=True))

    def _depth(self) -> int:
        if not self.batching or self._mean is None:
            return 1
        if self._mean >= self.PREFETCH_BELOW:
            return 1  # long runs: a round trip per run costs nothing; keep the tail balanced
        return max(2, min(self.MAX_QUEUE, int(self.QUEUE_SECONDS / max(self._mean, 1e-6)) + 1))

    def room(self) -> int:
        """How many more tasks to submit now to keep every worker busy."""
        depth = self._depth()
        return max(0, sum(depth - len(w.queue) for w in self.workers if w and not w.taken_back)
                   - len(self.pending))

    def submit(self, task: _Task) -> None:
        self.pending.append(task)

    def busy(self) -> bool:
        return bool(self.pending) or any(w and w.queue for w in self.workers)

    def _dispatch(self) -> None:
        depth = self._depth()
        # At most half a queue per message: a worker reports the first half when
        # done with it and runs the second while the driver journals and refills.
        half = max(1, depth // 2)
        if not self.pending:
            self._take_back()
        for w in sorted((w for w in self.workers if w and not w.taken_back),
                        key=lambda w: len(w.queue)):
            while self.pending and len(w.queue) < depth:
                pending = self.pending
                batch = [pending.popleft()
                         for _ in range(min(half, depth - len(w.queue), len(pending)))]
                data = self._fit(w, batch)
                if data is None:
                    break  # it has enough unread: more once it reports
                if not w.queue:
                    w.heard = time.monotonic()
                w.queue.extend(batch)
                w.sent += len(batch)
                w.batches.append((w.sent, len(data)))
                w.unreported_bytes += len(data)
                try:
                    os.write(w.process.permits[1], b"p" * len(batch))  # before the tasks
                    w.process.conn.send_bytes(data)
                except OSError:
                    break  # it died; its death watch fires and its queue goes back

    def _take_back(self) -> None:
        """Give an idle worker the tasks another holds queued behind a run in progress.

        Nothing is pending, so no other work exists for the idle worker. A task
        is taken back by reading its permit byte: if the worker read it first,
        it has started that task and keeps it.
        """
        idle = [w for w in self.workers if w and w.ready and not w.queue and not w.taken_back]
        if not idle:
            return
        for w in sorted((w for w in self.workers if w and len(w.queue) > 1),
                        key=lambda w: -len(w.queue)):
            want = len(w.queue) // 2  # at most what stands behind the run in progress
            try:
                got = len(os.read(w.process.permits[0], want))
            except (BlockingIOError, OSError):
                got = 0
            if got:
                w.taken_back = True  # it drops them and says so; nothing is sent to it until then
                taken = [w.queue.pop() for _ in range(got)]
                self.pending.extend(reversed(taken))
                idle = idle[1:]
            if not idle:
                return

    def _fit(self, w: _Worker, batch: list[_Task]) -> bytes | None:
        """The batch as sent, cut to what a busy worker may hold unread (the rest
        goes back to pending), or None when nothing fits now.

        A worker reads its socket only between batches, and its results may
        wait for the driver to read them: if the driver's send waited too,
        on a worker with a full socket, neither would ever go on. So a busy
        worker is sent no more than a socket pair holds; an idle one, anything.
        """
        import pickle
        data = pickle.dumps([(t.id, t.run, t.params) for t in batch], pickle.HIGHEST_PROTOCOL)
        room = self.UNREAD_BYTES - w.unreported_bytes if w.queue else math.inf
        if len(data) <= room:
            return data
        keep = max(0, int(len(batch) * room / len(data)))
        self.pending.extendleft(reversed(batch[keep:]))
        del batch[keep:]
        if not batch:
            return None
        return pickle.dumps([(t.id, t.run, t.params) for t in batch], pickle.HIGHEST_PROTOCOL)

    def running(self) -> int:
        """Runs in flight: one per worker holding tasks."""
        return sum(1 for w in self.workers if w and w.queue)

    def wait(self, timeout: float | None = None) -> list[_Outcome]:
        """Dispatch, then block until something happens or ``timeout`` passes; return
        the runs that ended."""
        from multiprocessing.connection import wait
        self._dispatch()
        outcomes: list[_Outcome] = []
        waitables: dict[Any, Any] = {}
        if self.reports is not None:
            waitables[self.reports] = None
        for w in self.workers:
            if w:
                waitables[w.process.conn] = w
                waitables[w.process.death] = w  # readable once the process has exited
        deadline = self._next_deadline()
        if timeout is not None:
            deadline = timeout if deadline is None else min(deadline, timeout)
        if self.reports is not None:
            self.reports.release()  # those held back last time (see below)
        ready = wait(list(waitables), timeout=deadline)
        if self.reports is not None:
            # First: a worker sends a run's reports before its end, so they are here now.
            # Reports and ends come on different channels; to tell the pruner in the order
            # they happened, a run's reports go before its end, and the reports of the runs
            # still going after the ends of this wake-up (at the next wait, once _drive has
            # told the ends): the decisions do not depend on when the driver woke.
            self.reports.receive(hold=True)
        for obj in ready:
            w = waitables[obj]
            if w is None:
                continue
            if self.workers[w.index] is not w:
                continue  # already replaced this round
            if obj is w.process.conn:
                self._on_messages(w, outcomes)
            else:
                self._on_death(w, outcomes)
        if self.reports is not None:
            ended = {(o.task.id, o.task.run) for o in outcomes}
            self.reports.release(ended if ended else None)
        self._kill_overdue(outcomes)
        return outcomes

    def _next_deadline(self) -> float | None:
        """Seconds until the next run or load may be overdue (at most a day: waits
        of weeks overflow the system's poll), or None."""
        now = time.monotonic()
        deadlines = [w.spawned + self.load_timeout for w in self.workers if w and not w.ready]
        grace = self.reports.next_deadline() if self.reports is not None else None
        if grace is not None:
            deadlines.append(now + grace)
        if self.timeout is not None:
            starts = [r[1] for w in self.workers if w and w.queue and (r := w.running())]
            deadlines += [t + self.timeout for t in starts]
            if not starts and any(w and w.queue for w in self.workers):
                # Nothing measurable is running; a worker that starts one reports
                # nothing until it ends, so look again within the timeout.
                deadlines.append(now + self.timeout)
        if not deadlines:
            return None
        return min(max(0.0, min(deadlines) - now), 86400.0)

    def _on_messages(self, w: _Worker, outcomes: list[_Outcome]) -> None:
        try:
            conn = w.process.conn
            while conn.poll():
                self._on_message(w, conn.recv_bytes(), outcomes)
        except (EOFError, OSError):
            pass  # the worker is gone; its death watch reports it

    def _on_message(self, w: _Worker, msg: bytes, outcomes: list[_Outcome]) -> None:
        kind = msg[:1]
        if kind == _MSG_READY:
            w.ready = True
            w.heard = time.monotonic()
            if not self.startup_seconds and all(x and x.ready for x in self.workers):
                self.startup_seconds = time.monotonic() - self._t_start
        elif kind == _MSG_DROPPED:  # it dropped what was taken back; all else is reported
            w.taken_back = False
            w.sent = w.reported
            w.batches.clear()
            w.unreported_bytes = 0
        elif kind == _MSG_FATAL:
            raise RunnableError(_fatal_message(self.runnable, msg[1:].decode()))
        elif kind == _MSG_REFUSED:
            raise RunnableError(msg[1:].decode())
        else:  # one or more results
            # The worker sends each run's record with its line, as the line reads
            # back: kept for the CSV and the summary, the journal is not re-read.
            statuses, records, blob = _read_results(msg)
            now = time.monotonic()
            seconds = (now - w.heard) / len(statuses)
            self._mean = seconds if self._mean is None else self._mean + 0.2 * (seconds - self._mean)
            w.heard = now
            lines = blob.splitlines(keepends=True)  # JSON lines hold no raw CR or LF
            w.reported += len(statuses)
            while w.batches and w.batches[0][0] <= w.reported:
                w.unreported_bytes -= w.batches.popleft()[1]
            for status, line, record in zip(statuses, lines, records, strict=True):
                outcomes.append(_Outcome(w.queue.popleft(), _STATUS_BY_INT[status], line, record))

    def _on_death(self, w: _Worker, outcomes: list[_Outcome]) -> None:
        self._on_messages(w, outcomes)  # results it sent before dying still count
        w.process.join()
        w.process.kill()  # what its runs left in its process group
        if not w.ready:  # loading the runnable killed it: what it printed last says why
            last = _last_line(_capture_tmp(self.logs, w.process.pid))
            raise RunnableError(f"{self.runnable}: a worker died while loading it "
                                f"({_signal_text(w.process.exitcode)})"
                                + (f"; its last output: {last}" if last else ""))
        outcome = self._blame(w, "crashed", _signal_text(w.process.exitcode))
        if outcome:
            outcomes.append(outcome)
        self._respawn(w)
        _kill_orphans(x.process.pid for x in self.workers if x)

    def _kill_overdue(self, outcomes: list[_Outcome]) -> None:
        now = time.monotonic()
        for w in self.workers:
            if w and not w.ready and now - w.spawned >= self.load_timeout:
                last = _last_line(_capture_tmp(self.logs, w.process.pid))
                raise RunnableError(f"{self.runnable}: loading it in a worker took longer than "
                                    f"{self.load_timeout:g}s (--load-timeout)"
                                    + (f"; its last output: {last}" if last else ""))
        for key in self.reports.overdue() if self.reports is not None else ():
            self._stop(key, outcomes)
        if self.timeout is None:
            return
        for w in list(self.workers):
            running = w.running() if w and w.queue else None
            if running and time.monotonic() - running[1] >= self.timeout:
                self._on_messages(w, outcomes)  # it may have just finished
                running = w.running()
                if running and time.monotonic() - running[1] >= self.timeout:
                    w.process.kill()
                    w.process.join()
                    outcomes.append(self._blame(w, "timeout",
                                                f"killed after --timeout {self.timeout:g}s"))
                    self._respawn(w)

    def _stop(self, key: tuple, outcomes: list[_Outcome]) -> None:
        """Kill the worker of a pruned run that did not stop within --prune-grace."""
        for w in self.workers:
            running = w.running() if w and w.queue else None
            if running and (w.queue[running[0]].id, w.queue[running[0]].run) == key:
                self._on_messages(w, outcomes)  # it may have just ended
                running = w.running()
                if running and (w.queue[running[0]].id, w.queue[running[0]].run) == key:
                    w.process.kill()
                    w.process.join()
                    outcomes.append(self._blame(w, "pruned", "killed after --prune-grace "
                                                f"{self.reports.grace:g}s without another "
                                                "report"))
                    self._respawn(w)
                return

    def _blame(self, w: _Worker, status: str, error: str) -> _Outcome | None:
        """The run in progress ends with ``status``; every other task of the queue goes back.

        Runs that finished but whose results the worker still held are run
        again: nothing unjournaled is ever counted as done.
        """
        running = w.running()
        queue = list(w.queue)
        w.queue.clear()
        if running is None:  # died between runs: nobody to blame
            self.pending.extendleft(reversed(queue))
            return None
        offset, since = running
        task = queue.pop(offset)
        self.pending.extendleft(reversed(queue))
        _salvage_log(self.logs, w.process.pid, task, error)
        now = time.time()
        record, line = _entry(task, status, None, error, w.index, w.gpu,
                              now - (time.monotonic() - since), now, self.runnable_hash)
        return _Outcome(task, status, line, record)

    def _respawn(self, w: _Worker) -> None:
        w.process.close()
        self._spawn(w.index)

    def shutdown(self, *, kill: bool = False, meanwhile: Callable[[], None] | None = None) -> None:
        """Stop every worker: politely (None down its socket) or at once.

        ``meanwhile`` runs while they exit.
        """
        alive = [w for w in self.workers if w]
        for w in alive:
            try:
                if kill:
                    w.process.kill()
                else:
                    w.process.conn.send(None)
            except (OSError, ValueError):
                pass
        try:
            if meanwhile is not None:
                meanwhile()
        finally:  # a Ctrl-C during it still stops and closes every worker
            self._reap(alive, 1.0 if kill else 5.0)

    def _reap(self, alive: list[_Worker], grace: float) -> None:
        """Wait up to ``grace`` seconds for the workers to exit, then kill what is left.

        A Ctrl-C or SIGTERM meanwhile cuts the wait short, not the reaping: a
        worker left alive could outlive the driver's clean-up (and find its log
        folder gone), so the signal is raised once every worker is dead.
        """
        with _SignalsDeferred() as deferred:
            deadline = time.monotonic() + grace
            for w in alive:
                while not deferred.got and w.process.is_alive() and time.monotonic() < deadline:
                    w.process.join(min(0.05, max(0.0, deadline - time.monotonic())))
                w.process.kill()  # if still alive; and what its runs left in its group
                w.process.join()
                w.process.close()
                _capture_tmp(self.logs, w.process.pid).unlink(missing_ok=True)
            self.workers = [None] * len(self.slots)
            _kill_orphans(())


@functools.cache
def _have_pidfd() -> bool:
    """Linux 5.3+: a pidfd fires when a process exits."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _salvage_log(logs: Path, pid: int, task: _Task, error: str) -> Path | None:
    """Keep what a killed worker's run printed as that run's log, with why it ended."""
    tmp = _capture_tmp(logs, pid)
    try:
        if not tmp.stat().st_size:
            tmp.unlink()
            return None
        with open(tmp, "a") as f:
            f.write(f"\nexp: {error}\n")
        return tmp.replace(logs / f"{task.id}-{task.run}.log")
    except OSError:
        return None


def _last_line(path: Path) -> str:
    """The last non-blank line of a small text file, or ""."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return _printable(lines[-1].strip())[:300] if lines else ""


def _fatal_message(runnable: str, text: str) -> str:
    last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
    return f"{runnable}: cannot load it in a worker: {last}"


# ─── pool on a Dask cluster ──────────────────────────────────────────────────
#
#   driver ──client.submit(_dask_run, batch of tasks)──► scheduler ──► Dask worker
#     ▲                                                                │ thread
#     └── per run: (status, journal line, log bytes); tasks not run ◄──┘ child process
#                                                                        (reused)
# driver: the only writer of the journal, as locally; keeps two batches in
#   flight per Dask thread, each of about BATCH_SECONDS of runs once run
#   times are known (one run per batch until then), and waits on one queue fed
#   by the futures' callbacks, so that it also sees the scheduler go away.
# Dask worker thread: owns one worker process started as the local pool
#   starts its own (_Process; a daemonic Dask worker may not have
#   multiprocessing children, a subprocess it may). It sends the batch to the
#   child and waits on the child's channel and death watch, reading from the
#   shared state which run is in progress, so a crash or a timeout is pinned
#   on that run; the runs after it come back unrun. A dead child is replaced.

_DASK_CHILD: dict[int, _Child] = {}  # on a Dask worker: thread ident -> its child


class _Relay:
    """On a Dask worker: the reports of a thread's child, sent on to the driver as Dask
    events on the experiment's topic; the driver's stop decisions, read from one
    ``distributed.Event`` per stopped attempt, sent back to the reporting processes."""

    CHECK_EVERY = 0.1  # seconds between looks at the stop events while a run reports

    def __init__(self, topic: str, session: str, grace: float):
        import socket
        self.topic, self.session, self.grace = topic, session, grace
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir = None
        if sys.platform.startswith("linux"):
            self.address = f"@exp-relay-{os.getpid()}-{os.urandom(6).hex()}"
        else:
            import tempfile
            self._dir = tempfile.mkdtemp(prefix="exp-")
            self.address = os.path.join(self._dir, "relay")
        self.sock.bind(_socket_address(self.address))
        self.sock.setblocking(False)
        self.sources: dict[str, set] = {}  # token -> where its reports came from
        self.stopped: dict[str, float] = {}  # token -> monotonic time the stop was seen
        self._checked = 0.0

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> list:
        """Every report waiting, as the driver reads them."""
        batch = []
        while True:
            try:
                data, address = self.sock.recvfrom(1 << 20)
            except OSError:
                return batch
            if data[:1] == _MSG_REPORTS:
                try:
                    items = _loads(data[1:])
                except ValueError:
                    continue
                for item in items:
                    self.sources.setdefault(item[0], set()).add(address)
                    if item[0] in self.stopped:
                        self._tell(item[0], address)
                batch += items

    def forward(self, worker: Any) -> None:
        batch = self.drain()
        if batch:
            worker.log_event(self.topic, _dumps(batch))  # strict JSON: msgpack takes text

    def check(self, tokens: Iterable[str]) -> None:
        """Look (at most every CHECK_EVERY s) whether the driver stopped these attempts."""
        now = time.monotonic()
        if now - self._checked < self.CHECK_EVERY:
            return
        self._checked = now
        from distributed import Event
        for token in tokens:
            if token not in self.stopped and Event(_stop_event(self.session, token)).is_set():
                self.stopped[token] = now
                for address in self.sources.get(token, ()):
                    self._tell(token, address)

    def _tell(self, token: str, address: Any) -> None:
        try:
            self.sock.sendto(_MSG_STOP + token.encode(), address)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            import shutil
            shutil.rmtree(self._dir, ignore_errors=True)


def _stop_event(session: str, token: str) -> str:
    return f"exp-stop-{session}-{token}"


class _Child:
    """A worker child process started with subprocess, talking over an inherited socket."""

    def __init__(self, runnable: str, label: str, gpu: str | None, runnable_hash: str,
                 names: list[str], relay: _Relay | None = None):
        import tempfile
        self.key = (runnable, runnable_hash, gpu)
        self.logs = Path(tempfile.mkdtemp(prefix="exp-logs-"))
        self.relay = relay
        settings = {"runnable": runnable, "worker": label, "gpu": gpu, "logs": str(self.logs),
                    "runnable_hash": runnable_hash, "names": names}
        if relay is not None:
            settings.update(report_to=relay.address, session=relay.session)
        try:
            with _SigintHeld():
                self.proc = _Process(settings, shared_state=True)
        except BaseException:
            import shutil
            shutil.rmtree(self.logs, ignore_errors=True)
            if relay is not None:
                relay.close()
            raise
        self.ready = False
        self.spawned = time.monotonic()
        self.started = 0  # runs it started, as its shared state counts them, before this batch

    def wait(self, timeout: float | None) -> bytes | None:
        """The child's next message; None on timeout (or reports only, relayed); b"" when
        it died."""
        from multiprocessing.connection import wait
        waitables = [self.proc.conn, self.proc.death]
        if self.relay is not None:
            waitables.append(self.relay)
            if self.relay.sources:  # a run reports: look for a stop decision now and then
                timeout = _Relay.CHECK_EVERY if timeout is None else min(timeout,
                                                                          _Relay.CHECK_EVERY)
        ready = wait(waitables, _poll_seconds(timeout))
        if not ready or ready == [self.relay]:
            return None
        try:
            if self.proc.conn.poll():
                return self.proc.conn.recv_bytes()
        except (EOFError, OSError):
            pass
        self.proc.join()
        return b""

    def running(self) -> tuple[int, float]:
        """(runs started, monotonic start of the latest): written by the child, read here."""
        state = self.proc.state
        while True:  # the worker writes start then count; read count, start, count
            started = int(state[1])
            since = state[0]
            if int(state[1]) == started:
                return started, since

    def close(self) -> None:
        import shutil
        self.proc.kill()
        self.proc.join()
        self.proc.close()
        if self.relay is not None:
            self.relay.close()
        shutil.rmtree(self.logs, ignore_errors=True)


def _poll_seconds(timeout: float | None) -> float | None:
    """A wait limit the system's poll accepts (waits of weeks overflow it)."""
    return None if timeout is None else min(max(0.0, timeout), 86400.0)


def _dask_run(runnable: str, file_name: str | None, batch: list[tuple], runnable_hash: str,
              timeout: float | None, pin_gpu: bool, names: list[str],
              load_timeout: float = 300.0,
              relay: tuple | None = None) -> tuple[bytes, list, list[tuple], float, list]:
    """Runs on a Dask worker: a batch of runs in this thread's child process.

    Returns (kind, results, tasks not run, seconds the batch took here, the
    reports read when the runs ended; those of runs in progress go to the
    driver as Dask events on the topic of ``relay``: (topic, session, grace)). kind is
    b"" when runs were done, each result ``(offset in batch, status byte,
    journal line, log bytes or None)``; or _MSG_REFUSED / _MSG_FATAL when the
    runnable cannot be loaded, the results then ``[message, worker address]``.
    A crash or a timeout ends the batch: the run in progress is blamed, the
    runs after it, and those it had done but not yet reported, come back unrun.
    """
    import threading
    from distributed import get_worker
    worker = get_worker()
    if file_name is not None:  # shipped with Client.upload_file into the worker's directory
        runnable = os.path.join(worker.local_directory, file_name) + runnable[runnable.rindex(":"):]
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") if pin_gpu else None
    me = threading.get_ident()
    child = _DASK_CHILD.get(me)
    key = (runnable, runnable_hash, gpu, relay)
    if child is not None and (child.key != key or not child.proc.is_alive()):
        _DASK_CHILD.pop(me).close()
        child = None
    if child is None:
        child = _DASK_CHILD[me] = _Child(runnable, worker.address, gpu, runnable_hash, names,
                                         _Relay(*relay) if relay else None)
        child.key = key
    while not child.ready:
        msg = child.wait(child.spawned + load_timeout - time.monotonic())
        if msg is not None and msg[:1] == _MSG_READY:
            child.ready = True
            break
        if msg is None:
            kind, text = _MSG_FATAL, (f"loading it took longer than {load_timeout:g}s "
                                      "(--load-timeout)")
        elif msg[:1] == _MSG_REFUSED:
            kind, text = _MSG_REFUSED, msg[1:].decode()
        else:
            kind = _MSG_FATAL
            text = msg[1:].decode() if msg[:1] == _MSG_FATAL else _signal_text(child.proc.exitcode)
        _DASK_CHILD.pop(me).close()
        return kind, [text, worker.address], [], 0.0, []
    before = child.running()[0]  # runs the child had started before this batch
    t0 = time.monotonic()
    child.proc.conn.send(batch)
    results: list[tuple[int, bytes, bytes, bytes | None]] = []
    ended_reports: list = []  # read as runs ended: returned with them, so they come first
    relay_ = child.relay
    while len(results) < len(batch):
        started, since = child.running()
        in_progress = started > before + len(results)
        wait_for = (None if not timeout else
                    since + timeout - time.monotonic() if in_progress else timeout)
        msg = child.wait(wait_for)
        if msg:
            if relay_ is not None:
                ended_reports += relay_.drain()  # a child sends a run's reports before its end
                relay_.sources.clear()
                relay_.stopped.clear()
            statuses, _, blob = _read_results(msg)
            for status, line in zip(statuses, blob.splitlines(keepends=True)):
                results.append((len(results), bytes([status]), line,
                                _take_log(child.logs, _Task(*batch[len(results)]))))
            continue
        started, since = child.running()
        blamed = started - before - 1  # offset of the run in progress, if not reported
        pruned_late = False
        if relay_ is not None and msg is None:
            relay_.forward(worker)
            relay_.check(list(relay_.sources))
            pruned_late = any(time.monotonic() - t >= relay_.grace
                              for t in relay_.stopped.values())
        overdue = bool(timeout) and time.monotonic() - since >= timeout
        if msg is None and (blamed < len(results) or not (overdue or pruned_late)):
            continue  # nothing overdue at the deadline: look again
        if msg is None and pruned_late:  # stopped, and no report since, in --prune-grace
            child.proc.kill()
            child.proc.join()
            kind, status, error = _MSG_PRUNED, "pruned", (
                f"killed after --prune-grace {relay_.grace:g}s without another report")
        elif msg is None:  # still running past the deadline
            child.proc.kill()
            child.proc.join()
            kind, status, error = _MSG_TIMEOUT, "timeout", f"killed after --timeout {timeout:g}s"
        else:
            kind, status, error = _MSG_CRASHED, "crashed", _signal_text(child.proc.exitcode)
        unrun = list(range(len(results), len(batch)))
        if blamed >= len(results):
            unrun.remove(blamed)
            t = _Task(*batch[blamed])
            _salvage_log(child.logs, child.proc.pid, t, error)
            now = time.time()
            _, line = _entry(t, status, None, error, worker.address, gpu,
                             now - (time.monotonic() - since), now, runnable_hash)
            results.append((blamed, kind, line, _take_log(child.logs, t)))
        if relay_ is not None:
            ended_reports += relay_.drain()
        _DASK_CHILD.pop(me).close()
        return b"", results, [batch[i] for i in unrun], time.monotonic() - t0, ended_reports
    return b"", results, [], time.monotonic() - t0, ended_reports


def _take_log(logs: Path, task: _Task) -> bytes | None:
    """The bytes of a run's log file in a Dask child's folder, removed from it."""
    log_file = logs / f"{task.id}-{task.run}.log"
    try:
        data = log_file.read_bytes()
    except OSError:
        return None
    log_file.unlink(missing_ok=True)
    return data


class _DaskPool:
    """Runs on an existing Dask distributed scheduler; same interface as _LocalPool."""

    #: Seconds of runs per batch once run times are known (one run per batch
    #: until then): a scheduler round trip costs milliseconds.
    BATCH_SECONDS = 0.1
    MAX_BATCH = 4096
    #: Seconds the scheduler may stay unreachable (or not answer) before the experiment
    #: stops, and seconds between the probes that find one that no longer answers.
    LOST_AFTER = 30.0
    PROBE_EVERY = 10.0

    def __init__(self, runnable: _Runnable, *, address: str | None, scheduler_file: str | None,
                 security: str | None, logs: Path, runnable_hash: str,
                 timeout: float | None, workers: int | None, gpus_per_run: int | None,
                 names: Iterable[str] = (), load_timeout: float = 300.0, batching: bool = True):
        import queue
        self.batching = batching  # False: one run per task, no more in flight than slots
        self.runnable, self.logs, self.runnable_hash = runnable, logs, runnable_hash
        self.names = list(names)
        self.address, self.scheduler_file, self.security = address, scheduler_file, security
        self.timeout, self.workers, self.gpus_per_run = timeout, workers, gpus_per_run
        self.load_timeout = load_timeout
        self.pending: deque[_Task] = deque()
        self.futures: dict[Any, list[_Task]] = {}  # in flight on the cluster: its batch
        self.capacity = 0
        self.startup_seconds = 0.0
        self.client = None
        self._done: queue.SimpleQueue = queue.SimpleQueue()  # futures that ended, from callbacks
        self._mean: float | None = None  # moving mean of run seconds: sets the batch size
        self._single: set[tuple[int, int]] = set()  # runs sent alone after a lost batch
        self._lost_at: float | None = None  # monotonic time the scheduler was last seen gone
        self._probe: tuple[Any, float] = (None, time.monotonic())  # (answer to come, sent at)
        self.where = address or scheduler_file  # the scheduler's address, once known
        self._log_level = 0
        self.reports: _Reports | None = None  # set by the loop: where runs report to
        self.topic = ""

    def start(self) -> None:
        t0 = time.monotonic()
        distributed = _extra("distributed", "--cluster", "dask")
        where = self._check_where()
        security = _dask_security(self.security)
        if (self.address or "").startswith("tls://") and (security or _default_security()) \
                .get_connection_args("client").get("ssl_context") is None:
            raise ExpError(f"--cluster {self.address}: no TLS settings for the client (give "
                           "--cluster-security FILE, or set them in Dask's configuration)")
        self.where = where
        self.client = self._connect(distributed, security, where)
        # The client's own account of a lost scheduler ("Failed to reconnect ...") would
        # come before exp's one line; quiet while exp owns the client, restored on close.
        import logging
        self._log_levels = {name: logging.getLogger(name).level for name in _DASK_QUIET}
        for name in _DASK_QUIET:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if self.runnable.file:
            self.client.upload_file(self.runnable.file, load=False)
        threads = sum(self.client.nthreads().values())
        if not threads and not self.workers:
            raise ExpError("--cluster: the scheduler has no workers (start some with "
                           "'dask worker ADDRESS', or give --workers)")
        self.capacity = self.workers or threads
        if self.reports is not None:  # runs' reports come back as events on one topic
            self.topic = f"exp-reports-{self.reports.session}"
            self.client.subscribe_topic(self.topic, lambda event: self._done.put(event[1]))
            self.reports.send_stop = self._send_stop
            self.reports.on_stopped_end = self._clear_stop
        self.startup_seconds = time.monotonic() - t0

    def _check_where(self) -> str:
        """The scheduler's address or file, checked before any connection is tried."""
        if self.scheduler_file is not None:
            path = self.scheduler_file
            try:
                with open(path, "rb") as f:
                    info = json.loads(f.read() or b"null")
            except OSError as e:
                raise ExpError(f"--scheduler-file {path}: {e.strerror} (the file 'dask "
                               "scheduler --scheduler-file FILE' writes)") from None
            except ValueError:
                info = None
            if not isinstance(info, dict) or not isinstance(info.get("address"), str):
                raise ExpError(f"--scheduler-file {path}: not a Dask scheduler file (JSON with "
                               "the scheduler's \"address\")")
            address = info["address"]
        else:
            address = self.address
        from distributed.comm import registry
        from distributed.comm.addressing import parse_address, parse_host_port
        try:
            scheme, location = parse_address(address)
            if scheme not in registry.backends:
                raise ValueError(f"unknown protocol {scheme!r} (valid protocols are "
                                 f"{_quoted(sorted(registry.backends))})")
            if scheme in ("tcp", "tls", "ws", "wss"):
                parse_host_port(location)
        except (ValueError, TypeError) as e:
            raise ExpError(f"--cluster {address}: {e} (give tcp://HOST:PORT)") from None
        return address

    def _connect(self, distributed: Any, security: Any, where: str) -> Any:
        try:
            return distributed.Client(self.address, scheduler_file=self.scheduler_file,
                                      timeout=f"{self.CONNECT_SECONDS}s", security=security,
                                      set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            message = f"--cluster: cannot reach the Dask scheduler at {where}: {e}"
        finally:
            # A client that failed to start closes now, while its event loop still runs;
            # left to the garbage collector at exit it would wait, then print a traceback.
            import gc
            gc.collect()
        raise ExpError(message)

    #: Seconds to wait for the scheduler to answer when connecting.
    CONNECT_SECONDS = 20

    def room(self) -> int:
        return max(0, self.capacity * self._batch() * self._depth() - self._in_flight()
                   - len(self.pending))

    def _depth(self) -> int:
        """Tasks in flight per Dask thread: two while runs are short (one queued behind
        the other hides the scheduler's round trip), else one. A Dask worker that dies
        is blamed for every task it holds, queued ones too: long runs are not queued."""
        return 2 if self._batch() > 1 and not self._single else 1

    def _in_flight(self) -> int:
        return sum(len(b) for b in self.futures.values())

    def _batch(self) -> int:
        if self._mean is None or not self.batching:
            return 1
        return max(1, min(self.MAX_BATCH, int(self.BATCH_SECONDS / max(self._mean, 1e-6))))

    def submit(self, task: _Task) -> None:
        self.pending.append(task)

    def busy(self) -> bool:
        return bool(self.pending or self.futures)

    def _dispatch(self) -> None:
        file_name = os.path.basename(self.runnable.file) if self.runnable.file else None
        spec = (f"{self.runnable.file}:{self.runnable.function}" if self.runnable.file
                else f"{self.runnable.module}:{self.runnable.function}")
        resources = {"GPU": self.gpus_per_run} if self.gpus_per_run else None
        size = self._batch()
        while self.pending and len(self.futures) < self.capacity * self._depth():
            if (self.pending[0].id, self.pending[0].run) in self._single:
                batch = [self.pending.popleft()]
            else:
                batch = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
            future = self.client.submit(
                _dask_run, spec, file_name, [(t.id, t.run, t.params) for t in batch], self.runnable_hash,
                self.timeout, bool(self.gpus_per_run), self.names, self.load_timeout,
                (self.topic, self.reports.session, self.reports.grace) if self.reports else None,
                pure=False, resources=resources,
                key=f"exp-{batch[0].id}-{batch[0].run}-{os.urandom(4).hex()}")
            self.futures[future] = batch
            future.add_done_callback(self._done.put)

    def running(self) -> int:
        return min(self.capacity, len(self.futures))

    def wait(self, timeout: float | None = None) -> list[_Outcome]:
        try:
            return self._wait(timeout)
        except ExpError:
            raise
        except Exception as e:  # a call to a scheduler that has just gone: OSError,
            # TimeoutError, or ClosedClientError from a submit once the client noticed
            if getattr(self.client, "status", "closed") == "running":
                raise
            raise self._gone(f"it dropped the connection: {type(e).__name__}") from None

    def _gone(self, why: str) -> ExpError:
        return ExpError(f"--cluster: the Dask scheduler at {self.where} is gone ({why}); the "
                        "journal is whole: run the same command again once a scheduler is up "
                        "to finish the runs left")

    def _wait(self, timeout: float | None) -> list[_Outcome]:
        import queue
        self._dispatch()
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if until is None else min(1.0, until - time.monotonic())
            try:
                done = [self._done.get(timeout=max(0.0, left))]
                break
            except queue.Empty:
                self._check_scheduler()
                if until is not None and time.monotonic() >= until:
                    return []
        while True:  # and whatever else has ended meanwhile
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        outcomes: list[_Outcome] = []
        for item in done:
            if isinstance(item, str):  # reports, relayed as text from a Dask worker
                if self.reports is not None:
                    self.reports.handle(_loads(item), None)
                continue
            batch = self.futures.pop(item, None)
            if batch is not None:
                self._on_result(item, batch, outcomes)
        return outcomes

    def _send_stop(self, source: Any, token: str) -> None:
        from distributed import Event
        Event(_stop_event(self.reports.session, token), client=self.client).set()

    def _clear_stop(self, token: str) -> None:
        from distributed import Event
        try:
            Event(_stop_event(self.reports.session, token), client=self.client).clear()
        except Exception:  # noqa: BLE001 - only tidying the scheduler
            pass

    def _learn(self, seconds: float) -> None:
        self._mean = seconds if self._mean is None else self._mean + 0.2 * (seconds - self._mean)

    def _check_scheduler(self) -> None:
        """Stop, in LOST_AFTER seconds, an experiment whose scheduler is gone, or frozen
        (its connection open, no answer: probed every PROBE_EVERY seconds)."""
        status = getattr(self.client, "status", "closed")
        now = time.monotonic()
        if status == "running":
            self._lost_at = None
            self._probe_scheduler(now)
            return
        self._lost_at = self._lost_at or now
        if status in ("closed", "failed") or now - self._lost_at >= self.LOST_AFTER:
            raise self._gone(f"no answer for {now - self._lost_at:.0f}s")

    def _probe_scheduler(self, now: float) -> None:
        """Ask the scheduler who it is, without waiting for the answer; one that has not
        come within LOST_AFTER means a scheduler that stopped answering."""
        probe, sent = self._probe
        if probe is not None and not probe.done():
            if now - sent >= self.LOST_AFTER:
                raise self._gone(f"it has not answered for {now - sent:.0f}s")
            return
        if now - sent < self.PROBE_EVERY:
            return
        import asyncio
        try:
            probe = asyncio.run_coroutine_threadsafe(self.client.scheduler.identity(),
                                                     self.client.loop.asyncio_loop)
        except Exception:  # noqa: BLE001 - a client closing: its status says so next time
            probe = None
        self._probe = (probe, now)

    def _on_result(self, future: Any, batch: list[_Task], outcomes: list[_Outcome]) -> None:
        """Journal what a batch did; put back what it did not run."""
        if future.status == "finished":
            kind, results, unrun, seconds, reports = future.result()
            if reports and self.reports is not None:
                self.reports.handle(reports, None)
            if kind == _MSG_REFUSED:
                raise RunnableError(results[0])
            if kind == _MSG_FATAL:
                hint = ("; a package.module runnable must be importable on every worker"
                        if self.runnable.module else "")
                raise RunnableError(f"{_fatal_message(self.runnable.spec, results[0])} "
                                    f"(on Dask worker {results[1]}{hint})")
            for offset, status, line, log_bytes in results:
                task = batch[offset]
                if log_bytes:
                    (self.logs / f"{task.id}-{task.run}.log").write_bytes(log_bytes)
                outcomes.append(_Outcome(task, _STATUS_OF.get(status, "crashed"), line))
            self.pending.extendleft(reversed([_Task(*t) for t in unrun]))
            if results:
                self._learn(seconds / len(results))
            return
        error = future.exception() if future.status == "error" else None
        if type(error).__name__ == "KilledWorker":
            if len(batch) > 1:  # which of its runs killed the workers? Each alone will tell
                self._single.update((t.id, t.run) for t in batch)
                self.pending.extendleft(reversed(batch))
                return
            status, text = "crashed", f"it killed the Dask workers that ran it ({error})"
        elif error is not None:
            status, text = "failed", f"{type(error).__name__}: {error}"
        else:  # cancelled or lost with the scheduler: not a result, run it again
            self.pending.extendleft(reversed(batch))
            return
        now = time.time()
        for task in batch:
            record, line = _entry(task, status, None, text, None, None, now, now,
                                  self.runnable_hash)
            outcomes.append(_Outcome(task, status, line, record))

    def shutdown(self, *, kill: bool = False, meanwhile: Callable[[], None] | None = None) -> None:
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            self._close_client()

    def _close_client(self) -> None:
        """Cancel what is in flight and close; quietly, even with the scheduler gone."""
        client, self.client = self.client, None
        if client is None:
            return
        gone = getattr(client, "status", "closed") != "running"
        try:
            if self.futures and not gone:
                client.cancel(list(self.futures), force=True)
        except Exception:  # noqa: BLE001 - closing must not hide why the experiment stopped
            pass
        finally:
            self.futures.clear()
            try:
                client.close(timeout=2 if gone else 10)
            except Exception:  # noqa: BLE001
                pass
            import logging
            for name, level in self._log_levels.items():
                logging.getLogger(name).setLevel(level)


#: Dask's loggers that tell of a lost scheduler with a traceback ("Batched Comm
#: Closed", "Failed to reconnect") before exp's one line: quiet while exp owns a client.
_DASK_QUIET = ("distributed.client", "distributed.batched")


def _default_security() -> Any:
    """Dask's own TLS configuration (distributed.comm.tls.*)."""
    from distributed.security import Security
    return Security()


def _dask_security(path: str | None) -> Any:
    """TLS settings from a TOML file of distributed.Security keywords, or Dask's config."""
    if path is None:
        return None
    import tomllib
    from distributed.security import Security
    try:
        with open(path, "rb") as f:
            options = tomllib.load(f)
        return Security(**options)
    except (OSError, tomllib.TOMLDecodeError, TypeError) as e:
        raise ExpError(f"--cluster-security {path}: {e} (expected TOML with distributed."
                       "Security keywords such as tls_ca_file, tls_client_cert, tls_client_key, "
                       "require_encryption)") from None


# ─── GPUs ────────────────────────────────────────────────────────────────────


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi``."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    import shutil
    import subprocess
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()] \
        if out.returncode == 0 else []


#: A GPU is free (``--gpu``, ``gpus="free"``) when nvidia-smi shows its utilisation and
#: the share of its memory in use at or below these percentages (exp 0.5 took
#: utilisation under 20% and looked at no memory).
GPU_MAX_UTIL, GPU_MAX_MEM = 20.0, 10.0


def free_gpus(*, max_util: float = GPU_MAX_UTIL, max_mem: float = GPU_MAX_MEM) -> list[str]:
    """The visible GPUs that are not in use: utilisation and memory used (in percent of
    its memory) at or below the limits, as ``nvidia-smi --query-gpu`` reports them.

    ExpError naming the busy ones when none is free. Without nvidia-smi, the load
    cannot be read: every visible GPU counts as free (with a warning).
    """
    visible = visible_gpus()
    if not visible:
        raise ExpError(f"--gpu: no GPU found ({_no_gpu_why()}); run without --gpu to use CPU "
                       "workers")
    loads = _gpu_loads()
    if loads is None:
        _log().warning("--gpu: cannot read the GPUs' load (nvidia-smi is missing or failed); "
                       "using every visible GPU")
        return visible
    free, busy = [], []
    for gpu in visible:
        load = loads.get(gpu)
        if load is None:  # not one nvidia-smi knows by that id: cannot judge it
            free.append(gpu)
            continue
        util, mem = load
        if (util is None or util <= max_util) and (mem is None or mem <= max_mem):
            free.append(gpu)
        else:
            busy.append(f"{gpu} ({_pct(util)} busy, {_pct(mem)} of memory used)")
    if not free:
        raise ExpError(f"--gpu: no free GPU (utilisation <= {max_util:g}% and memory <= "
                       f"{max_mem:g}%): {', '.join(busy)}; wait for them, raise --gpu-max-util "
                       "or --gpu-max-mem, or name GPUs with --gpus IDS")
    return free


def _no_gpu_why() -> str:
    import shutil
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (f"CUDA_VISIBLE_DEVICES is {env!r}" if env is not None else
            "nvidia-smi lists none" if shutil.which("nvidia-smi") else
            "CUDA_VISIBLE_DEVICES is not set and nvidia-smi is not installed")


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}%"


def _gpu_loads() -> dict[str, tuple[float | None, float | None]] | None:
    """GPU index and uuid -> (utilisation %, memory used %), from nvidia-smi; None if unread."""
    import shutil
    import subprocess
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=index,uuid,utilization.gpu,memory.used,"
                              "memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None

    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:  # "[N/A]" (MIG), "[Not Supported]"
            return None

    loads = {}
    for line in out.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 5 or not fields[0].isdigit():
            continue
        util, used, total = map(number, fields[2:5])
        mem = 100.0 * used / total if used is not None and total else None
        loads[fields[0]] = loads[fields[1]] = (util, mem)
    return loads


def _parse_gpus(gpus: str | int | list | None, *, max_util: float = GPU_MAX_UTIL,
                max_mem: float = GPU_MAX_MEM) -> list[str] | None:
    """``all``, ``free``, a count ``N``, or ids ``0,2,3`` (a single id as ``3,``) into GPU ids."""
    if gpus is None:
        return None
    if isinstance(gpus, (list, tuple)):
        ids = [str(g) for g in gpus]
    else:
        text = str(gpus).strip()
        available = None
        if text == "free":
            ids = free_gpus(max_util=max_util, max_mem=max_mem)
        elif text in ("all", ""):
            ids = available = visible_gpus()
            if not ids:
                raise ExpError(f"--gpus all: no GPU found ({_no_gpu_why()}); run without --gpus "
                               "to use CPU workers")
        elif text.isdigit():
            available = visible_gpus()
            count = int(text)
            if count < 1:
                raise ExpError(f"--gpus must be >= 1, got {count}")
            if count > len(available):
                raise ExpError(f"--gpus {count}: only {len(available)} GPU(s) visible "
                               f"({', '.join(available) or 'none'})")
            ids = available[:count]
        else:
            ids = [g.strip() for g in text.split(",") if g.strip()]
            if not ids:
                raise ExpError(f"--gpus: cannot read {gpus!r} (use all, a count, or ids like 0,2,3)")
    if len(set(ids)) != len(ids):
        raise ExpError(f"--gpus lists a GPU twice: {','.join(ids)}")
    return ids


def gpu_slots(gpus: list[str], *, per_gpu: int = 1, gpus_per_run: int = 1) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each worker: groups of ``gpus_per_run`` ids, ``per_gpu`` times."""
    if per_gpu < 1:
        raise ExpError(f"--per-gpu must be >= 1, got {per_gpu}")
    if gpus_per_run < 1:
        raise ExpError(f"--gpus-per-run must be >= 1, got {gpus_per_run}")
    if gpus_per_run > len(gpus):
        raise ExpError(f"--gpus-per-run {gpus_per_run} needs that many GPUs, "
                       f"only {len(gpus)} given ({','.join(gpus)})")
    groups = [",".join(gpus[i:i + gpus_per_run])
              for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)]
    if len(groups) * gpus_per_run < len(gpus):
        _log().warning("--gpus-per-run %d leaves GPU(s) %s unused", gpus_per_run,
                    ",".join(gpus[len(groups) * gpus_per_run:]))
    return [g for g in groups for _ in range(per_gpu)]


#: More local workers than this is a typo, not a machine.
_MAX_WORKERS = 4096


def _slots(workers: int | None, gpus: Any, per_gpu: int, gpus_per_run: int, *,
           max_util: float = GPU_MAX_UTIL, max_mem: float = GPU_MAX_MEM) -> list[str | None]:
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ExpError(f"workers must be >= 1, got {workers}")
    if workers is not None and workers > _MAX_WORKERS:
        raise ExpError(f"workers must be <= {_MAX_WORKERS}, got {workers}")
    ids = _parse_gpus(gpus, max_util=max_util, max_mem=max_mem)
    if ids is None:
        if per_gpu != 1 or gpus_per_run != 1:
            raise ExpError("--per-gpu and --gpus-per-run need --gpus (or --gpu)")
        return [None] * (workers or _cpu_count())
    slots = gpu_slots(ids, per_gpu=per_gpu, gpus_per_run=gpus_per_run)
    if workers is not None and workers > len(slots):
        raise ExpError(f"--workers {workers} is more than the {len(slots)} GPU slot(s) "
                       "(use --per-gpu K to share each GPU between K runs)")
    return slots[:workers] if workers else slots


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# ─── early stopping ──────────────────────────────────────────────────────────
#
# Runs report (step, metrics); a scheduler ("pruner") reads one metric of them
# and stops the runs that are clearly losing. A pruner is plain arithmetic over
# what it has been told, in order: reports (report), the end of runs (end),
# attempts superseded by a new attempt of the same run (forget). Told the
# journal's lines again in their order, it is in the state the experiment left
# it in, so a resumed experiment decides as an uninterrupted one would.

PRUNERS = ("median", "asha", "hyperband")
#: The median rule waits for this many finished runs, as Optuna's MedianPruner does.
_MEDIAN_STARTUP = 5


class _Rungs:
    """Asynchronous successive halving over the runs of one bracket (Li et al., 2020).

    Rung k is at step ``min_step * eta ** (rate + k)`` (below ``max_step``). A run
    that reaches a rung records its value there (the value it reports at the
    first step at or past the rung) and goes on only if that value is among the
    best ``n // eta`` of the ``n`` values recorded at the rung, itself included
    (the best so far while ``n < eta``), as Optuna's SuccessiveHalvingPruner.
    """

    def __init__(self, min_step: float, max_step: float | None, eta: int, rate: int = 0):
        self.min_step, self.max_step, self.eta, self.rate = min_step, max_step, eta, rate
        self.values: list[dict[tuple, float]] = []  # per rung: run -> value (minimised)
        self.next: dict[tuple, int] = {}  # the next rung of each run

    def report(self, key: tuple, step: float, value: float) -> str | None:
        k = self.next.get(key, 0)
        while True:
            milestone = self.min_step * self.eta ** (self.rate + k)
            if (self.max_step is not None and milestone >= self.max_step) or step < milestone:
                self.next[key] = k
                return None
            while len(self.values) <= k:
                self.values.append({})
            rung = self.values[k]
            rung[key] = value
            ranked = sorted(rung.values())
            keep = max(1, len(ranked) // self.eta)
            cutoff = ranked[keep - 1]
            if value != value or value > cutoff:
                return (f"rung {_num(milestone)}: not in the best {keep} of {len(ranked)} "
                        f"(cutoff {_num(cutoff)})")
            k += 1

    def forget(self, key: tuple) -> None:
        self.next.pop(key, None)
        for rung in self.values:
            rung.pop(key, None)


class _Pruner:
    """``median``, ``asha`` or ``hyperband`` over the minimised values of one metric."""

    def __init__(self, kind: str, *, maximize: bool = False, min_step: float = 1,
                 max_step: float | None = None, eta: int = 3):
        self.kind, self.sign = kind, -1.0 if maximize else 1.0
        self.min_step, self.max_step, self.eta = min_step, max_step, eta
        self.curves: dict[tuple, dict[float, float]] = {}  # median: runs in flight
        self.at_step: dict[float, list[float]] = {}  # median: finished runs' values by step
        self.finished = 0
        self.brackets: list[_Rungs] = []
        if kind == "asha":
            self.brackets = [_Rungs(min_step, max_step, eta)]
        elif kind == "hyperband" and max_step is not None:
            self._brackets(max_step)

    def _brackets(self, max_step: float) -> None:
        """One bracket per rate s (its first rung at ``min_step * eta**s``), as Hyperband
        (Li et al., 2018) run asynchronously, as Optuna's HyperbandPruner does."""
        self.max_step = max_step
        n = 1
        while self.min_step * self.eta ** n <= max_step:
            n += 1
        self.brackets = [_Rungs(self.min_step, max_step, self.eta, rate=s) for s in range(n)]
        # Bracket s gets runs in proportion to its budget, ceil(n eta^(n-1-s) / (n-s)).
        self.budgets = [math.ceil(n * self.eta ** (n - 1 - s) / (n - s)) for s in range(n)]

    def bracket(self, key: tuple) -> _Rungs | None:
        """The bracket of a run: a hash of its identity, so the same after a resume."""
        if len(self.brackets) <= 1:
            return self.brackets[0] if self.brackets else None
        import zlib
        slot = zlib.crc32(f"{key[0]},{key[1]}".encode()) % sum(self.budgets)
        for rungs, budget in zip(self.brackets, self.budgets):
            if slot < budget:
                return rungs
            slot -= budget
        return self.brackets[-1]

    def report(self, key: tuple, step: float, value: float) -> str | None:
        """Told a run's value at a step: why to stop it, or None."""
        value = self.sign * value
        if self.kind == "median":
            return self._median(key, step, value)
        rungs = self.bracket(key)
        if rungs is None:  # hyperband before any run has shown the full length of a run
            return None
        reason = rungs.report(key, step, value)
        if reason and len(self.brackets) > 1:
            reason = f"bracket {rungs.rate}, {reason}"
        return reason

    def _median(self, key: tuple, step: float, value: float) -> str | None:
        curve = self.curves.setdefault(key, {})
        curve.setdefault(step, value)
        if step < self.min_step or self.finished < _MEDIAN_STARTUP:
            return None
        others = self.at_step.get(step)
        if not others:
            return None
        import statistics
        best, median = min(curve.values()), statistics.median(others)
        if best != best or best > median:
            return (f"best {_num(self.sign * best)} worse than the median "
                    f"{_num(self.sign * median)} of {len(others)} finished runs at step {_num(step)}")
        return None

    def end(self, key: tuple, status: str, step: float | None) -> None:
        """A run ended: an ok one joins the median's runs and shows hyperband a run's length."""
        curve = self.curves.pop(key, None)
        if status != "ok":
            return
        if curve is not None:
            self.finished += 1
            for at, value in curve.items():
                self.at_step.setdefault(at, []).append(value)
        if self.kind == "hyperband" and self.max_step is None and step is not None:
            self._brackets(step)

    def forget(self, key: tuple) -> None:
        """A run starts again: what its earlier attempt reported no longer counts."""
        self.curves.pop(key, None)
        for rungs in self.brackets:
            rungs.forget(key)


def _check_prune(prune: str | None, *, metric: str | None, min_step: float,
                 max_step: float | None, eta: int, grace: float) -> None:
    """Refuse pruning settings that cannot work, before any run starts."""
    if prune is None:
        return
    if prune not in PRUNERS:
        raise ExpError(f"unknown --prune {prune!r} (valid schedulers are {_quoted(PRUNERS)})")
    if not isinstance(eta, int) or isinstance(eta, bool) or eta < 2:
        raise ExpError(f"--eta must be an integer >= 2, got {eta!r}")
    if not (_is_number(min_step) and math.isfinite(min_step) and min_step > 0):
        raise ExpError(f"--min-step must be a number > 0, got {min_step!r}")
    if max_step is not None and not (_is_number(max_step) and max_step > min_step):
        raise ExpError(f"--min-step {min_step!r} must be below --max-step {max_step!r}")
    _check_timeout(grace, "--prune-grace")


class _Attempt:
    """One attempt at a run that reported: its last step and metrics, a stop decision."""

    __slots__ = ("key", "token", "step", "metrics", "stop", "stop_step", "deadline", "ended",
                 "sources")

    def __init__(self, key: tuple, token: str):
        self.key, self.token = key, token
        self.step: float | None = None
        self.metrics: dict[str, Any] | None = None
        self.stop: str | None = None  # why the scheduler stopped it
        self.stop_step: float | None = None  # the step of the report it was stopped at
        self.deadline = 0.0  # monotonic: killed if it has not ended by then
        self.ended = False
        self.sources: set = set()  # where its reports came from: where a stop goes


class _Reports:
    """The driver's side of reports: journaled as they come, fed to the pruner, stop
    decisions sent back; a run that reported ends with its attempt, step and last
    metrics in its record (a pruned run's last metrics are its result)."""

    def __init__(self, journal: _Journal, pruner: _Pruner | None, metric: str | None, *,
                 grace: float = 60.0, progress: _Progress | None = None):
        import socket
        self.journal, self.pruner, self.metric, self.grace = journal, pruner, metric, grace
        self.progress = progress
        self.session = os.urandom(3).hex()  # attempt tokens of this driver never repeat
        self.attempts: dict[str, _Attempt] = {}  # token -> attempt
        self.latest: dict[tuple, str] = {}  # (id, run) -> its latest attempt's token
        self.send_stop: Callable[[Any, str], None] = self._reply  # (source, token); Dask: its own
        self.on_stopped_end: Callable[[str], None] | None = None  # Dask: clear its stop event
        self.metric_seen = False  # some report had the metric: one without it is no typo
        self.held: list[tuple[list, Any]] = []  # (batch, source) received, not yet handled
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir = None
        if sys.platform.startswith("linux"):
            self.address = f"@exp-{os.getpid()}-{os.urandom(6).hex()}"
        else:
            import tempfile
            self._dir = tempfile.mkdtemp(prefix="exp-")
            self.address = os.path.join(self._dir, "reports")
        self.sock.bind(_socket_address(self.address))
        self.sock.setblocking(False)
        # The kernel holds few datagrams per socket; reporters batch theirs, and a
        # large receive buffer keeps them from waiting on a busy driver.
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self, hold: bool = False) -> None:
        """Take every datagram waiting (never blocks); with ``hold``, keep them for
        ``release``."""
        while True:
            try:
                data, address = self.sock.recvfrom(1 << 20)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if data[:1] == _MSG_REPORTS:
                try:
                    batch = _loads(data[1:])
                except ValueError:
                    continue
                if hold:
                    self.held.append((batch, address))
                else:
                    self.handle(batch, address)

    def release(self, only: set[tuple] | None = None) -> None:
        """Handle the reports held back: all, or those of the runs ``only`` names."""
        keep = []
        for batch, source in self.held:
            mine = batch if only is None else [r for r in batch if _token_key(r[0]) in only]
            if mine:
                self.handle(mine, source)
            if len(mine) < len(batch):
                keep.append(([r for r in batch if _token_key(r[0]) not in only], source))
        self.held = keep

    def _reply(self, address: Any, token: str, kind: bytes = _MSG_STOP) -> None:
        try:
            self.sock.sendto(kind + token.encode(), address)
        except OSError:
            pass  # that process has gone

    def handle(self, batch: list, source: Any) -> None:
        """Reports ``[token, step, metrics, time]`` of runs, from ``source`` (where
        ``send_stop`` reaches the process that sent them)."""
        asked: set[str] = set()  # tokens whose reports wait for a verdict
        for entry in batch:
            token, step, metrics, when = entry[:4]
            if len(entry) > 4:
                asked.add(token)
            attempt = self.attempts.get(token)
            if attempt is None:
                try:
                    cid, run, _ = token.split(",", 2)
                    key = (int(cid), int(run))
                except ValueError:
                    continue
                attempt = self.attempts[token] = _Attempt(key, token)
                old = self.latest.get(key)
                if old is not None and old != token:
                    self.attempts.pop(old, None)
                    if self.pruner is not None:
                        self.pruner.forget(key)
                self.latest[key] = token
            key = attempt.key
            self.journal.write((f'{{"kind":"report","id":{key[0]},"run":{key[1]},'
                                f'"attempt":{_dumps(token)},"step":{_dumps(step)},'
                                f'"metrics":{_dumps(metrics)},"time":{when:.6f}}}\n').encode())
            if attempt.ended:
                continue  # a process of a run that has ended: journaled, decides nothing
            attempt.step, attempt.metrics = step, metrics
            attempt.sources.add(source)
            if self.progress is not None:
                self.progress.steps[key] = step
            if attempt.stop is not None:
                self.send_stop(source, token)  # stopped, and still reporting: tell it again
                continue
            value = metrics.get(self.metric) if self.metric else None
            if self.pruner is not None and self.metric not in metrics and not self.metric_seen:
                raise ExpError(f"--prune reads the metric {self.metric!r}, but run {key[0]} "
                               f"reported {_quoted(metrics)} (give --objective KEY, or "
                               f"report(step, value))")
            self.metric_seen = True
            if self.pruner is not None and _is_number(value):
                reason = self.pruner.report(key, step, float(value))
                if reason is not None:
                    attempt.stop, attempt.stop_step = reason, step
                    attempt.deadline = time.monotonic() + self.grace
                    for where in attempt.sources:
                        self.send_stop(where, token)
        for token in asked:  # a stop has gone already; the others go on
            attempt = self.attempts.get(token)
            if attempt is None or attempt.stop is None:
                self._reply(source, token, _MSG_GO)

    def verdict_from(self) -> float | None:
        """The first step the scheduler may stop a run at (reports from it on wait for
        a verdict); None without a scheduler."""
        return self.pruner.min_step if self.pruner is not None else None

    def ended(self, outcome: _Outcome) -> None:
        """A run ended: the pruner learns it; if it reported, its record says what."""
        key = (outcome.task.id, outcome.task.run)
        token = self.latest.pop(key, None)
        attempt = self.attempts.pop(token, None) if token else None
        if self.progress is not None:
            self.progress.steps.pop(key, None)
        if self.pruner is not None:
            self.pruner.end(key, outcome.status, attempt.step if attempt else None)
        if attempt is None:
            return
        attempt.ended = True
        self.attempts[token] = attempt  # late reports of its processes are recognised
        if attempt.stop is not None and self.on_stopped_end is not None:
            self.on_stopped_end(token)
        record = dict(outcome.record())
        record.update(attempt=token, step=attempt.step, reported=attempt.metrics)
        if outcome.status == "pruned":
            record["result"] = attempt.metrics
            if attempt.stop is not None:
                record["pruned_at"] = attempt.stop_step  # the decision; step: how far it got
                killed = record.get("error") or ""
                record["error"] = (f"pruned by {self.pruner.kind} at step "
                                   f"{_num(attempt.stop_step)}: {attempt.stop}"
                                   + (f"; {killed}" if killed.startswith("killed") else ""))
        outcome.line = (_dumps(record) + "\n").encode()
        outcome._record = record

    def overdue(self) -> list[tuple]:
        """Runs told to stop that have not ended within the grace period."""
        now = time.monotonic()
        late = [a for a in self.attempts.values()
                if a.stop is not None and not a.ended and now >= a.deadline]
        for a in late:
            a.deadline = now + self.grace  # at most once a grace period, whatever comes of it
        return [a.key for a in late]

    def next_deadline(self) -> float | None:
        waiting = [a.deadline for a in self.attempts.values() if a.stop is not None and not a.ended]
        return max(0.0, min(waiting) - time.monotonic()) if waiting else None

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            import shutil
            shutil.rmtree(self._dir, ignore_errors=True)


def _token_key(token: Any) -> tuple | None:
    """(id, run) of an attempt's token, "ID,RUN,…"; None if it is not one."""
    try:
        cid, run, _ = str(token).split(",", 2)
        return int(cid), int(run)
    except ValueError:
        return None


def _replay(path: Path, pruner: _Pruner | None, metric: str | None) -> None:
    """Tell a pruner a journal's reports and run ends, in their order (see above):
    the attempts that never ended (the driver was killed) are forgotten."""
    if pruner is None or not path.exists():
        return
    latest: dict[tuple, str] = {}
    ended: set[str] = set()
    for obj in _scan(path):
        if obj.get("kind") == "report":
            key, token = (obj["id"], obj["run"]), obj.get("attempt")
            if latest.get(key) != token:
                if key in latest:
                    pruner.forget(key)
                latest[key] = token
            value = obj["metrics"].get(metric) if isinstance(obj.get("metrics"), dict) else None
            if token not in ended and _is_number(value) and _is_number(obj.get("step")):
                pruner.report(key, obj["step"], float(value))
        elif _is_record(obj):
            key = (obj["id"], obj["run"])
            if obj.get("attempt") is not None:
                ended.add(obj["attempt"])
            pruner.end(key, obj["status"], obj.get("step"))
    for key, token in latest.items():
        if token not in ended:
            pruner.forget(key)


# ─── experiment loop ─────────────────────────────────────────────────────────


class _GridSource:
    """Configurations of a grid not yet done, in grid order (lazy); what ends goes to the
    ledger, the summary and the CSV being written."""

    batching = True  # short runs may be queued several per worker

    def __init__(self, tasks: Iterator[_Task], tables: _Tables):
        self._tasks, self.tables = tasks, tables

    def take(self, k: int) -> list[_Task]:
        return list(itertools.islice(self._tasks, k))

    def tell(self, outcome: _Outcome) -> None:
        self.tables.add(outcome.record())


def _drive(pool: Any, source: Any, journal: _Journal, progress: _Progress, reports: _Reports,
           *, cancel: bool = False) -> bool:
    """The loop shared by run and gopt: feed the pool, journal what ends.

    A source has ``batching`` (may runs queue up on a worker), ``take(k)`` (up
    to k new tasks, possibly none until results come back) and ``tell(outcome)``.
    Returns False when ``cancel`` stopped it at a run that was not ok.
    """
    while True:
        room = pool.room()
        if room:
            for task in source.take(room):
                pool.submit(task)
        if not pool.busy():
            return True  # nothing running and the source has nothing more to give
        due = progress.due
        outcomes = pool.wait(due)  # wakes for the progress line too
        for outcome in outcomes:
            reports.ended(outcome)
            journal.add(outcome)
        reports.release()  # the reports of runs still going, told after the ends before them
        journal.flush()  # once per wake-up; what is not flushed is rerun on resume
        for outcome in outcomes:  # every journaled run is told and counted, then --cancel
            source.tell(outcome)
            progress.add(outcome)
        if cancel and any(o.status not in ("ok", "pruned") for o in outcomes):
            progress.stopped_early = True
            return False
        progress.running = pool.running()
        progress.show()


def _header(command: str, setup: _Setup, **extra: Any) -> dict:
    """The journal's first line: what makes a later run the same experiment, and what
    reproduces it (the command line, where and with what it ran)."""
    space_dict, runnable = setup.space.to_dict(), setup.runnable
    return {"kind": "header", "journal": _JOURNAL_FORMAT, "exp": __version__,
            "command": command, "space": space_dict,
            "runnable": runnable.identity, "runnable_spec": runnable.spec,
            "runnable_hash": setup.runnable_hash,
            "fingerprint": _sha256(_dumps([space_dict, runnable.identity]).encode()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **_provenance(runnable), **extra}


def _provenance(runnable: _Runnable) -> dict[str, Any]:
    """The command line, folder, versions, machine and the runnable's git commit."""
    import platform
    import socket
    where = os.path.dirname(runnable.file) if runnable.file else os.getcwd()
    return {"argv": list(sys.argv), "cwd": os.getcwd(),
            "python": platform.python_version(), "platform": platform.platform(),
            "host": socket.gethostname(), "git": _git_state(where)}


def _git_state(folder: str) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git work tree holding ``folder``; None outside one or
    without git. Bounded: "dirty" is None when git cannot tell within 50 ms."""
    import shutil
    import subprocess
    if shutil.which("git") is None:
        return None
    try:
        head = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    try:
        status = subprocess.run(["git", "-C", folder, "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=0.05)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"commit": head.stdout.strip(), "dirty": dirty}


class _Setup(NamedTuple):
    """Everything a command resolves before any run starts."""

    space: ParamSpace
    runnable: _Runnable
    slots: list[str | None]
    out: Path
    name: str
    runnable_hash: str  # of the source as it is now; each record carries it
    cluster: dict[str, Any] | None = None  # address, scheduler_file, security; None: local
    workers: int | None = None

    @property
    def journal_path(self) -> Path:
        return self.out / f"{self.name}.jsonl"

    @property
    def logs(self) -> Path:
        return self.out / f"{self.name}.logs"


def _space_of(space: ParamSpace | str | os.PathLike, seed: int | None) -> ParamSpace:
    """The space a call names (a param file, or a ParamSpace), with ``seed`` if given."""
    if not isinstance(space, ParamSpace):
        space = ParamSpace(space, seed=seed)
    elif seed is not None:
        space.seed = seed
    if not space.params:
        raise ParamError("the space has no parameters", file=space.filename)
    return space


def _prepare(space: ParamSpace | str | os.PathLike, runnable: str, *, workers: int | None,
             gpus: Any, per_gpu: int, gpus_per_run: int, out: str | os.PathLike,
             name: str | None, seed: int | None, cluster: str | None = None,
             scheduler_file: str | None = None, cluster_security: str | None = None,
             gpu_max_util: float = GPU_MAX_UTIL, gpu_max_mem: float = GPU_MAX_MEM) -> _Setup:
    space = _space_of(space, seed)
    target = _parse_runnable(runnable)
    _check_signature(target, space.param_names())
    remote = None
    if cluster or scheduler_file:
        if gpus not in (None, "all", "free") or per_gpu != 1:
            raise ExpError("--gpus IDS and --per-gpu pin local GPUs; with --cluster use --gpu "
                           "or --gpus-per-run M (each run asks its Dask worker for M 'GPU')")
        if workers is not None and workers < 1:
            raise ExpError(f"workers must be >= 1, got {workers}")
        if gpus_per_run < 1:
            raise ExpError(f"--gpus-per-run must be >= 1, got {gpus_per_run}")
        slots: list[str | None] = []
        asks_gpus = gpus in ("all", "free") or gpus_per_run > 1
        remote = {"address": cluster, "scheduler_file": scheduler_file,
                  "security": cluster_security, "gpus_per_run": gpus_per_run if asks_gpus else None}
    else:
        slots = _slots(workers, gpus, per_gpu, gpus_per_run, max_util=gpu_max_util,
                       max_mem=gpu_max_mem)
    name = name or (Path(space.filename).stem if space.filename else "exp")
    _check_name(name)
    return _Setup(space, target, slots, Path(out), name, target.source_hash(), remote, workers)


#: Bytes of an experiment's name: what file names built from it add
#: (".NAME.csv.PID.tmp", "NAME_evaluations.png", "NAME.old-K.logs") stays
#: under the 255 bytes most file systems allow.
_MAX_NAME_BYTES = 200


def _check_name(name: str) -> None:
    try:
        size = len(os.fsencode(name))
    except UnicodeError:
        size = _MAX_NAME_BYTES + 1
    if not name or "/" in name or name.startswith(".") or size > _MAX_NAME_BYTES \
            or not name.isprintable():
        raise ExpError(f"--name must be a plain file name of at most {_MAX_NAME_BYTES} bytes, "
                       f"got {name!r}" + (f" ({size} bytes)" if size > _MAX_NAME_BYTES else ""))


class _Pruning(NamedTuple):
    """Early-stopping settings (see _Pruner); ``kind`` None: reports are only journaled."""

    kind: str | None = None
    metric: str | None = None
    maximize: bool = False
    min_step: float = 1
    max_step: float | None = None
    eta: int = 3
    grace: float = 60.0

    def check(self) -> _Pruning:
        """Refuse what cannot work; the metric is "value" (``report(step, value)``) when
        no --objective names another."""
        _check_prune(self.kind, metric=self.metric, min_step=self.min_step,
                     max_step=self.max_step, eta=self.eta, grace=self.grace)
        return self._replace(metric=self.metric or "value") if self.kind else self

    def pruner(self) -> _Pruner | None:
        if self.kind is None:
            return None
        return _Pruner(self.kind, maximize=self.maximize, min_step=self.min_step,
                       max_step=self.max_step, eta=self.eta)


def _run_pool(setup: _Setup, source: Any, journal: _Journal, *, timeout: float | None,
              cancel: bool, quiet: bool, total: int, label: str = "",
              progress: _Progress | None = None, load_timeout: float = 300.0,
              kuma: bool = False, progress_every: float | None = None,
              pruning: _Pruning = _Pruning()) -> tuple[bool, _Progress]:
    """Start workers, drive the source to its end, stop workers; Ctrl-C safe.

    ``progress`` may be given by a caller that adds to its line (``extra``).
    The pruner starts from what the journal's reports and runs tell it.
    """
    _check_timeout(timeout)
    _check_timeout(load_timeout, "--load-timeout")
    _check_timeout(progress_every, "--progress-every")
    _std_fds()
    try:
        setup.logs.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExpError(f"cannot create the log folder {setup.logs}: {e.strerror}") from None
    pool = _make_pool(setup, timeout=timeout, batching=source.batching,
                      load_timeout=load_timeout)
    progress = progress or _Progress(total, quiet=quiet, label=label, kuma=kuma,
                                     every=progress_every)
    pruner = pruning.check().pruner()
    _replay(journal.path, pruner, pruning.metric)
    reports = _Reports(journal, pruner, pruning.metric, grace=pruning.grace, progress=progress)
    pool.reports = reports
    completed = False
    try:
        if total:  # nothing to run: no worker is started (nor a cluster reached)
            pool.start()
        completed = _drive(pool, source, journal, progress, reports, cancel=cancel)
    finally:
        progress.startup = pool.startup_seconds
        try:
            reports.release()  # journaled, as every report is
        except (ExpError, OSError, ValueError):
            pass  # a typo in the metric is what ended the experiment
        # The journal is synced and closed while the workers exit (_finish closes
        # it too, for the paths that never reach this).
        pool.shutdown(kill=not completed, meanwhile=journal.close)
        progress.close()
        reports.close()
    return completed, progress


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM, and SIGHUP (the terminal closed) unless it is ignored (nohup), end an
    experiment as Ctrl-C does, at any moment of it: workers stopped, journal whole."""
    previous = {}
    if _is_main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            old = signal.getsignal(signum) if signum is not None else None
            if old is not None and old is not signal.SIG_IGN:
                previous[signum] = old
                signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _check_timeout(timeout: float | None, flag: str = "--timeout") -> None:
    if timeout is not None and not (_is_number(timeout) and 0 < timeout < math.inf):
        raise ExpError(f"{flag} must be a number of seconds > 0, got {timeout}")


def _make_pool(setup: _Setup, *, timeout: float | None, batching: bool,
               load_timeout: float) -> Any:
    if setup.cluster is not None:
        return _DaskPool(setup.runnable, logs=setup.logs, runnable_hash=setup.runnable_hash,
                         timeout=timeout, workers=setup.workers, batching=batching,
                         names=setup.space.param_names(), load_timeout=load_timeout,
                         **setup.cluster)
    return _LocalPool(setup.runnable.spec, setup.slots, logs=setup.logs,
                      runnable_hash=setup.runnable_hash, timeout=timeout, batching=batching,
                      names=setup.space.param_names(), load_timeout=load_timeout)


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise _Interrupted()


def _grid_tasks(grid: _GridIndex, ledger: _Ledger, retry_failed: bool,
                config_ids: list[int] | None) -> tuple[Iterator[_Task], int]:
    """The runs of the grid the ledger does not hold as done, lazily; and how many."""
    values, runs = grid.values, grid.runs
    done_codes = (1, 2) if retry_failed else tuple(_STATUS_NAME)
    if config_ids is None:
        names = list(values)
        configs: Iterable[tuple[int, dict]] = enumerate(
            dict(zip(names, combo)) for combo in _product(list(values.values())))
        total = grid.size * runs - sum(ledger.codes.count(c) for c in done_codes)
        if not total:
            return iter(()), 0
    else:
        for cid in config_ids:
            if not (isinstance(cid, int) and 0 <= cid < grid.size):
                raise ExpError(f"unknown config id {cid!r} (valid ids are 0..{grid.size - 1})")
        ids = list(dict.fromkeys(config_ids))
        configs = ((cid, _config(values, cid)) for cid in ids)
        total = sum(not ledger.done(cid * runs + r, retry_failed) for cid in ids
                    for r in range(runs))
    return _tasks(configs, runs, ledger, retry_failed), total


def _config(values: dict[str, list[Any]], cid: int) -> dict[str, Any]:
    """Configuration ``cid`` of grid values, computed directly (mixed radix)."""
    config, rest = {}, cid
    for name in reversed(values):
        rest, i = divmod(rest, len(values[name]))
        config[name] = values[name][i]
    return {name: config[name] for name in values}


def _tasks(configs: Iterable[tuple[int, dict]], runs: int, ledger: _Ledger,
           retry_failed: bool) -> Iterator[_Task]:
    """The runs of each configuration not done (lazy: a grid may be large)."""
    codes = ledger.codes
    skip = (1, 2) if retry_failed else (1, 2, 3, 4, 5)
    for cid, params in configs:
        base = cid * runs
        for r in range(1, runs + 1):
            if codes[base + r - 1] not in skip:
                yield _Task(cid, r, params if r == 1 else dict(params))


class Plan(NamedTuple):
    """What a grid experiment will run (``plan``; ``exp run --dry-run``)."""

    tasks: Iterator[dict[str, Any]]  # {"id", "run", parameters...}, lazily, in order
    total: int  # runs to do
    size: int  # configurations in the space
    kept: int  # finished runs of the journal that are in the space
    dropped: int  # finished runs of the journal no longer in the space
    seed: int | None  # the seed the random values come from


def plan(space: ParamSpace | str | os.PathLike, *, runs: int = 1, seed: int | None = None,
         out: str | os.PathLike = ".", name: str | None = None,
         config_ids: list[int] | None = None, retry_failed: bool = False,
         assume: dict[str, Any] | None = None) -> Plan:
    """The runs ``run_experiment`` would do with these arguments, reading the journal
    (if any) without changing it: the same values, the same seed."""
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ExpError(f"runs must be >= 1, got {runs}")
    space = _space_of(space, seed)
    name = name or (Path(space.filename).stem if space.filename else "exp")
    _check_name(name)
    path = Path(out) / f"{name}.jsonl"
    header, has_runs = _read_header(path) if path.is_file() else (None, False)
    if header is not None and header.get("command") == "run" and space.seed is None:
        space.seed = header.get("seed")
    if space.seed is None and any(s["type"] == "random" for s in space.params.values()):
        import random
        space.seed = random.SystemRandom().randrange(2 ** 32)
    grid = _GridIndex(space, runs, assume)
    ledger = _Ledger(grid)
    dropped = 0
    if has_runs and header is not None and header.get("command") == "run":
        dropped = _load_ledger(path, grid, _dumps(space.to_dict()), ledger)
    tasks, total = _grid_tasks(grid, ledger, retry_failed, config_ids)
    kept = sum(ledger.codes.count(c) for c in (1, 2))
    return Plan(({"id": t.id, "run": t.run, **t.params} for t in tasks), total, space.size,
                kept, dropped, space.seed)


def _load_ledger(path: Path, grid: _GridIndex, current: str, ledger: _Ledger,
                 tables: _Tables | None = None) -> int:
    """Read a journal's runs into the ledger (and the tables); returns how many of its
    finished runs are not runs of this experiment (no longer in its space)."""
    others, skipped = 0, [0]
    for slot, code, line in _grid_records(path, grid, current, skipped):
        if slot is None:
            others += 1
            continue
        ledger.set(slot, code)
        if tables is not None:
            tables.summary.add(slot, code, line=line, cid=slot // grid.runs)
    if skipped[0]:
        _log().warning("%s: skipped %d unreadable line(s) (a torn last line is normal after a "
                       "crash)", path, skipped[0])
    return others


def run_experiment(space: ParamSpace | str | os.PathLike, runnable: str, *,
                   workers: int | None = None, runs: int = 1, gpus: Any = None,
                   per_gpu: int = 1, gpus_per_run: int = 1, timeout: float | None = None,
                   out: str | os.PathLike = ".", name: str | None = None,
                   seed: int | None = None, fresh: bool = False, retry_failed: bool = False,
                   cancel: bool = False, config_ids: list[int] | None = None,
                   quiet: bool = False, cluster: str | None = None,
                   scheduler_file: str | None = None, cluster_security: str | None = None,
                   load_timeout: float = 300.0, gpu_max_util: float = GPU_MAX_UTIL,
                   gpu_max_mem: float = GPU_MAX_MEM, kuma: bool = False,
                   progress_every: float | None = None, prune: str | None = None,
                   objective: str | None = None, maximize: bool = False,
                   min_step: float = 1, max_step: float | None = None, eta: int = 3,
                   prune_grace: float = 60.0, assume: dict[str, Any] | None = None,
                   records: bool = True, report: bool = False) -> Records:
    """Run every configuration of ``space`` (``runs`` times) and return the records.

    Results go to ``OUT/NAME.jsonl`` as each run ends; calling again with the
    same arguments resumes: runs already ``ok`` (and, unless ``retry_failed``,
    those that failed) are not run again. ``KeyboardInterrupt`` leaves the
    journal whole. Raises ``ExpError`` for bad input before any run starts.
    ``cluster="tcp://HOST:PORT"`` (or ``scheduler_file``) sends the runs to a
    Dask distributed scheduler instead of local worker processes. ``prune``
    (``"median"``, ``"asha"``, ``"hyperband"``) stops runs whose reported
    ``objective`` is losing (see ``report``); pruned runs are not run again.
    A run is its configuration and repeat: run again with a space that grew
    (more values, wider ranges, more runs), it keeps every finished run the new
    space holds and runs what is missing; ``assume={"name": value}`` says what
    value of a parameter new to the space the earlier runs had. With
    ``records=False`` the records are not read back (an experiment of millions
    of runs: read it with ``results`` or ``dataframe``); ``complete`` still says.
    ``report``: write the HTML report (``NAME.html``, gopt extra) at the end, and
    when interrupted.
    """
    with _interruptible():  # SIGTERM and SIGHUP too, from the first line on
        if report:
            _gopt_module()  # the extra is there, or say so before any run
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
            raise ExpError(f"runs must be >= 1, got {runs}")
        _check_timeout(timeout)
        pruning = _Pruning(prune, objective, maximize, min_step, max_step, eta,
                           prune_grace).check()
        setup = _prepare(space, runnable, workers=workers, gpus=gpus, per_gpu=per_gpu,
                         gpus_per_run=gpus_per_run, out=out, name=name, seed=seed, cluster=cluster,
                         scheduler_file=scheduler_file, cluster_security=cluster_security,
                         gpu_max_util=gpu_max_util, gpu_max_mem=gpu_max_mem)
        journal, grid = _open_grid(setup, runs=runs, fresh=fresh, assume=assume,
                                   goal={"objective": objective, "maximize": maximize}
                                   if objective is not None else {})
        tables = _Tables(setup, grid, objective=objective, maximize=maximize)
        tables.keep_records = bool(records)  # what the call returns anyway
        completed, progress = False, None
        try:
            tasks, total = _resume(journal, tables, retry_failed, config_ids)
            completed, progress = _run_pool(
                setup, _GridSource(tasks, tables), journal, timeout=timeout, cancel=cancel,
                quiet=quiet, total=total, load_timeout=load_timeout, kuma=kuma,
                progress_every=progress_every, pruning=pruning)
        except BaseException:
            _finish(setup, journal, None, tables, quiet=True, failed=True)
            if report:
                _report_after(journal, quiet)
            raise
        records = _finish(setup, journal, progress, tables, quiet=quiet, want=records,
                          report=report)
        records.complete = completed and tables.complete(config_ids)
        return records


def _open_grid(setup: _Setup, *, runs: int, fresh: bool, assume: dict[str, Any] | None,
               goal: dict[str, Any] | None = None) -> tuple[_Journal, _GridIndex]:
    """The grid experiment's journal (its random values from the recorded seed; the
    objective, when one is named, for exp results and exp report to rank by)."""
    space = setup.space
    drawn = space.seed is None and any(s["type"] == "random" for s in space.params.values())
    if drawn:  # recorded in the journal; a resume without --seed takes the recorded one
        import random
        space.seed = random.SystemRandom().randrange(2 ** 32)
    header = _header("run", setup, seed=space.seed, runs=runs, **(goal or {}))
    journal = _Journal(setup.journal_path, header, fresh=fresh,
                       inherit=("seed",) if drawn else (), grow=True, assume=assume)
    space.seed = journal.header.get("seed", space.seed)
    return journal, _GridIndex(space, runs, assume)


def _resume(journal: _Journal, tables: _Tables, retry_failed: bool,
            config_ids: list[int] | None) -> tuple[Iterator[_Task], int]:
    """Take in what the journal holds; the runs still to do, and how many."""
    tables.journal_mtime = journal.mtime
    tables.changed = journal.change is not None
    if journal.has_runs:
        others = _load_ledger(journal.path, tables.grid, tables.current(), tables.ledger, tables)
        if others:
            _log().warning("%s: %d finished run(s) are not runs of this experiment (no longer "
                           "in the space, or beyond --runs): kept in the journal, left out of "
                           "the summary and the table", journal.path, others)
    else:
        tables.start_csv()
    journal.record_change()
    return _grid_tasks(tables.grid, tables.ledger, retry_failed, config_ids)


class Records(list):
    """The records of an experiment, one per run (its latest), in (id, run) order, with
    the ids of the current space; ``complete`` is True when every run the call
    asked for ended ``ok`` or ``pruned``, ``journal`` is where they are."""

    complete: bool = False
    journal: Path | None = None

    @classmethod
    def _read(cls, journal: Path, grid: _GridIndex | None = None,
              current: str | None = None) -> Records:
        if grid is None:
            records = cls(read_journal(journal))
        else:
            latest: dict[int, dict] = {}
            for slot, _, line in _grid_records(journal, grid, current):
                if slot is not None:
                    record = _loads(line)
                    record["id"] = slot // grid.runs  # its id in the current space
                    latest[slot] = record
            records = cls(latest[k] for k in sorted(latest))
        records.journal = journal
        return records


class _Tables:
    """A grid experiment's ledger, summary and CSV, fed with each run's record as it ends."""

    def __init__(self, setup: _Setup, grid: _GridIndex, *, objective: str | None,
                 maximize: bool):
        self.setup, self.grid = setup, grid
        self.ledger = _Ledger(grid)
        self.summary = _Summary(objective=objective, maximize=maximize, ledger=self.ledger)
        self.csv: _CsvFile | None = None  # written as runs end: in place at the end
        self._csv_ok = False  # the journal held no run: the CSV can be written as they end
        self.changed = False  # a run ended, or the space changed, since the journal was opened
        self.journal_mtime = 0.0  # when the journal was last written before this session
        self.keep_records = False  # the caller wants the records: keep them as they come
        self.kept: dict[int, dict] | None = None  # by slot, when the journal started empty

    def start_csv(self) -> None:
        """The journal holds no run: the CSV is written as runs end (and the records,
        when wanted, are the ones that ended, not read back from the journal)."""
        self._csv_ok = True
        if self.keep_records:
            self.kept = {}

    def add(self, record: dict[str, Any]) -> None:
        self.changed = True
        slot = self.grid.slot(record["id"], record["run"])
        if slot is None:
            return
        code = _CODE[record["status"].encode()]
        if self.kept is not None:
            self.kept[slot] = record
        if self.ledger.set(slot, code):
            self._drop_csv()  # a run journaled twice: the CSV is written from the journal
        self.summary.add(slot, code, record, cid=record["id"])
        if self._csv_ok:
            if self.csv is None:
                keys = list(record["result"]) if isinstance(record["result"], dict) else None
                try:
                    self.csv = _CsvFile(self._csv_path(), _columns(self.grid.names, keys),
                                        self.grid.names, keys)
                except OSError:
                    self._csv_ok = False
                    return
            if not self.csv.write_record(record):  # a column the first run did not have
                self._drop_csv()

    def _csv_path(self) -> Path:
        return self.setup.out / f"{self.setup.name}.csv"

    def _drop_csv(self) -> None:
        self._csv_ok = False
        if self.csv is not None:
            self.csv.abandon()
            self.csv = None

    def write_csv(self, journal: Path, *, quick: bool) -> bool:
        """The CSV in place: the one written as runs ended, or one from the journal.
        ``quick`` (interrupted): not from a journal too large to read in a second."""
        if self.csv is not None:
            self.csv.done()
            return True
        if self._csv_ok:  # no run ended: a CSV of no runs
            _write_rows(self._csv_path(), [], self.grid.names)
            return True
        if quick and journal.stat().st_size > _QUICK_BYTES:
            return False
        if not self.changed and self._csv_path().exists() and \
                self._csv_path().stat().st_mtime >= self.journal_mtime:
            return True  # nothing new since the CSV was written: it stands
        _grid_csv(journal, self._csv_path(), self.grid, self.current())
        return True

    def current(self) -> str:
        """The space as it stands, as JSON (how records are placed in it)."""
        return _dumps(self.setup.space.to_dict())

    def complete(self, config_ids: list[int] | None) -> bool:
        """Did every run asked for end ok or pruned?"""
        codes, runs = self.ledger.codes, self.grid.runs
        if config_ids is None:
            return codes.count(1) + codes.count(2) == len(codes)
        return all(codes[cid * runs + r] in (1, 2) for cid in set(config_ids)
                   for r in range(runs))


#: Bytes of journal an interrupted experiment still rewrites its CSV from (about a
#: second's reading); past it, the next run or ``exp results --csv`` writes the CSV.
_QUICK_BYTES = 20 << 20


def _grid_csv(journal: Path, path: Path, grid: _GridIndex, current: str) -> Path:
    """The CSV of a grid journal, streamed: one row per run of the current space."""
    def source() -> Iterator[tuple[int, bytes]]:
        return ((slot, line) for slot, _, line in _grid_records(journal, grid, current)
                if slot is not None)

    result_keys: dict[str, None] = {}
    reported: dict[str, None] = {}
    scalar = False
    for _, line in source():  # the columns: every result key and reported metric
        result = _result_of(line)
        if isinstance(result, dict):
            result_keys.update(dict.fromkeys(result))
        else:
            scalar = scalar or result is not None or not result_keys
        if b'"reported":' in line:
            record = _loads(line)
            if record.get("result") is None and isinstance(record.get("reported"), dict):
                reported.update(dict.fromkeys(record["reported"]))
    columns = _columns(grid.names, list(result_keys) if result_keys else None, reported)
    if result_keys and scalar:
        columns.insert(columns.index("seconds"), "result")
    out = _CsvFile(path, columns)
    try:
        for slot, line in _stream_latest(source, grid.size * grid.runs):
            record = _loads(line)
            record["id"] = slot // grid.runs
            out.write(_row(record, grid.names))
    except BaseException:
        out.abandon()
        raise
    return out.done()


def _finish(setup: _Setup, journal: _Journal, progress: _Progress | None,
            tables: _Tables | None, *, quiet: bool, failed: bool = False,
            objective: str | None = None, maximize: bool = False,
            want: bool = True, rank: bool = True, report: bool = False) -> Records:
    """Close the journal, put the CSV in place, print the summary; the records.

    ``failed``: the call is ending on an exception (Ctrl-C included): a journal no
    run reached is removed, and a CSV that would take long to write is left to
    the next run. Without ``tables`` (gopt), the summary and CSV come from the
    journal (ranked by ``objective``, unless not ``rank``). ``want``: read the
    records back (a grid's are read only when wanted: the command line does not,
    at any size). ``report``: write the HTML report beside the journal.
    """
    journal.close()
    if failed and journal.discard():  # it failed before any run ended: nothing to keep
        try:
            setup.logs.rmdir()
        except OSError:
            pass
        return Records()
    csv_path = setup.out / f"{setup.name}.csv"
    written = True
    try:
        if tables is not None:
            written = tables.write_csv(journal.path, quick=failed)
        else:
            write_csv(read_journal(journal.path), csv_path)
    except OSError as e:
        _log().warning("cannot write %s.csv: %s", setup.name, e.strerror)
    if not written:
        _log().warning("the table %s is left for the next run, or exp results %s --csv %s, "
                       "to write (the journal is large)", csv_path, journal.path, csv_path)
    try:
        if not any(setup.logs.iterdir()):
            setup.logs.rmdir()
    except OSError:
        pass
    if tables is not None:
        summary = tables.summary
        if not want or failed:
            records = Records()
        elif tables.kept is not None:  # a fresh journal: the runs that ended are its records
            records = Records(tables.kept[k] for k in sorted(tables.kept))
        else:
            records = Records._read(journal.path, tables.grid, tables.current())
    else:  # an interrupted search is not read back: Ctrl-C ends at once at any size
        records = Records._read(journal.path) if not failed else Records()
        summary = _Summary(objective=objective, maximize=maximize, top=5 if rank else 0)
        if not quiet:
            for r in records:
                summary.add((r["id"], r["run"]), _CODE[r["status"].encode()], r)
    records.journal = journal.path
    report_path = _report_after(journal, quiet=True) if report else None
    if not quiet:
        text = summary.text(varying=_varying(setup.space) if tables is not None else None,
                            progress=progress, journal=setup.journal_path, report=report_path)
        if progress is not None and not progress.total:
            text = ("nothing to run: every run is already in the journal (--retry-failed reruns "
                    "those not ok, --fresh starts over, --name starts another)\n" + text)
        if progress is not None and progress.stopped_early:
            text += (f"\nstopped at the first run that was not ok (--cancel): "
                     f"{max(0, progress.total - progress.done)} run(s) left unrun")
        try:
            print(text, file=sys.stderr)
        except (OSError, ValueError):
            pass
    return records


def _varying(space: ParamSpace) -> list[str]:
    """The parameters that take more than one value."""
    return [n for n, spec in space.params.items() if _count(spec) > 1]


# ─── progress and summary ────────────────────────────────────────────────────


class _Progress:
    """The progress line: live on a terminal (redrawn every second, whatever ends),
    a plain line every ``every`` seconds elsewhere (10 by default), the last one once.

    ``exp 0:12:03 | 37/120 done: 35 ok, 2 not ok | 4 running | 3.1/min | ETA 27m``,
    then what the command adds (gopt: the best value) and, when runs report,
    the latest step of the runs in flight. ``kuma`` draws exp 0.5's bear above
    it on a terminal.
    """

    def __init__(self, total: int, *, quiet: bool = False, label: str = "",
                 every: float | None = None, kuma: bool = False):
        self.total, self.quiet, self.label = total, quiet, label
        self.counts = dict.fromkeys(STATUSES, 0)
        self.done = 0
        self.startup = 0.0
        self.running = 0  # runs in flight, as the pool last said
        self.steps: dict[tuple[int, int], float] = {}  # latest step of each reporting run
        self.extra = ""  # set by gopt: best value, optimiser time
        self.stopped_early = False  # --cancel stopped the experiment
        self._t0 = time.monotonic()
        self._tty = _isatty(sys.stderr)
        self._every = every if every is not None else 1.0 if self._tty else 10.0
        self._next = self._t0 + (0.0 if self._tty else self._every)
        self._kuma = kuma and self._tty
        self._drawn = 0  # lines of the bear drawn above the line (to move back over)
        self._printed: tuple | None = None  # what the last line said (not to repeat it)

    def add(self, outcome: _Outcome) -> None:
        self.done += 1
        self.counts[outcome.status] += 1
        self.steps.pop((outcome.task.id, outcome.task.run), None)

    @property
    def due(self) -> float | None:
        """Seconds until the line is due again (None when quiet): the loop wakes for it."""
        return None if self.quiet else max(0.0, self._next - time.monotonic())

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        bad = self.done - self.counts["ok"] - self.counts.get("pruned", 0)
        parts = [f"exp {self.label}{_clock(elapsed)}",
                 f"{self.done}/{self.total} done: {self.counts['ok']} ok"
                 + (f", {self.counts['pruned']} pruned" if self.counts.get("pruned") else "")
                 + f", {bad} not ok"]
        if self.running:
            parts.append(f"{self.running} running")
        left = max(0, self.total - self.done)
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            parts.append(_rate(rate))
            if left:
                parts.append(f"ETA {_duration(left / rate)}")
        if self.steps:
            latest = sorted(self.steps.items())[:6]
            parts.append("steps " + ", ".join(f"{_num(step)}" for _, step in latest)
                         + (" …" if len(self.steps) > 6 else ""))
        return " | ".join(parts) + self.extra

    def show(self, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self._every
        if self._tty:
            self._write(self._bear() + "\r\x1b[K" + self.line())
        else:
            self._printed = (self.done, self.running, len(self.steps), self.extra)
            self._write(self.line() + "\n")

    def _bear(self) -> str:
        """exp 0.5's kuma-san, walking right as the runs get done (terminal only)."""
        if not self._kuma:
            return ""
        import shutil
        width = shutil.get_terminal_size((80, 24)).columns
        pad = " " * int((self.done / max(1, self.total)) * max(0, width - 24))
        counter = f"{self.done}/{self.total}".center(15)
        art = ["    _______________", "   |               |", "   |  KUMA-SAN IS  |",
               "   |  OPTIMIZING!  |" if self.label.startswith("gopt") else
               "   |   RUNNING!    |", f"   |{counter}|", "   |＿＿＿_＿＿＿＿|",
               " ( )  ( )||", " ( •(ｴ)•)|| ", " / 　    づ"]
        up = f"\r\x1b[{self._drawn}A" if self._drawn else ""
        self._drawn = len(art)
        return up + "".join(f"\r\x1b[K{pad}{line}\n" for line in art)

    def _write(self, text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):  # stderr closed (| head): runs go on
            self.quiet = True

    def close(self) -> None:
        """The last line, once; on a terminal, the line stays above what follows."""
        if self.quiet or not self.done:
            return
        self.running = 0
        if self._tty:
            self.show(force=True)
            self._write("\n")
        elif self._printed != (self.done, 0, len(self.steps), self.extra):
            self.show(force=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0


def _clock(seconds: float) -> str:
    """Elapsed time as H:MM:SS."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _duration(seconds: float) -> str:
    """A span as a person reads it: 45s, 12m 5s, 1h 23m, 2d 4h."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {s}s" if s and minutes < 10 else f"{minutes}m"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {m}m" if m else f"{hours}h"
    days, h = divmod(hours, 24)
    return f"{days}d {h}h" if h else f"{days}d"


def _rate(per_second: float) -> str:
    """Runs per second, minute or hour: whichever reads as a number above 1."""
    for unit, scale in (("s", 1), ("min", 60), ("h", 3600)):
        if per_second * scale >= 1 or unit == "h":
            value = per_second * scale
            return f"{value:.3g}/{unit}" if value < 100 else f"{value:,.0f}/{unit}"
    return ""


def _num(x: Any) -> str:
    """A number with the digits that matter (6 significant), as tables show them."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if x != x or x in (math.inf, -math.inf):
        return {math.inf: "inf", -math.inf: "-inf"}.get(x, "nan")
    return f"{x:.6g}"


def _isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):  # None (launched with 2>&-), or closed
        return False


def _score(result: Any, objective: str | None) -> float | None:
    """The number a result is ranked by: the result, or its ``objective`` key."""
    if objective is not None and isinstance(result, dict):
        value = result.get(objective)
    elif objective not in (None, "value"):
        return None
    else:
        value = result
    if _is_number(value) and math.isfinite(value):
        return float(value)
    return None


# ─── tables: the CSV, the summary, exp results ───────────────────────────────
#
# Every table is made from the journal as it streams by, or from the records
# as runs end, never from all records in memory: a summary keeps counts (in the
# ledger), the first runs not ok and the best K; the CSV is written row by row.

#: Columns of a run's own fields in the CSV and tables, apart from its parameters
#: (``param.NAME``), its result (``result``, or ``result.KEY`` for a dict) and the
#: last metrics it reported when it has no result of its own (``reported.KEY``).
_RUN_FIELDS = ("seconds", "step", "error", "start", "end", "worker", "gpu")


def _cell(value: Any) -> Any:
    """A value as one cell: numbers, text and booleans as they are, others as JSON."""
    if value is None or type(value) in (int, float, str, bool):
        return value
    return _dumps(value)


def _row(record: dict[str, Any], param_names: Iterable[str]) -> dict[str, Any]:
    """One run as flat, distinct columns (see _RUN_FIELDS)."""
    row = {"id": record["id"], "run": record["run"], "status": record["status"]}
    params = record.get("params") or {}
    for name in param_names:
        row["param." + name] = _cell(params.get(name))
    result = record.get("result")
    if isinstance(result, dict):
        for key, value in result.items():
            row[f"result.{key}"] = _cell(value)
    else:
        row["result"] = _cell(result)
    error = record.get("error")
    row.update(seconds=record.get("seconds"), step=record.get("step"),
               error=error.strip().splitlines()[-1] if error else None,
               start=record.get("start"), end=record.get("end"),
               worker=record.get("worker"), gpu=record.get("gpu"))
    reported = record.get("reported")
    if isinstance(reported, dict) and result is None:
        for key, value in reported.items():
            row[f"reported.{key}"] = _cell(value)
    return row


def _columns(param_names: Iterable[str], result_keys: Iterable[str] | None,
             reported_keys: Iterable[str] = ()) -> list[str]:
    """The CSV's columns; ``result_keys`` None for a scalar result column."""
    results = ["result"] if result_keys is None else [f"result.{k}" for k in result_keys]
    return ["id", "run", "status", *(f"param.{n}" for n in param_names), *results,
            *_RUN_FIELDS, *(f"reported.{k}" for k in reported_keys)]


class _CsvFile:
    """A CSV written row by row to a temporary file, in place once whole."""

    def __init__(self, path: Path, columns: list[str], names: Iterable[str] = (),
                 keys: list[str] | None = None):
        import csv
        self.path, self.columns = path, columns
        self.names, self.keys = list(names), keys  # the parameters and result keys it has
        self._keyset = set(keys) if keys is not None else None
        self._columnset = set(columns)
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._f = open(self.tmp, "w", newline="", encoding="utf-8", errors="backslashreplace")
        self._writer = csv.writer(self._f)
        self._writer.writerow(columns)

    def write(self, row: dict[str, Any]) -> bool:
        """Write a row; False when it has a column the file has not (it is then unusable)."""
        columns = self._columnset
        if any(k not in columns and v is not None for k, v in row.items()):
            return False  # a value with no column (an empty one needs none)
        self._writer.writerow([_csv_text(row.get(c)) for c in self.columns])
        return True

    def write_record(self, record: dict[str, Any]) -> bool:
        """write(_row(record)) without the dict, for the common record: a dict result
        with the file's keys (or a scalar one), nothing reported in place of one."""
        result = record.get("result")
        if type(result) is dict:
            if self._keyset is None or result.keys() != self._keyset:
                return self.write(_row(record, self.names))
            results = [_cell(result[k]) for k in self.keys]
        elif self._keyset is not None or (result is None and record.get("reported")):
            return self.write(_row(record, self.names))
        else:
            results = [_cell(result)]
        params, error = record.get("params") or {}, record.get("error")
        cells = [record["id"], record["run"], record["status"],
                 *[_cell(params.get(n)) for n in self.names], *results,
                 record.get("seconds"), record.get("step"),
                 error.strip().splitlines()[-1] if error else None, record.get("start"),
                 record.get("end"), record.get("worker"), record.get("gpu")]
        self._writer.writerow(["" if v is None else ("true" if v else "false")
                               if type(v) is bool else v for v in cells])
        return True

    def done(self) -> Path:
        self._f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abandon(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _csv_text(value: Any) -> Any:
    return "" if value is None else ("true" if value else "false") if type(value) is bool \
        else value


def write_csv(records: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """One flat row per record, with distinct columns (see README, "The CSV")."""
    records = list(records)
    names = list(dict.fromkeys(n for r in records for n in (r.get("params") or {})))
    return _write_rows(Path(path), [_row(r, names) for r in records], names)


def _write_rows(path: Path, rows: list[dict], names: list[str]) -> Path:
    scalar = all("result" in row for row in rows)
    keys = None if scalar else list(dict.fromkeys(
        k[7:] for row in rows for k in row if k.startswith("result.")))
    reported = list(dict.fromkeys(k[9:] for row in rows for k in row if k.startswith("reported.")))
    columns = _columns(names, keys, reported)
    if not scalar and any("result" in row for row in rows):
        columns.insert(columns.index("seconds"), "result")
    out = _CsvFile(path, columns)
    try:
        for row in rows:
            out.write(row)
    except BaseException:
        out.abandon()
        raise
    return out.done()


def _stream_latest(source: Callable[[], Iterable[tuple[Any, bytes]]],
                   size: int | None) -> Iterator[tuple[Any, bytes]]:
    """(key, line) of each key's last record, in journal order, from a source read
    twice: the first pass finds the keys journaled more than once (retries), the
    second yields each key's last line. Memory: a bit per slot of a grid (``size``),
    or a set of keys, plus the repeated keys."""
    seen: Any = bytearray((size + 7) // 8) if size is not None else set()
    last: dict[Any, int] = {}
    for n, (key, _) in enumerate(source()):
        if size is not None:
            byte, bit = divmod(key, 8)
            if seen[byte] >> bit & 1:
                last[key] = n
            else:
                seen[byte] |= 1 << bit
        elif key in seen:
            last[key] = n
        else:
            seen.add(key)
    for n, (key, line) in enumerate(source()):
        if key not in last or last[key] == n:
            yield key, line


class _Summary:
    """What the end of a run prints, gathered as records go by, in flat memory:
    counts (from a ledger, or by key), the first runs not ok, the best K."""

    KEEP_BAD = 10

    def __init__(self, *, objective: str | None = None, maximize: bool = False, top: int = 5,
                 ledger: _Ledger | None = None):
        self.objective, self.maximize, self.top, self.ledger = objective, maximize, top, ledger
        self.codes: dict[Any, int] = {}  # without a ledger: key -> latest status
        self.bad: dict[Any, tuple[str, int, int, str]] = {}  # key -> status, id, run, error
        self.best: list[tuple] = []  # heap of (-rank, seq, key, id, run, params)
        self.in_best: dict[Any, tuple] = {}
        self.seq = 0
        self.kinds: dict[str, int] = {}  # what ok runs returned: number, dict, none, other
        self.keys: dict[str, None] = {}  # the keys of dict results (the first 50)

    def add(self, key: Any, code: int, record: dict | None = None, line: bytes | None = None,
            cid: int | None = None) -> None:
        """A run's record (parsed, or its line with its status code): ``key`` is its
        slot (or its (id, run)); ``cid`` its id in the current space."""
        if self.ledger is None:
            old = self.codes.get(key, 0)
            self.codes[key] = code
        else:
            old = -1  # the ledger already has it
        if old and key in self.bad:
            del self.bad[key]
        entry = self.in_best.pop(key, None)
        if entry is not None:
            entry[2] = None  # superseded: dropped when the heap is read
        if code == 2:  # pruned: neither ranked nor a failure
            return
        if code == 1:  # a hot path when a large journal is read: few calls, few lookups
            result = record["result"] if record is not None else _result_of(line)
            t = type(result)
            if t is int or t is float:
                kind = "number"
                score = result if self.objective in (None, "value") and result == result \
                    and result not in (math.inf, -math.inf) else None
            else:
                kind = "dict" if t is dict else "none" if result is None else "other"
                if kind == "dict" and len(self.keys) < 50:
                    self.keys.update(dict.fromkeys(result))
                score = _score(result, self.objective)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if score is not None and self.top:
                rank = score if self.maximize else -score
                if len(self.best) < self.top * 2 or rank > self.best[0][0]:
                    self._rank(key, score, record, line, cid)
            return
        status = _STATUS_NAME[code]
        if len(self.bad) < self.KEEP_BAD:
            record = record if record is not None else _loads(line)
            error = (record.get("error") or "").strip().splitlines()
            self.bad[key] = (status, cid if cid is not None else record["id"], record["run"],
                             error[-1] if error else "")

    def _rank(self, key: Any, score: float, record: dict | None, line: bytes | None,
              cid: int | None) -> None:
        import heapq
        rank = score if self.maximize else -score  # the heap's smallest is the worst kept
        self.seq += 1
        if len(self.best) >= self.top * 2 and rank <= self.best[0][0]:
            return
        record = record if record is not None else _loads(line)
        entry = [rank, self.seq, key, cid if cid is not None else record["id"], record["run"],
                 record.get("params") or {}]
        self.in_best[key] = entry
        heapq.heappush(self.best, entry)
        while len(self.best) > self.top * 2:  # room for entries a later record supersedes
            dropped = heapq.heappop(self.best)
            if dropped[2] is not None:
                self.in_best.pop(dropped[2], None)

    def counts(self) -> dict[str, int]:
        if self.ledger is not None:
            return self.ledger.counts()
        counts = dict.fromkeys(STATUSES, 0)
        for code in self.codes.values():
            counts[_STATUS_NAME[code]] += 1
        return counts

    def ranked(self) -> list[tuple[float, int, int, dict]]:
        """The best runs, best first: (score, id, run, params)."""
        live = [e for e in self.best if e[2] is not None]
        live.sort(key=lambda e: (-e[0], e[1]))
        return [(e[0] if self.maximize else -e[0], e[3], e[4], e[5]) for e in live[:self.top]]

    def text(self, *, varying: Iterable[str] | None = None, progress: _Progress | None = None,
             journal: Path | None = None, table: Path | None = None,
             report: Path | None = None) -> str:
        counts = self.counts()
        total = sum(counts.values())
        lines = [f"{total} run(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                 if total else "no runs recorded"]
        if progress is not None and progress.done:
            lines[0] += (f" ({progress.done} this time in {_duration(progress.elapsed)}, "
                         f"workers started in {progress.startup:.2f}s)")
        bad = counts["failed"] + counts["timeout"] + counts["crashed"]
        for status, cid, run, error in list(self.bad.values())[:self.KEEP_BAD]:
            lines.append(f"  {status} id {cid} run {run}: {error}")
        if bad > len(self.bad):
            lines.append(f"  … and {bad - len(self.bad)} more not ok")
        best = self.ranked()
        ok = counts["ok"]
        if best:
            what = f"{'max' if self.maximize else 'min'}{' ' + self.objective if self.objective else ''}"
            lines.append(f"best {len(best)} ({what}):")
            names = list(varying) if varying is not None else None
            for score, cid, run, params in best:
                shown = {k: v for k, v in params.items() if names is None or k in names}
                lines.append(f"  {_num(score):<12} id {cid} run {run}  "
                             + " ".join(f"{k}={_num(v)}" for k, v in shown.items()))
        elif not self.top:
            pass  # not ranked here (a search of several objectives prints its front)
        elif ok and self.kinds.get("dict") and self.objective is None:
            lines.append(f"results are dicts (keys {_quoted(self.keys)}): rank them with "
                         "--objective KEY")
        elif ok and self.objective is not None:
            lines.append(f"no ok run has a number under --objective {self.objective!r}"
                         + (f" (result keys: {_quoted(self.keys)})" if self.keys
                            else " (results are not dicts)"))
        elif ok:
            returned = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
            lines.append(f"results are not numbers ({returned}): nothing to rank")
        if journal is not None:
            stem = journal.name.removesuffix(".jsonl")
            logs = journal.with_name(stem + ".logs")
            table = table or journal.with_name(stem + ".csv")
            lines.append(f"journal {journal}"
                         + (f", table {table}" if Path(table).exists() else "")
                         + (f", logs {logs}/" if logs.is_dir() else "")
                         + (f", report {report}" if report else ""))
        return "\n".join(lines)


def _report_after(journal: _Journal, quiet: bool) -> Path | None:
    """Write the HTML report of a journal that has runs (--report); its path, or None
    with a warning: a report that cannot be drawn must not lose the experiment."""
    if not journal.path.exists():
        return None
    try:
        path = _gopt_module().report(journal.path)
    except Exception as e:  # noqa: BLE001
        _log().warning("cannot write the report: %s", e)
        return None
    if not quiet:
        print(f"report {path}", file=sys.stderr)
    return path


def summarize(records: Iterable[dict[str, Any]], *, journal: str | os.PathLike | None = None,
              top: int = 5, objective: str | None = None, maximize: bool = False,
              progress: _Progress | None = None, table: str | os.PathLike | None = None) -> str:
    """A readable summary of records: counts by status, runs not ok, the best."""
    summary = _Summary(objective=objective, maximize=maximize, top=top)
    for r in records:
        summary.add((r["id"], r["run"]), _CODE[r["status"].encode()], r)
    return summary.text(progress=progress, journal=Path(journal) if journal else None,
                        table=Path(table) if table else None)


class _Experiment(NamedTuple):
    """What a journal says of its experiment: its header, its space as it stands."""

    path: Path
    header: dict[str, Any]
    space: ParamSpace  # as it stands (its latest change of space), with its seed
    runs: int
    grid: _GridIndex | None  # None for a search (gopt): records keep their ids
    running: bool  # a driver holds the journal now

    @property
    def current(self) -> str:
        return _dumps(self.space.to_dict())

    def records(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(key, record) of each run's latest record, in journal order, ids those of the
        current space (runs no longer in it left out)."""
        if self.grid is None:
            def source() -> Iterator[tuple[Any, bytes]]:
                for line in _lines(self.path):
                    head = _head(line)
                    if head is not None:
                        yield head[:2], line
                    elif line.startswith(b'{"id"'):
                        try:
                            obj = _loads(line)
                        except ValueError:
                            continue
                        if _is_record(obj):
                            yield (obj["id"], obj["run"]), line
            for key, line in _stream_latest(source, None):
                yield key, _loads(line)
            return
        grid = self.grid

        def grid_source() -> Iterator[tuple[int, bytes]]:
            return ((slot, line) for slot, _, line in _grid_records(self.path, grid, self.current)
                    if slot is not None)
        for slot, line in _stream_latest(grid_source, grid.size * grid.runs):
            record = _loads(line)
            record["id"] = slot // grid.runs
            yield slot, record


def _open_experiment(path: str | os.PathLike) -> _Experiment:
    """A journal read as an experiment (ExpError when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    try:
        header, has_runs = _read_header(path)
    except OSError as e:
        raise JournalError(f"{path}: cannot read: {e.strerror}") from None
    if header is None:
        raise JournalError(f"{path}: not an exp journal (its first line is no exp header)")
    _check_format(path, header)
    now = {**header, **(_latest_space(path) or {})} if has_runs else header
    space = ParamSpace._from_dict(now["space"], seed=header.get("seed"))
    runs = now.get("runs") or 1
    grid = _GridIndex(space, runs, now.get("assume")) if header.get("command") == "run" else None
    return _Experiment(path, header, space, runs, grid, _held(path))


def _held(path: Path) -> bool:
    """Is a driver writing this journal now (it holds the journal's lock)?"""
    if _fcntl is None:
        return False
    try:
        with open(path, "rb") as f:
            try:
                _fcntl.flock(f.fileno(), _fcntl.LOCK_SH | _fcntl.LOCK_NB)
            except OSError:
                return True
    except OSError:
        return False
    return False


#: ``--where`` conditions: KEY OP VALUE, OP one of these; several are all required.
_OPS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "==": operator.eq,
        "<": operator.lt, ">": operator.gt, "=": operator.eq}


def _condition(text: str) -> tuple[str, Callable[[Any, Any], bool], Any]:
    """'lr<0.01' -> ("lr", <, 0.01). VALUE is a number, true/false, or text."""
    for op in _OPS:  # two-character operators first
        key, found, value = text.partition(op)
        if found and key.strip():
            raw = value.strip().strip("'\"")
            try:
                parsed: Any = float(raw) if raw.lower() not in ("nan", "inf", "-inf") else raw
            except ValueError:
                parsed = {"true": True, "false": False}.get(raw.lower(), raw)
            return key.strip(), _OPS[op], parsed
    raise ExpError(f"--where {text!r}: expected KEY OP VALUE with OP one of "
                   f"{' '.join(_OPS)} (e.g. --where 'lr<0.01')")


class Table(NamedTuple):
    """A table of an experiment's runs (``results``): columns and rows, what is fixed."""

    columns: list[str]
    rows: list[dict[str, Any]]
    fixed: dict[str, Any]  # parameters with one value in the space
    counts: dict[str, int]  # runs by status (after --status/--where)
    shown: int  # rows before --top cut them
    grouped: bool
    notes: list[str]

    def format(self, kind: str = "table") -> str:
        """The table as text: "table", "csv", "json" or "markdown"."""
        if kind == "json":
            return json.dumps([{c: row.get(c) for c in self.columns} for row in self.rows],
                              indent=1, default=str, allow_nan=False) \
                if not _has_nonfinite(self.rows) else _dumps(
                [{c: row.get(c) for c in self.columns} for row in self.rows])
        if kind == "csv":
            import csv
            import io
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows([_csv_text(_cell(row.get(c))) for c in self.columns]
                             for row in self.rows)
            return out.getvalue().rstrip("\n")
        cells = _shown_rows(self)
        if kind == "markdown":
            esc = lambda t: t.replace("|", "\\|")  # noqa: E731
            lines = ["| " + " | ".join(esc(c) for c in self.columns) + " |",
                     "|" + "|".join(" ---: " if self._numeric(i) else " --- "
                                    for i in range(len(self.columns))) + "|"]
            lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
            return "\n".join(lines)
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(self.columns)]
        numeric = [self._numeric(i) for i in range(len(self.columns))]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) if n else v.ljust(w)
                             for v, w, n in zip(values, widths, numeric)).rstrip()
        return "\n".join([line(self.columns), line(["-" * w for w in widths]),
                          *(line(r) for r in cells)])

    def _numeric(self, i: int) -> bool:
        column = self.columns[i]
        return all(_is_number(row.get(column)) or row.get(column) is None for row in self.rows)


def _has_nonfinite(rows: list[dict]) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values())


def _show(value: Any) -> str:
    """A cell as a table shows it: numbers to their significant digits."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _num(value)
    return _printable(value if isinstance(value, str) else _dumps(value))[:60]


def _shown_rows(table: Table) -> list[list[str]]:
    """Cells as a table shows them; run times in seconds to the millisecond."""
    return [[(f"{row[c]:.3f}" if c in ("seconds", "seconds.mean") and _is_number(row.get(c))
              else _show(row.get(c))) for c in table.columns] for row in table.rows]


def results(journal: str | os.PathLike, *, top: int | None = 20, sort: str | None = None,
            maximize: bool | None = None, objective: str | None = None,
            status: Iterable[str] = (), where: Iterable[str] = (),
            group: bool | None = None) -> Table:
    """A table of the runs of a journal: every run (``top=None``) or the first ``top``,
    sorted by ``sort`` (a result key, a parameter or a run field; by default the
    objective, the one the journal records if none is given, else by id), filtered
    by ``status`` and ``where`` conditions ("lr<0.01"). With repeats, rows are
    configurations (mean, sd and count of each metric, ranked by the mean) unless
    ``group=False``. Flat memory unless every run is asked for: the best ``top``
    are kept as the journal streams by.
    """
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 0):
        raise ExpError(f"--top must be a number >= 0 or 'all', got {top!r}")
    experiment = _open_experiment(journal)
    header = experiment.header
    if objective is None:
        objective = header.get("objective")
        maximize = bool(header.get("maximize")) if maximize is None else maximize
    maximize = bool(maximize)
    sort = sort or objective or _default_sort(experiment)
    statuses = set(status)
    for s in sorted(statuses - set(STATUSES)):
        raise ExpError(f"--status {s!r}: unknown (valid statuses are {_quoted(STATUSES)})")
    conditions = [_condition(w) for w in where]
    names = experiment.space.param_names()
    varying = _varying(experiment.space) if experiment.grid is not None else names
    axes = experiment.space._grid_axes()
    fixed = {n: axes[n][0] for n in names if n not in varying}
    group = experiment.runs > 1 if group is None else group
    if experiment.grid is not None and not (conditions or statuses) and top and \
            sort not in (*names, *_RUN_FIELDS, "id", "run", "status"):
        best = _top_groups_of_grid if group else _top_of_grid
        return best(experiment, top, sort, maximize, objective, names, varying, fixed)
    counts = dict.fromkeys(STATUSES, 0)
    keys: dict[str, None] = {}  # the keys of dict results
    scalar = False  # some result is a number
    kept: list[tuple[tuple, dict]] = []  # (rank, row): every row, or the best ``top``
    groups: dict[int, dict] = {}
    shown = 0
    for n, (_, record) in enumerate(experiment.records()):
        row = _row(record, names)
        if statuses and record["status"] not in statuses:
            continue
        if conditions and not all(_holds(row, key, op, value) for key, op, value in conditions):
            continue
        shown += 1
        counts[record["status"]] += 1
        result = record.get("result")
        if isinstance(result, dict):
            keys.update(dict.fromkeys(result))
        elif _is_number(result):
            scalar = True
        if group:
            _gather(groups, row)
            continue
        kept.append((_rank(row, sort, maximize, n), row))
        if top is not None and len(kept) > 2 * top + 100:  # keep the best, in flat memory
            kept.sort(key=lambda k: k[0])
            del kept[top:]
    _check_objective(objective, keys, scalar)
    if group:
        rows = [_aggregate(g) for g in groups.values()]
        rows.sort(key=lambda r: _rank(r, sort, maximize, r["id"]))
        shown = len(rows)
    else:
        kept.sort(key=lambda k: k[0])
        rows = [row for _, row in kept]
    _check_sort(sort, rows, names, keys)
    rows = rows if top is None else rows[:top]
    columns = _table_columns(rows, names, varying, group)
    return Table(columns, rows, fixed, counts, shown, group, _notes(experiment))


def _check_objective(objective: str | None, keys: dict[str, None], scalar: bool) -> None:
    """An objective no result has is an error naming what the results have."""
    if objective is not None and (keys or scalar) and objective not in keys and \
            not (objective == "value" and scalar):
        what = f"result keys: {_quoted(keys)}" if keys else "the results are numbers, not dicts"
        raise ExpError(f"--objective {objective!r}: no result has that key ({what})")


def _check_sort(sort: str | None, rows: list[dict], names: list[str],
                keys: dict[str, None]) -> None:
    if sort is not None and rows and not any(_lookup(row, sort) is not None for row in rows):
        raise ExpError(f"--sort {sort!r}: no such column (parameters: {_quoted(names)}; result "
                       f"keys: {_quoted(keys) or 'none'}; or one of {_quoted(_RUN_FIELDS)})")


def _notes(experiment: _Experiment) -> list[str]:
    return ["the experiment is still running: this is what its journal holds now"] \
        if experiment.running else []


class _SortValue:
    """The value of a journal line's result for a sort key, read without parsing the
    line; and what the results held, for _check_objective and _check_sort."""

    def __init__(self, sort: str | None):
        self.sort = sort
        self.key = sort.removeprefix("result.") if sort is not None else None
        self.keys: dict[str, None] = {}  # of the dict results (the first 100 seen)
        self.scalar = False  # some result is a number

    def of(self, line: bytes) -> Any:
        result = _result_of(line)
        if type(result) is dict:
            if len(self.keys) < 100:
                self.keys.update(dict.fromkeys(result))
            return result.get(self.key)
        self.scalar = self.scalar or _is_number(result)
        return result if self.sort in ("result", "value") else None


def _top_of_grid(experiment: _Experiment, top: int, sort: str | None, maximize: bool,
                 objective: str | None, names: list[str], varying: list[str],
                 fixed: dict[str, Any]) -> Table:
    """The best ``top`` runs of a grid journal by a result (or the first by id), in one
    pass that reads only each line's head and result (a million runs in seconds) and
    keeps the best in a heap; a run journaled twice counts once, its latest record."""
    import heapq
    grid = experiment.grid
    codes = bytearray(grid.size * grid.runs)
    heap: list[list] = []  # [-class, -value, -seq, slot (None once superseded), line]
    in_heap: dict[int, list] = {}
    sorting = _SortValue(sort)
    sign = -1.0 if maximize else 1.0
    cap = 2 * top + 100
    for seq, (slot, code, line) in enumerate(_grid_records(experiment.path, grid,
                                                           experiment.current)):
        if slot is None:
            continue
        codes[slot] = code
        old = in_heap.pop(slot, None)
        if old is not None:
            old[3] = None
        if sort is None:
            cls, value = 0, float(slot)
        else:
            value = sorting.of(line)
            if value is None or not _is_number(value) or value != value:
                cls, value = 2, 0.0
            else:
                cls, value = (1 if code == 2 else 0), sign * value
        if len(heap) < cap or (-cls, -value) > (heap[0][0], heap[0][1]):
            entry = [-cls, -value, -seq, slot, line]
            heapq.heappush(heap, entry)
            in_heap[slot] = entry
            if len(heap) > cap:
                dropped = heapq.heappop(heap)
                if dropped[3] is not None:
                    in_heap.pop(dropped[3], None)
    _check_objective(objective, sorting.keys, sorting.scalar)
    live = sorted((e for e in heap if e[3] is not None), reverse=True)[:top]
    rows = []
    for *_, slot, line in live:
        record = _loads(line)
        record["id"] = slot // grid.runs
        rows.append(_row(record, names))
    _check_sort(sort, rows, names, sorting.keys)
    counts = {name: codes.count(code) for code, name in _STATUS_NAME.items()}
    notes = _notes(experiment)
    return Table(_table_columns(rows, names, varying, False), rows, fixed, counts,
                 len(codes) - codes.count(0), False, notes)


def _top_groups_of_grid(experiment: _Experiment, top: int, sort: str | None, maximize: bool,
                        objective: str | None, names: list[str], varying: list[str],
                        fixed: dict[str, Any]) -> Table:
    """The best ``top`` configurations of a grid journal with repeats, ranked by the mean
    of a result over their runs, in two passes of flat memory: the first keeps each
    run's status, value and place in the journal (13 bytes a run), the second reads
    the runs of the best only, up to the last of them (by id, one pass). Ranked as ``results`` ranks groups: by the mean of the
    finite values, taken in journal order (the same float), ties by id,
    configurations without one last; a run journaled twice counts once. With no
    ``sort``, the first by id."""
    import heapq
    from array import array
    grid = experiment.grid
    runs = grid.runs
    codes = bytearray(grid.size * runs)
    values = array("d", [math.nan]) * len(codes)
    order = array("i", [0]) * len(codes)  # line of its latest record, for journal order
    sorting = _SortValue(sort)
    # By id, the lines of the first ``top`` configurations seen so far are kept as
    # they stream by (a max-heap of their ids): one pass.
    firsts: dict[int, dict[int, tuple[int, bytes]]] = {}
    heap: list[int] = []
    for n, (slot, code, line) in enumerate(_grid_records(experiment.path, grid,
                                                          experiment.current)):
        if slot is None:
            continue
        codes[slot], order[slot] = code, n
        if sort is None:
            cid = slot // runs
            if cid in firsts:
                firsts[cid][slot] = (n, line)
            elif len(heap) < top or cid < -heap[0]:
                firsts[cid] = {slot: (n, line)}
                heapq.heappush(heap, -cid)
                if len(heap) > top:
                    del firsts[-heapq.heappop(heap)]
            continue
        value = sorting.of(line)
        values[slot] = value if _is_number(value) and math.isfinite(value) else math.nan
    _check_objective(objective, sorting.keys, sorting.scalar)
    sign, shown = (-1.0 if maximize else 1.0), 0

    def ranked() -> Iterator[tuple[int, float, int]]:
        nonlocal shown
        empty = bytes(runs)
        for cid in range(grid.size):
            base = cid * runs
            if codes[base:base + runs] == empty:
                continue  # no run of it in the journal
            shown += 1
            if sort is None:
                yield 0, float(cid), cid
                continue
            found = [values[s] for s in sorted(range(base, base + runs), key=order.__getitem__)
                     if codes[s] and values[s] == values[s]]
            yield (0, sign * _welford_mean(found), cid) if found else (2, 0.0, cid)
    best = [cid for *_, cid in heapq.nsmallest(top, ranked())]
    wanted, latest = set(best), {}
    if sort is None:  # read in the first pass
        latest = {slot: seen for cid in best for slot, seen in firsts[cid].items()}
        wanted = set()
    last = max((order[s] for cid in wanted for s in range(cid * runs, (cid + 1) * runs)
                if codes[s]), default=-1)
    for n, (slot, _, line) in enumerate(_grid_records(experiment.path, grid,
                                                       experiment.current)):
        if n > last:
            break  # past the last line of the best: the rest need not be read
        if slot is not None and slot // runs in wanted:
            latest[slot] = (n, line)
    groups: dict[int, dict] = {}
    for slot, (_, line) in sorted(latest.items(), key=lambda item: item[1][0]):  # as read
        record = _loads(line)
        record["id"] = slot // runs  # its id in the current space
        _gather(groups, _row(record, names))
    rows = [_aggregate(groups[cid]) for cid in best]
    _check_sort(sort, rows, names, sorting.keys)
    counts = {name: codes.count(code) for code, name in _STATUS_NAME.items()}
    notes = _notes(experiment)
    return Table(_table_columns(rows, names, varying, True), rows, fixed, counts, shown,
                 True, notes)


def _default_sort(experiment: _Experiment) -> str | None:
    """"result" when the runs return numbers (the first ok ones say), else None (by id)."""
    for n, line in enumerate(_lines(experiment.path)):
        head = _head(line)
        if head is not None and head[2] == 1:
            return "result" if _is_number(_result_of(line)) else None
        if n > 1000:
            break
    return None


def _lookup(row: dict[str, Any], key: str) -> Any:
    """A row's value for a name: a run field, result key or parameter, plain or prefixed."""
    for name in (key, f"result.{key}", f"param.{key}", f"{key}.mean", f"result.{key}.mean"):
        if name in row:
            return row[name]
    return None


def _holds(row: dict, key: str, op: Callable[[Any, Any], bool], value: Any) -> bool:
    found = _lookup(row, key)
    if found is None:
        return False
    try:
        return bool(op(found, value))
    except TypeError:  # a number against text
        return bool(op(str(found), str(value)))


def _rank(row: dict, sort: str | None, maximize: bool, tie: int) -> tuple:
    """Sort key: by id and run, or by a value (rows without it last; reversed to maximise).
    Pruned runs, whose results are what they reported last, come after finished ones."""
    if sort is None:
        return (0, row.get("id", 0), row.get("run", 0), tie)
    value = _lookup(row, sort)
    if not _is_number(value) or value != value:
        return (2, 0.0, tie)
    return (1 if row.get("status") == "pruned" else 0, -value if maximize else value, tie)


def _gather(groups: dict[int, dict], row: dict[str, Any]) -> None:
    """Add a run to its configuration's running sums (Welford: mean and variance)."""
    g = groups.get(row["id"])
    if g is None:
        g = groups[row["id"]] = {"row": row, "n": 0, "stats": {}, "statuses": {}}
    g["n"] += 1
    g["statuses"][row["status"]] = g["statuses"].get(row["status"], 0) + 1
    for key, value in row.items():
        if (key.startswith(("result", "reported.")) or key in ("seconds", "step")) \
                and _is_number(value) and math.isfinite(value):
            n, mean, m2 = g["stats"].get(key, (0, 0.0, 0.0))
            n += 1
            delta = value - mean
            mean += delta / n
            g["stats"][key] = (n, mean, m2 + delta * (value - mean))


def _welford_mean(values: list[float]) -> float:
    """The mean as _gather computes it, to the last bit."""
    mean = 0.0
    for n, value in enumerate(values, 1):
        mean += (value - mean) / n
    return mean


def _aggregate(g: dict) -> dict[str, Any]:
    """A configuration's row: its parameters, runs by status, mean, sd and count."""
    first = g["row"]
    row = {"id": first["id"], "runs": g["n"],
           "status": ", ".join(f"{n} {s}" for s, n in g["statuses"].items())}
    row.update({k: v for k, v in first.items() if k.startswith("param.")})
    for key, (n, mean, m2) in g["stats"].items():
        row[f"{key}.mean"] = mean
        if key != "seconds":
            row[f"{key}.sd"] = math.sqrt(m2 / (n - 1)) if n > 1 else None
            row[f"{key}.n"] = n
    return row



def _table_columns(rows: list[dict], names: list[str], varying: list[str],
                   grouped: bool) -> list[str]:
    """id, run (or runs), status, the varying parameters, every metric, seconds, step."""
    present = dict.fromkeys(k for row in rows for k in row)
    head = ["id", "runs", "status"] if grouped else ["id", "run", "status"]
    params = [f"param.{n}" for n in varying]
    own = ("seconds.mean", "step.mean", "step.sd", "step.n") if grouped else ("seconds", "step")
    metrics = [k for k in present if k.startswith(("result", "reported.")) and k not in own
               and not (k.endswith(".n") and all(row.get(k) in (None, row.get("runs"))
                                                 for row in rows))]
    tail = [k for k in own if any(row.get(k) is not None for row in rows)
            and not k.startswith("step.") or k == "step.mean" and k in present]
    if not grouped and any(row.get("error") for row in rows):
        tail.append("error")
    columns = [c for c in head + params + metrics + tail if c in present or c in head]
    # Prefixes (param., result.) only where the plain name is also another kind's.
    def base(c: str) -> str:
        name = c.split(".", 1)[1]
        for suffix in (".mean", ".sd", ".n"):
            if grouped and name.endswith(suffix):
                return name[:-len(suffix)]
        return name
    params_ = {base(c) for c in columns if c.startswith("param.")}
    results_ = {base(c) for c in columns if c.startswith("result.")}
    fields = {"id", "run", "runs", "status", "error", *_RUN_FIELDS}
    short = {}
    for c in columns:
        if c.startswith("param.") and not base(c) in results_ | fields:
            short[c] = c[6:]
        elif c.startswith("result.") and not base(c) in params_ | fields:
            short[c] = c[7:]
        else:
            short[c] = c
    for row in rows:
        for c, s in short.items():
            if c != s and c in row:
                row[s] = row[c]
    return [short[c] for c in columns]


def dataframe(journal: str | os.PathLike) -> Any:
    """A pandas DataFrame of a journal's runs: one row per run, the CSV's columns
    (``param.NAME``, ``result`` or ``result.KEY``, the run's own fields)."""
    try:
        import pandas
    except ImportError:
        raise ExpError("exp.dataframe needs pandas, which is not installed: pip install "
                       "pandas") from None
    experiment = _open_experiment(journal)
    names = experiment.space.param_names()
    rows = [_row(record, names) for _, record in experiment.records()]
    return pandas.DataFrame.from_records(rows)


# ─── several objectives: the Pareto front ────────────────────────────────────
#
# A search (or a grid read back) may weigh several objectives, each minimised
# or maximised, under constraints on other keys of the result. Values are
# minimised throughout: a maximised objective is negated. A run is feasible
# when it meets every constraint; the front is the feasible runs no other
# feasible run beats on every objective at once.

_CONSTRAINT_OPS = ("<=", ">=")
#: The hypervolume's reference point, where not given (--ref): the worst value of
#: each objective over the usable runs, plus this fraction of its range.
REF_MARGIN = 0.1


def objectives_of(values: Iterable[str] | None, maximize: bool = False
                  ) -> list[tuple[str | None, bool]]:
    """--objective KEY[:max|:min] (repeatable) and --maximize as [(key, maximise)]:
    [(None, maximize)] when none is given."""
    if not values:
        return [(None, maximize)]
    found: list[tuple[str | None, bool]] = []
    for text in values:
        key, colon, direction = str(text).rpartition(":")
        if not colon or direction not in ("max", "min"):
            key, direction = str(text), None
        if not key:
            raise ExpError(f"--objective {text!r}: expected KEY, KEY:max or KEY:min")
        if direction is not None and maximize:
            raise ExpError(f"--objective {text} with --maximize: give the direction once "
                           f"(--objective {key}:max, without --maximize)")
        if any(k == key for k, _ in found):
            raise ExpError(f"--objective {key!r} is given twice")
        found.append((key, maximize if direction is None else direction == "max"))
    return found


def parse_constraint(text: str) -> tuple[str, str, float]:
    """ "memory_mb <= 8000" -> ("memory_mb", "<=", 8000.0); ">=" too."""
    for op in _CONSTRAINT_OPS:
        key, found, bound = str(text).partition(op)
        if found:
            try:
                value = float(bound)
            except ValueError:
                value = math.nan
            if key.strip() and math.isfinite(value):
                return key.strip(), op, value
            break
    raise ExpError(f"--constraint {text!r}: expected \"KEY <= NUMBER\" or \"KEY >= NUMBER\"")


def _constraint_text(key: str, op: str, bound: float) -> str:
    return f"{key} {op} {_num(bound)}"


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indexes, in their order, of the points (all minimised) no other point dominates:
    none is at least as good on every objective and better on one."""
    order = sorted(range(len(points)), key=lambda i: tuple(points[i]))
    front: list[int] = []
    for i in order:  # a point's dominators sort before it
        p = points[i]
        if not any(all(a <= b for a, b in zip(points[j], p)) and tuple(points[j]) != tuple(p)
                   for j in front):
            front.append(i)
    return sorted(front)


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """The volume the points (all minimised) dominate up to ``ref``: exact, a staircase
    in two dimensions, slices along the first objective in more."""
    inside = [tuple(map(float, p)) for p in points if all(a < r for a, r in zip(p, ref))]
    if not inside:
        return 0.0
    front = sorted({inside[i] for i in pareto_front(inside)})
    if len(ref) == 1:
        return ref[0] - front[0][0]
    if len(ref) == 2:
        volume, best = 0.0, ref[1]
        for x, y in front:
            if y < best:
                volume, best = volume + (ref[0] - x) * (best - y), y
        return volume
    volume = 0.0
    for k, p in enumerate(front):  # the slab from this point's first objective to the next's
        upper = front[k + 1][0] if k + 1 < len(front) else ref[0]
        if upper > p[0]:
            volume += (upper - p[0]) * hypervolume([q[1:] for q in front[:k + 1]], ref[1:])
    return volume


def reference_point(worst: Sequence[float], best: Sequence[float],
                    given: dict[int, float] | None = None) -> list[float]:
    """The worst value seen of each objective plus REF_MARGIN of its range (1 where all
    values are equal), except where ``given``."""
    ref = [w + REF_MARGIN * (w - b if w > b else 1.0) for w, b in zip(worst, best)]
    for i, value in (given or {}).items():
        ref[i] = value
    return ref


def _ref_values(items: Iterable[str] | dict[str, float] | None,
                objectives: list[tuple[str | None, bool]]) -> dict[int, float]:
    """--ref KEY=VALUE (in the objective's own units) as {objective index: minimised value}."""
    keys = [k for k, _ in objectives]
    pairs = items.items() if isinstance(items, dict) else (
        str(t).partition("=")[::2] for t in items or ())
    given = {}
    for key, text in pairs:
        key = str(key).strip()
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if key not in keys or not math.isfinite(value):
            raise ExpError(f"--ref {key}={text}: expected OBJECTIVE=NUMBER, OBJECTIVE one of "
                           f"{_quoted(k for k in keys if k)}")
        i = keys.index(key)
        given[i] = -value if objectives[i][1] else value
    return given


class Goal(NamedTuple):
    """What a search weighs: objectives [(key, maximise)] and constraints
    [(key, "<=" | ">=", bound)]. ``read`` a result as minimised values."""

    objectives: list[tuple[str | None, bool]]
    constraints: list[tuple[str, str, float]] = []

    @classmethod
    def of(cls, objectives: Any, constraints: Iterable[str] = ()) -> Goal:
        """From {key: "min"|"max"} or [(key, "min"|"max")] and ["KEY <= NUMBER", ...]."""
        items = list(objectives.items()) if isinstance(objectives, dict) else list(objectives)
        found: list[tuple[str | None, bool]] = []
        for item in items:
            key, direction = (item, "min") if isinstance(item, str) else item
            if isinstance(direction, bool):
                direction = "max" if direction else "min"
            if direction not in ("min", "max"):
                raise ExpError(f"objective {key!r}: the direction is 'min' or 'max', "
                               f"got {direction!r}")
            if any(k == key for k, _ in found):
                raise ExpError(f"--objective {key!r} is given twice")
            found.append((key, direction == "max"))
        if len(found) > 1 and any(k is None for k, _ in found):
            raise ExpError("several objectives need a key each (--objective KEY:min ...)")
        parsed = [c if isinstance(c, tuple) else parse_constraint(c) for c in constraints]
        for key, _, _ in parsed:
            if any(k == key for k, _ in found):
                raise ExpError(f"--constraint on {key!r}, which is an objective")
        return cls(found or [(None, False)], parsed)

    @classmethod
    def of_header(cls, header: dict[str, Any]) -> Goal:
        """The goal a journal's header records (one objective in older journals)."""
        if header.get("objectives"):
            return cls.of(header["objectives"], header.get("constraints") or ())
        return cls([(header.get("objective"), bool(header.get("maximize")))],
                   [parse_constraint(c) for c in header.get("constraints") or ()])

    @property
    def multi(self) -> bool:
        """More than one objective, or any constraint."""
        return len(self.objectives) > 1 or bool(self.constraints)

    def read(self, result: Any) -> tuple[list[float] | None, list[float] | None, str | None]:
        """(minimised objective values, constraint slacks (<= 0: met), None), or
        (None, None, why the result is unusable)."""
        vector = []
        for key, maximize in self.objectives:
            value, why = _number_at(result, key)
            if value is None:
                return None, None, why
            vector.append(-value if maximize else value)
        slacks = []
        for key, op, bound in self.constraints:
            value, why = _number_at(result, key)
            if value is None:
                return None, None, f"constraint {_constraint_text(key, op, bound)}: {why}"
            slacks.append(value - bound if op == "<=" else bound - value)
        return vector, slacks, None

    def missing(self, result: Any) -> list[str]:
        """The keys of the goal a dict result lacks (a typo rather than a bad run)."""
        if not isinstance(result, dict):
            return []
        keys = [k for k, _ in self.objectives if k is not None] + [k for k, _, _ in self.constraints]
        return [k for k in keys if k not in result]

    def header(self) -> dict[str, Any]:
        return {"objectives": [[k, "max" if m else "min"] for k, m in self.objectives],
                "constraints": [_constraint_text(*c) for c in self.constraints]}

    def describe(self) -> str:
        """ "max acc, min latency_ms (subject to memory_mb <= 8000)"."""
        text = ", ".join(f"{'max' if m else 'min'} {k or 'value'}" for k, m in self.objectives)
        if self.constraints:
            text += " (subject to " + ", ".join(_constraint_text(*c)
                                                for c in self.constraints) + ")"
        return text


def _number_at(result: Any, key: str | None) -> tuple[float | None, str | None]:
    """The finite number a result holds under ``key`` (the result itself for None or
    "value"), or (None, why not)."""
    if isinstance(result, dict):
        if key is None:
            return None, (f"run() returned a dict (keys: {_quoted(result)}); name the key to "
                          "optimise with --objective KEY")
        if key not in result:
            return None, f"the result has no key {key!r} (keys: {_quoted(result)})"
        value = result[key]
    elif key not in (None, "value"):
        return None, f"the result is not a dict, so it has no key {key!r}"
    else:
        value = result
    what = "the objective" if key in (None, "value") else repr(key)
    if not _is_number(value):
        return None, f"{what} is not a number: {_printable(repr(value))[:60]}"
    if not math.isfinite(value):
        return None, f"{what} is not finite: {value!r}"
    return float(value), None


class Front(NamedTuple):
    """The Pareto front of a journal (``pareto``): its runs as a table, best first by the
    first objective, and its hypervolume up to ``reference`` (in each objective's units)."""

    table: Table
    goal: Goal
    hypervolume: float
    reference: dict[str, float]
    usable: int  # ok runs with every objective (and constrained key)
    feasible: int  # of them, those meeting every constraint


def pareto(journal: str | os.PathLike, *, objectives: Any = None,
           constraints: Iterable[str] | None = None, ref: Any = None,
           where: Iterable[str] = ()) -> Front:
    """The non-dominated feasible runs of a journal, any journal: ``objectives``
    ({key: "min"|"max"}) and ``constraints`` default to those its search recorded.
    One pass in flat memory (only the front is kept); with repeats, a configuration's
    mean stands for it. ``ref`` {key: value}: the hypervolume's reference point
    (default: the worst value of each objective seen, plus REF_MARGIN of its range)."""
    experiment = _open_experiment(journal)
    recorded = Goal.of_header(experiment.header)
    goal = Goal.of(objectives, recorded.constraints if constraints is None else constraints) \
        if objectives else recorded._replace(
            constraints=recorded.constraints if constraints is None else
            [parse_constraint(c) for c in constraints])
    if len(goal.objectives) < 2:
        raise ExpError(f"{experiment.path} records one objective: give two or more, "
                       "--objective KEY:max --objective KEY2:min")
    given = _ref_values(ref, goal.objectives)
    conditions = [_condition(w) for w in where]
    names = experiment.space.param_names()
    grouped = experiment.runs > 1
    rows: Iterable[dict] = (_row(r, names) for _, r in experiment.records()
                            if r["status"] == "ok")
    if conditions:
        rows = (r for r in rows if all(_holds(r, k, op, v) for k, op, v in conditions))
    if grouped:
        groups: dict[int, dict] = {}
        for row in rows:
            _gather(groups, row)
        rows = (_aggregate(g) for g in groups.values())
    front: list[tuple[list[float], dict]] = []
    worst, best = [-math.inf] * len(goal.objectives), [math.inf] * len(goal.objectives)
    usable = feasible = 0
    for row in rows:
        vector, slacks = _row_goal(row, goal, grouped)
        if vector is None:
            continue
        usable += 1
        worst = [max(a, b) for a, b in zip(worst, vector)]
        best = [min(a, b) for a, b in zip(best, vector)]
        if any(s > 0 for s in slacks):
            continue
        feasible += 1
        if any(all(a <= b for a, b in zip(v, vector)) and v != vector for v, _ in front):
            continue
        front = [(v, r) for v, r in front
                 if not (all(a <= b for a, b in zip(vector, v)) and v != vector)]
        front.append((vector, row))
    front.sort(key=lambda f: (f[0], f[1]["id"]))
    reference = reference_point(worst, best, given) if usable else [math.nan] * len(worst)
    volume = hypervolume([v for v, _ in front], reference) if front else 0.0
    table_rows = [r for _, r in front]
    columns = _table_columns(table_rows, names, _varying(experiment.space)
                             if experiment.grid is not None else names, grouped)
    keys = [c for k, _ in goal.objectives for c in columns
            if c in (k, f"result.{k}", f"{k}.mean", f"result.{k}.mean")]
    head = [c for c in columns if c in ("id", "run", "runs", "status")]
    columns = head + keys + [c for c in columns if c not in head and c not in keys]
    counts = dict.fromkeys(STATUSES, 0)
    counts["ok"] = feasible
    table = Table(columns, table_rows, {}, counts, len(table_rows), grouped, [])
    return Front(table, goal, volume,
                 {k or "value": (-r if m else r) for (k, m), r in zip(goal.objectives, reference)},
                 usable, feasible)


def _row_goal(row: dict, goal: Goal, grouped: bool) -> tuple[list[float] | None, list[float]]:
    """A table row's minimised objective values and constraint slacks (mean ones with
    repeats), or (None, []) when it lacks one."""
    def value(key: str | None) -> float | None:
        v = _lookup(row, f"{key or 'result'}.mean" if grouped else key or "result")
        if v is None and not grouped and key in (None, "value"):
            v = row.get("result")
        return float(v) if _is_number(v) and math.isfinite(v) else None
    vector = []
    for key, maximize in goal.objectives:
        v = value(key)
        if v is None:
            return None, []
        vector.append(-v if maximize else v)
    slacks = []
    for key, op, bound in goal.constraints:
        v = value(key)
        if v is None:
            return None, []
        slacks.append(v - bound if op == "<=" else bound - v)
    return vector, slacks


def _front_text(path: Path, front: Front) -> str:
    """What exp results --pareto prints above and in the table."""
    ref = ", ".join(f"{k}={_num(v)}" for k, v in front.reference.items())
    what = "configuration(s)" if front.table.grouped else "run(s)"
    lines = [f"{path}: pareto front of {front.goal.describe()}",
             f"{len(front.table.rows)} non-dominated of {front.feasible} feasible {what} "
             f"({front.usable} usable); hypervolume {_num(front.hypervolume)} "
             f"(reference point {ref})",
             front.table.format("table") if front.table.rows else "(no feasible run yet)"]
    return "\n".join(lines)


# ─── command line ────────────────────────────────────────────────────────────


def _gopt_module() -> Any:
    """Import exp_gopt, or say in one line how to get it."""
    return _extra("exp_gopt", "exp gopt", "gopt")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--params", required=True, metavar="FILE",
                   help="param file (TOML) describing the space")
    p.add_argument("-m", "--module", required=True, metavar="RUNNABLE",
                   help="file.py, file.py:func or package.module:func (function 'run' by default)")
    p.add_argument("-w", "--workers", type=int, metavar="N",
                   help="parallel runs (default: one per CPU, or one per GPU slot)")
    g = p.add_argument_group("GPUs")
    g.add_argument("--gpus", metavar="all|free|N|IDS",
                   help="pin runs to GPUs: all visible, the free ones, the first N, or ids like "
                   "0,2,3 (one id: 3,)")
    g.add_argument("-g", "--gpu", action="store_true",
                   help="one run per free GPU (same as --gpus free)")
    g.add_argument("--gpu-max-util", type=float, default=GPU_MAX_UTIL, metavar="PCT",
                   help=f"a free GPU's utilisation is at most this (default {GPU_MAX_UTIL:g})")
    g.add_argument("--gpu-max-mem", type=float, default=GPU_MAX_MEM, metavar="PCT",
                   help=f"a free GPU has at most this much of its memory in use "
                   f"(default {GPU_MAX_MEM:g})")
    g.add_argument("--per-gpu", type=int, default=1, metavar="K", help="K runs share each GPU")
    g.add_argument("--gpus-per-run", type=int, default=1, metavar="M", help="M GPUs per run")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="kill a run after this long")
    p.add_argument("--load-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="stop if a worker takes longer to import the runnable (default 300)")
    p.add_argument("-o", "--out", default=".", metavar="DIR", type=_out_dir,
                   help="where NAME.jsonl, NAME.csv and NAME.logs/ go (default: .)")
    p.add_argument("--name", metavar="NAME", help="experiment name (default: the param file's "
                   "stem, with -gopt for a search)")
    p.add_argument("--seed", type=int, help="seed for random parameters and the optimiser")
    p.add_argument("--fresh", action="store_true", help="move the old journal aside, start over")
    p.add_argument("--retry-failed", action="store_true", help="on resume, rerun runs not ok")
    p.add_argument("--cancel", action="store_true", help="stop everything at the first failure")
    p.add_argument("--objective", action="append", metavar="KEY[:max|:min]",
                   help="the key of a dict result (and of reports) to rank, optimise, prune "
                   "by; gopt takes several (the first is pruned by)")
    p.add_argument("--maximize", action="store_true", help="higher is better (one objective)")
    e = p.add_argument_group("early stopping (runs call exp.report)")
    e.add_argument("--prune", choices=PRUNERS,
                   help="stop losing runs by their reported --objective (or value)")
    e.add_argument("--min-step", type=float, default=1, metavar="S",
                   help="first step a run may be stopped at, ASHA's first rung (default 1)")
    e.add_argument("--max-step", type=float, metavar="S",
                   help="the full length of a run in steps (ASHA's last rung; hyperband "
                   "learns it from the first run that ends when not given)")
    e.add_argument("--eta", type=int, default=3, help="ASHA/hyperband reduction factor (default 3)")
    e.add_argument("--prune-grace", type=float, default=60.0, metavar="SECONDS",
                   help="kill a stopped run that does not report again within this (default 60)")
    p.add_argument("--report", action="store_true",
                   help="write NAME.html, the experiment's report, at the end (gopt extra)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line or summary")
    p.add_argument("--progress-every", type=float, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal "
                   "(default 10)")
    p.add_argument("--kuma", action="store_true",
                   help="kuma-san shows the progress on a terminal (exp 0.5's bear)")
    c = p.add_argument_group("cluster (dask extra)")
    c.add_argument("--cluster", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://HOST:8786 or tls://…)")
    c.add_argument("--scheduler-file", metavar="FILE", help="the Dask scheduler's file")
    c.add_argument("--cluster-security", metavar="FILE",
                   help="TOML of distributed.Security keywords for tls:// addresses")


def _add_goal(p: argparse.ArgumentParser) -> None:
    p.add_argument("--constraint", action="append", default=[], metavar="'KEY <= NUMBER'",
                   help="a run is feasible only if its result meets this (<= or >=); "
                   "repeatable")
    p.add_argument("--ref", action="append", default=[], metavar="KEY=VALUE",
                   help="the hypervolume's reference point for an objective (default: its "
                   f"worst value seen plus {REF_MARGIN:g} of its range)")


def _one_objective(args: argparse.Namespace, command: str) -> tuple[str | None, bool]:
    """The one --objective of run or results (several are for gopt and --pareto)."""
    found = objectives_of(args.objective, args.maximize)
    if len(found) > 1:
        raise ExpError(f"exp {command} ranks and prunes by one --objective; several are for "
                       "exp gopt, and for exp results --pareto")
    return found[0]


def _out_dir(path: str) -> str:
    """--out/-o: a folder; exp 0.5's -o also took a file in it (``out/opt.csv``)."""
    if path.endswith(".csv") and not os.path.isdir(path):
        return os.path.dirname(path) or "."
    return path


def _any_case(choices: Iterable[str]) -> Callable[[str], str]:
    canonical = {c.lower(): c for c in choices}
    return lambda text: canonical.get(text.lower(), text)


def _gpus_arg(args: argparse.Namespace) -> Any:
    return "free" if args.gpu and args.gpus is None else args.gpus


def _parser() -> argparse.ArgumentParser:
    import argparse
    parser = argparse.ArgumentParser(
        prog="exp", allow_abbrev=False,
        description="Run a function over a parameter space, in parallel, resumably.")
    parser.add_argument("--version", action="version", version=f"exp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", allow_abbrev=False, help="run every configuration of a grid",
                         description="Run every configuration of the space in parallel workers.")
    _add_common(run)
    run.add_argument("-r", "--runs", type=int, default=1, metavar="R",
                     help="repeat each configuration R times")
    run.add_argument("-c", "--config-ids", type=int, nargs="+", action="extend", metavar="ID",
                     help="run only these configuration ids (-c 1 3, or -c 1 -c 3)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the configurations to run and their count; run nothing")
    run.add_argument("--assume", action="append", metavar="NAME=VALUE",
                     help="the value earlier runs had of a parameter the space now adds")

    gopt = sub.add_parser("gopt", allow_abbrev=False, help="Bayesian optimisation (gopt extra)",
                          description="Minimise what run() returns with scikit-optimize.")
    _add_common(gopt)
    gopt.add_argument("-n", "--n", type=int, default=20, help="total evaluations (default 20)")
    surrogates, acquisitions = ("GP", "RF", "ET", "GBRT", "random"), ("EI", "PI", "LCB", "gp_hedge")
    gopt.add_argument("-s", "--surrogate", default="GP", choices=surrogates,
                      type=_any_case(surrogates), help="the model (default GP; any case)")
    gopt.add_argument("-a", "--acquisition", default="EI", choices=acquisitions,
                      type=_any_case(acquisitions), help="the acquisition (default EI; any case)")
    gopt.add_argument("--kappa", type=float, default=1.96, help="LCB exploration (default 1.96)")
    gopt.add_argument("--xi", type=float, default=0.01, help="EI/PI exploration (default 0.01)")
    gopt.add_argument("--n-initial", type=int, metavar="K", help="initial design points")
    gopt.add_argument("--initial", default="sobol", choices=("random", "sobol", "lhs"),
                      help="initial design (default sobol)")
    mode = gopt.add_mutually_exclusive_group()
    mode.add_argument("--async", dest="sync", action="store_false",
                      help="ask for a point as soon as a worker is free (default)")
    mode.add_argument("--sync", dest="sync", action="store_true",
                      help="batches of --workers points (reproducible with --seed)")
    gopt.add_argument("--liar", default=None, choices=("cl_min", "cl_max", "cl_mean"),
                      help="value assumed for pending points (default cl_min; cl_mean with "
                           "several objectives)")
    gopt.add_argument("--warm-start", nargs="+", default=[], metavar="JOURNAL",
                      help="journals whose points seed the optimiser")
    gopt.add_argument("--plot", action="store_true", help="write convergence and objective plots")
    _add_goal(gopt)

    rep = sub.add_parser("report", allow_abbrev=False,
                         help="one offline HTML file that shows a journal (gopt extra)",
                         description="Write an experiment's report: one self-contained HTML "
                         "file, opened offline in any browser.")
    rep.add_argument("journal", help="NAME.jsonl")
    rep.add_argument("-o", "--out", metavar="FILE.html",
                     help="where to write it (default: NAME.html beside the journal)")
    rep.add_argument("--objective", metavar="KEY", help="the metric to show and rank by "
                     "(default: the journal's objective)")
    rep.add_argument("--maximize", action="store_true", help="higher is better")

    res = sub.add_parser("results", allow_abbrev=False, help="a table of a journal's runs",
                         description="Read a journal back: summary, best runs, CSV, plot.")
    res.add_argument("journal", help="NAME.jsonl")
    res.add_argument("--top", default="20", metavar="K|all",
                     help="show the first K rows (default 20), or all")
    res.add_argument("--sort", metavar="KEY", help="sort by a result key, parameter or field "
                     "(default: the objective, else id)")
    res.add_argument("--objective", action="append", metavar="KEY[:max|:min]",
                     help="the result key to rank by (several, with --pareto)")
    res.add_argument("--maximize", action="store_true", help="higher is better")
    res.add_argument("--pareto", action="store_true",
                     help="the Pareto front of the objectives (those the search recorded, "
                     "or --objective A:max --objective B:min) and its hypervolume")
    _add_goal(res)
    res.add_argument("--status", action="append", metavar="S[,S]",
                     help="only runs with these statuses (ok, pruned, failed, timeout, crashed)")
    res.add_argument("--where", action="append", metavar="COND",
                     help="only runs where KEY OP VALUE holds, OP one of < <= > >= == != "
                     "(e.g. 'lr<0.01'); several: all must hold")
    res.add_argument("--no-group", action="store_true",
                     help="with repeats: a row per run, not per configuration")
    res.add_argument("--format", default="table", choices=("table", "csv", "json", "markdown"))
    res.add_argument("--csv", metavar="FILE", help="write one flat row per run to FILE")
    res.add_argument("--info", action="store_true",
                     help="what reproduces the experiment: command line, versions, git commit")
    res.add_argument("--plot", action="store_true",
                     help="draw the experiment's plots as PNG (gopt extra)")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    gpus = _gpus_arg(args)
    assume = _assumptions(args.assume)
    if args.dry_run:
        _slots(args.workers, gpus, args.per_gpu, args.gpus_per_run,
               max_util=args.gpu_max_util, max_mem=args.gpu_max_mem)
        planned = plan(args.params, runs=args.runs, seed=args.seed, out=args.out, name=args.name,
                       config_ids=args.config_ids, retry_failed=args.retry_failed, assume=assume)
        print(_plan_text(planned, args), file=sys.stderr, flush=True)  # at once, at any size
        for config in planned.tasks:
            print(_dumps(config))
        return EXIT_OK
    objective, maximize = _one_objective(args, "run")
    records = run_experiment(
        args.params, args.module, workers=args.workers, runs=args.runs, gpus=gpus,
        per_gpu=args.per_gpu, gpus_per_run=args.gpus_per_run, timeout=args.timeout,
        out=args.out, name=args.name, seed=args.seed, fresh=args.fresh,
        retry_failed=args.retry_failed, cancel=args.cancel, config_ids=args.config_ids,
        quiet=args.quiet, cluster=args.cluster, scheduler_file=args.scheduler_file,
        cluster_security=args.cluster_security, load_timeout=args.load_timeout,
        gpu_max_util=args.gpu_max_util, gpu_max_mem=args.gpu_max_mem, kuma=args.kuma,
        progress_every=args.progress_every, prune=args.prune, objective=objective,
        maximize=maximize, min_step=args.min_step, max_step=args.max_step, eta=args.eta,
        prune_grace=args.prune_grace, assume=assume, records=False, report=args.report)
    return EXIT_OK if records.complete else EXIT_NOT_OK


def _assumptions(items: list[str] | None) -> dict[str, Any]:
    """--assume NAME=VALUE (VALUE read as TOML: 3, 0.5, true, "text"; else as text)."""
    import tomllib
    assume = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        if not eq or not name.strip():
            raise ExpError(f"--assume takes NAME=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        assume[name.strip()] = value
    return assume


def _plan_text(planned: Plan, args: argparse.Namespace) -> str:
    """What --dry-run says after the configurations: counts, and how to run just these."""
    import shlex
    text = f"{planned.total} run(s) of {planned.size} configuration(s)"
    if planned.kept or planned.dropped:
        text += (f"; {planned.kept} finished run(s) kept from the journal"
                 + (f", {planned.dropped} no longer in the space (kept in the journal, left "
                    "out of this experiment)" if planned.dropped else ""))
    if planned.seed is not None:
        argv = [a for a in sys.argv[1:] if a != "--dry-run"]
        if args.seed is None:
            argv += ["--seed", str(planned.seed)]
        text += (f"\nrandom values from seed {planned.seed}: exp {shlex.join(argv)} runs "
                 "exactly these")
    return text


def _cmd_results(args: argparse.Namespace) -> int:
    path = Path(args.journal)
    top = None if args.top == "all" else _top(args.top)
    if args.info:
        print(_info(_open_experiment(path)))
        return EXIT_OK
    if args.pareto:
        return _cmd_pareto(args, path)
    objective, maximize = _one_objective(args, "results")
    table = results(path, top=top, sort=args.sort, maximize=maximize or None,
                    objective=objective, status=[s for v in args.status or ()
                                                      for s in v.split(",")],
                    where=args.where or (), group=False if args.no_group else None)
    if args.csv:
        experiment = _open_experiment(path)
        if experiment.grid is not None:
            _grid_csv(path, Path(args.csv), experiment.grid, experiment.current)
        else:
            write_csv((r for _, r in experiment.records()), args.csv)
    if args.format != "table":
        print(table.format(args.format))
    else:
        print(_results_text(path, table, args.csv))
    if args.plot:
        for png in _gopt_module().plot_journal(path, objective=objective, maximize=maximize):
            print(png)
    return EXIT_OK


def _cmd_pareto(args: argparse.Namespace, path: Path) -> int:
    """exp results --pareto: the front as a table (sorted by the first objective)."""
    found = objectives_of(args.objective, args.maximize) if args.objective else None
    front = pareto(path, objectives=[(k, "max" if m else "min") for k, m in found or ()],
                   constraints=args.constraint or None, ref=args.ref, where=args.where or ())
    print(_front_text(path, front) if args.format == "table" else front.table.format(args.format))
    if args.plot:
        for png in _gopt_module().plot_journal(path, objectives=front.goal.objectives,
                                               constraints=[_constraint_text(*c) for c in
                                                            front.goal.constraints]):
            print(png)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    """exp report: the HTML file's path on stdout."""
    objective, maximize = objectives_of([args.objective] if args.objective else None,
                                        args.maximize)[0]
    print(_gopt_module().report(args.journal, args.out, objective=objective,
                                maximize=maximize if objective or args.maximize else None))
    return EXIT_OK


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ExpError(f"--top must be a number >= 0 or 'all', got {text!r}")
    return value


def _results_text(path: Path, table: Table, csv: str | None) -> str:
    """The table, with what it is above it: counts, what is fixed, notes; files below."""
    counts = ", ".join(f"{n} {s}" for s, n in table.counts.items() if n) or "no runs"
    what = "configuration(s)" if table.grouped else "run(s)"
    lines = [*(f"note: {n}" for n in table.notes),
             f"{path}: {sum(table.counts.values())} run(s): {counts}"]
    if table.fixed:
        lines.append("fixed: " + " ".join(f"{k}={_show(v)}" for k, v in table.fixed.items()))
    lines.append(table.format("table") if table.rows else "(no run to show)")
    if len(table.rows) < table.shown:
        lines.append(f"… {table.shown - len(table.rows)} more {what} (--top all shows every one)")
    stem = path.name.removesuffix(".jsonl")
    table_path = Path(csv) if csv else path.with_name(stem + ".csv")
    if table_path.exists():
        lines.append(f"table {table_path}")
    return "\n".join(lines)


def _info(experiment: _Experiment) -> str:
    """What reproduces the experiment, from its journal's header."""
    h = experiment.header
    git = h.get("git")
    import shlex
    fields = [("command", "exp " + h.get("command", "?")),
              ("command line", shlex.join(h["argv"]) if h.get("argv") else "(not recorded)"),
              ("folder", h.get("cwd", "(not recorded)")), ("created", h.get("created")),
              ("exp", h.get("exp")), ("python", h.get("python")), ("platform", h.get("platform")),
              ("host", h.get("host")),
              ("git", "(not a git work tree)" if not git else
               f"{git['commit']}" + {True: " (dirty)", False: "", None: " (dirty: unknown)"}[
                   git.get("dirty")]),
              ("runnable", f"{h.get('runnable_spec')} (source {h.get('runnable_hash')})"),
              ("seed", h.get("seed", h.get("optimizer_seed"))), ("runs", experiment.runs),
              ("space", _dumps(experiment.space.to_dict()))]
    width = max(len(k) for k, _ in fields)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in fields if v is not None)


def _log_to_stderr() -> None:
    """``exp: warning: …`` lines on whatever ``sys.stderr`` is now (tests and notebooks
    replace it), unless the program using exp configured logging itself."""
    import logging

    class StderrHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(self.format(record) + "\n")

    log = logging.getLogger("exp")
    if not logging.getLogger().handlers and not log.handlers:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("exp: warning: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)


def _std_streams() -> None:
    """For the command: standard streams that exist, and output that never fails on
    text a run returned (a lone surrogate from a file name is written escaped)."""
    _std_fds()
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:  # Python started with the descriptor closed
            setattr(sys, name, open(fd, "w", encoding="utf-8", errors="backslashreplace",
                                    closefd=False))
        else:
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):
                pass


def main(argv: list[str] | None = None) -> int:
    """The ``exp`` command; returns the exit code (0 all ok, 1 some not ok, 2 bad input, 130 ^C)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_DFL and _is_main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, we clean up
    _std_streams()
    if _AS_COMMAND and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script sees what python -m exp sees
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else EXIT_USAGE
        _log_to_stderr()
        if args.command in ("run", "gopt"):
            _become_reaper()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "gopt":
            return _gopt_module().main(args)
        if args.command == "report":
            return _cmd_report(args)
        return _cmd_results(args)
    except ExpError as e:
        print(f"exp: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped to a reader that stopped (| head): quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as e:  # a path the user gave that the system refuses
        where = f"{e.filename}: " if e.filename else ""
        print(f"exp: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, _Interrupted):
        print("\nexp: interrupted; the journal is whole, run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


# ─── exp 0.5's import paths and commands ─────────────────────────────────────
#
# ``from exp.params import ParamSpace`` and ``from exp.args import ParamDict``
# name this module; ``python -m exp.run``, ``python -m exp.gopt`` (and ``import
# exp.run``) find small modules whose main() is the command, made by the finder
# below: this file is then a package of one file (``__path__`` is empty).


class _Commands:
    """Finds and loads ``exp.run`` and ``exp.gopt`` (for imports and for ``python -m``)."""

    SOURCE = ("import sys\nfrom {parent} import _legacy_main\n\n\n"
              "def main(argv=None):\n    return _legacy_main({command!r}, argv)\n\n\n"
              "if __name__ == '__main__':\n    sys.exit(main())\n")

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        parent, _, command = fullname.rpartition(".")
        if parent != __name__ or command not in ("run", "gopt"):
            return None
        import importlib.util
        return importlib.util.spec_from_loader(fullname, self, origin=__file__)

    def create_module(self, spec: Any) -> None:
        return None

    def get_code(self, fullname: str) -> Any:
        parent, _, command = fullname.rpartition(".")
        return compile(self.SOURCE.format(parent=parent, command=command),
                       f"<{fullname}>", "exec")

    def exec_module(self, module: Any) -> None:
        exec(self.get_code(module.__name__), module.__dict__)


def _legacy_main(command: str, argv: list[str] | None = None) -> int:
    """``python -m exp.run`` / ``python -m exp.gopt``: ``exp run`` / ``exp gopt``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


if __name__ != "__main__" and sys.modules.get(__name__) is not None:  # imported (not a worker)
    __path__: list[str] = []  # a package, so that exp.run and exp.gopt can be imported
    if not any(isinstance(f, _Commands) and f.find_spec(__name__ + ".run") for f in sys.meta_path):
        sys.meta_path.append(_Commands())
    sys.modules.setdefault(__name__ + ".params", sys.modules[__name__])
    sys.modules.setdefault(__name__ + ".args", sys.modules[__name__])
