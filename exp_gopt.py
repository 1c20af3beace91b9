"""exp_gopt: Bayesian optimisation for exp (``exp gopt``, the ``gopt`` extra).

Minimises what a runnable returns over a parameter space, with the same
workers, GPU pinning, timeouts, crash handling, journal and resume as
``exp run``::

    $ exp gopt -p space.toml -m runnable.py -n 100 --workers 4 --plot

    >>> import exp_gopt
    >>> res = exp_gopt.optimize("space.toml", "runnable.py", n=50, workers=4)
    >>> res.x, res.fun              # best configuration (a dict) and its value
    >>> res.evaluations[:3]         # every evaluation, in id order

The driver (this module, in the parent process) asks the optimiser for a
point whenever a worker is free (``--async``: pending points get a
constant-liar value) or for one point per worker at a time (``--sync``).
Workers never import this module, numpy or scikit-optimize: they only run
the user's function.

Surrogates: ``GP`` is scikit-optimize's Gaussian process (Matern 5/2 with
one length scale per dimension + white noise, as ``gp_minimize``), fitted
once per batch of results from the previous fit's hyper-parameters; the
acquisition is maximised over random and local candidates, then refined
around the best of them; ``RF``/``ET``/``GBRT`` are scikit-optimize's tree
models, ``random`` is random search. Spaces map onto scikit-optimize's
dimensions, whose plots draw the results.
"""

from __future__ import annotations

__all__ = ["optimize", "GoptResult", "Evaluation", "journal_state", "plot_journal", "main"]

import html
import itertools
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize as _scipy_minimize
from scipy.special import log_ndtr
from sklearn.base import clone as sklearn_clone
from threadpoolctl import threadpool_limits
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from skopt.space import Categorical, Integer, Real, Space
from skopt.utils import cook_estimator, cook_initial_point_generator, normalize_dimensions

import exp

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Sequence

# ─── constants ───────────────────────────────────────────────────────────────

SURROGATES = ("GP", "RF", "ET", "GBRT", "random")
ACQUISITIONS = ("EI", "PI", "LCB", "gp_hedge")
LIARS = ("cl_min", "cl_max", "cl_mean")
INITIAL_DESIGNS = ("random", "sobol", "lhs")

#: Random candidates per suggestion, and local ones around each good point.
_N_RANDOM, _N_LOCAL = 2000, 200
#: Step sizes (in the unit cube) of the local candidates and refinement rounds.
_LOCAL_SIGMAS, _REFINE_SIGMAS = (0.2, 0.05, 0.01), (0.03, 0.01, 0.003)
#: Seconds between redraws of the live convergence plot.
_PLOT_EVERY = 2.0


def default_n_initial(n_dims: int, n: int) -> int:
    """Initial design points: one per dimension plus 2, at most a third of the budget."""
    return max(1, min(n_dims + 2, n // 3 or 1))


# ─── space mapping ───────────────────────────────────────────────────────────


class _Mapping:
    """A ParamSpace as scikit-optimize dimensions, and points back to plain values.

    range float → Real, range int → Integer (both ends included), random →
    Real/Integer with its prior, list → Categorical over its unique values,
    value (and a one-value list) → fixed, passed to every run.
    """

    def __init__(self, space: exp.ParamSpace):
        self.order = space.param_names()
        self.fixed: dict[str, Any] = {}
        self.dims: list[Any] = []
        for name in self.order:
            spec = space.get_spec(name)
            if spec["type"] == "value":
                self.fixed[name] = spec["value"]
                continue
            domain = space.domain(name)
            _check_domain(domain, space.filename)
            if domain.type is exp.Types.LIST:
                if len(domain.values) == 1:
                    self.fixed[name] = domain.values[0]
                else:
                    self.dims.append(Categorical(list(domain.values), name=name))
            elif domain.dtype is exp.DTypes.INT:
                self.dims.append(Integer(int(domain.low), int(domain.high), prior=domain.prior,
                                         name=name))
            else:
                self.dims.append(Real(float(domain.low), float(domain.high), prior=domain.prior,
                                      name=name))
        if not self.dims:
            raise exp.ExpError("nothing to optimise: every parameter of the space has a single "
                               "value (give a range, random or list parameter)")
        self.names = [d.name for d in self.dims]

    def to_params(self, point: Sequence[Any]) -> dict[str, Any]:
        """The configuration of a point: plain int/float/str/bool, fixed values included."""
        values = dict(zip(self.names, (_plain(d, v) for d, v in zip(self.dims, point))))
        return {name: self.fixed[name] if name in self.fixed else values[name]
                for name in self.order}

    def to_point(self, params: dict[str, Any]) -> list[Any] | None:
        """The point of a configuration, or None when it lies outside this space."""
        for name, value in self.fixed.items():
            if name in params and not _same(params[name], value):
                return None
        point = []
        for dim in self.dims:
            if dim.name not in params:
                return None
            v = params[dim.name]
            if isinstance(dim, Categorical):
                match = [c for c in dim.categories if _same(c, v)]
                if not match:
                    return None
                point.append(match[0])
                continue
            if not exp._is_number(v) or not dim.low <= v <= dim.high:
                return None
            if isinstance(dim, Integer):
                if v != int(v):
                    return None
                v = int(v)
            point.append(float(v) if isinstance(dim, Real) else v)
        return point


#: Integers beyond this lose their last digits on the way through the optimiser's floats.
_MAX_INT = 2 ** 53


def _check_domain(domain: exp.Domain, file: str | None) -> None:
    """Bounds the optimiser can represent: integers exactly, a width that is finite."""
    if domain.type not in (exp.Types.RANGE, exp.Types.RANDOM):
        return
    low, high = domain.low, domain.high
    if domain.dtype is exp.DTypes.INT and not -_MAX_INT <= low < high <= _MAX_INT:
        raise exp.ParamError(f"exp gopt needs integer bounds within ±2**53, got [{low}, {high}] "
                             "(use a float range, or a log-uniform one)", file=file,
                             param=domain.name)
    if not math.isfinite(float(high) - float(low)):
        raise exp.ParamError(f"exp gopt needs bounds whose width is a finite float, got "
                             f"[{low!r}, {high!r}]", file=file, param=domain.name)


def _numpy_seed(seed: int) -> int:
    """A seed numpy takes (0 to 2**32 - 1) for any integer: the same one when it is in
    that range, else one derived from it (negative and huge seeds never collide)."""
    if 0 <= seed < 2 ** 32:
        return seed
    entropy = 2 * seed if seed >= 0 else -2 * seed - 1  # the integers onto the naturals
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind (True is not 1 here)."""
    return exp._kind(a) == exp._kind(b) and a == b


def _plain(dim: Any, value: Any) -> Any:
    """A plain Python value for what scikit-optimize hands back (np.int64, np.str_...)."""
    if isinstance(dim, Categorical):
        return next(c for c in dim.categories if c == value)
    if isinstance(dim, Integer):
        return int(round(float(value)))
    return float(value)


def _key(point: Sequence[Any]) -> tuple:
    """A hashable identity of a point (floats to 12 significant digits)."""
    return tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in point)


# ─── objective ───────────────────────────────────────────────────────────────


def _objective_value(result: Any, objective: str | None) -> tuple[float | None, str | None]:
    """(value, None) for a usable result, else (None, why not)."""
    if isinstance(result, dict) and objective is None:
        keys = ", ".join(repr(k) for k in result) or "none"
        raise exp.ExpError(f"run() returned a dict (keys {keys}); name the value to "
                           "minimise with --objective KEY")
    return exp._number_at(result, objective)


# ─── Gaussian process ────────────────────────────────────────────────────────
#
# scikit-optimize's GaussianProcessRegressor with gp_minimize's kernel shape:
# constant * Matern 5/2 (one length scale per dimension) + white noise, on
# inputs in [0, 1]^D with y normalised. Around it, exp's own fitting policy:
# one fit per batch of results, warm started from the previous fit's
# hyper-parameters, plus one fresh start drawn from the length-scale prior
# while the data is small; a weak log-normal prior on the length scales keeps
# few-point fits away from degenerate (all-noise) solutions. Pending points
# are added with fixed hyper-parameters.

_S2_BOUNDS = (0.05, 20.0)
_L_BOUNDS = (0.01, 20.0)
_NOISE_BOUNDS = (1e-6, 0.5)
_PRIOR_L = (math.log(0.5), 1.0)  # log-normal prior on length scales: mean, sd
#: Fresh (prior-drawn) second start of the fit up to this many points; past it
#: the warm start alone (the hyper-parameters move little, the fit costs more).
_FRESH_UP_TO = 100


class _GP:
    """scikit-optimize's ``GaussianProcessRegressor`` (in ``.est``), fitted exp's way."""

    def __init__(self, space: Space, seed: int):
        n = space.transformed_n_dims
        kernel = (ConstantKernel(1.0, _S2_BOUNDS)
                  * Matern(np.full(n, 0.3), [_L_BOUNDS] * n, nu=2.5)
                  + WhiteKernel(1e-3, _NOISE_BOUNDS))
        self.rng = np.random.RandomState(seed)
        self.est = GaussianProcessRegressor(kernel=kernel, normalize_y=True, noise="gaussian",
                                            optimizer=self._lbfgs, n_restarts_optimizer=0,
                                            random_state=seed)

    def _lbfgs(self, obj_func: Any, theta0: np.ndarray,
               bounds: np.ndarray) -> tuple[np.ndarray, float]:
        """sklearn's optimizer hook: L-BFGS-B on its negative log marginal likelihood
        plus the length-scale prior (theta: log amplitude, log length scales, log noise),
        from theta0 and, on small data, from a draw of the prior."""
        mu, sd = _PRIOR_L

        def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = obj_func(theta)
            z = (theta[1:-1] - mu) / sd
            grad = np.array(grad, float)
            grad[1:-1] += z / sd
            return value + 0.5 * float(z @ z), grad

        low, high = bounds[:, 0], bounds[:, 1]
        starts = [np.clip(theta0, low, high)]
        if len(self.est.X_train_) <= _FRESH_UP_TO:
            fresh = np.concatenate([[0.0], self.rng.normal(mu, sd, len(theta0) - 2),
                                    [math.log(1e-3)]])
            starts.append(np.clip(fresh, low, high))
        best = None
        for start in starts:
            with np.errstate(all="ignore"):
                res = _scipy_minimize(f, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                      options={"maxiter": 200})
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        return (starts[0], math.inf) if best is None else (best.x, float(best.fun))

    def fit(self, X: np.ndarray, y: np.ndarray) -> _GP:
        est = self.est
        if hasattr(est, "kernel_"):  # warm start; skopt zeroes the fitted noise, put it back
            est.set_params(kernel=est.kernel_.k1 + WhiteKernel(
                float(np.clip(est.noise_ or 1e-3, *_NOISE_BOUNDS)), _NOISE_BOUNDS))
        self._fit(est, X, y)
        return self

    def with_points(self, X: np.ndarray, y: np.ndarray) -> _GP:
        """The same hyper-parameters, conditioned on other data (lies)."""
        gp = _GP.__new__(_GP)
        kernel = self.est.kernel_.k1 + WhiteKernel(max(self.est.noise_ or 0.0, 1e-6), "fixed")
        gp.est = sklearn_clone(self.est).set_params(kernel=kernel, optimizer=None)
        gp._fit(gp.est, X, y)
        return gp

    def _fit(self, est: Any, X: np.ndarray, y: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(np.asarray(X, float), np.asarray(y, float))
        self.y_mean = float(np.ravel(est._y_train_mean)[0])
        self.y_std = float(np.ravel(est._y_train_std)[0]) or 1.0

    def predict_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the latent function, in standardised units."""
        with warnings.catch_warnings():  # "variances smaller than 0", clipped just below
            warnings.simplefilter("ignore")
            mean, std = self.est.predict(np.asarray(X, float), return_std=True)
        return (mean - self.y_mean) / self.y_std, np.maximum(std / self.y_std, 1e-9)


# ─── acquisition ─────────────────────────────────────────────────────────────


def _acquisition(kind: str, mean: np.ndarray, std: np.ndarray, y_best: float, *,
                 xi: float, kappa: float) -> np.ndarray:
    """Higher is better: log EI, log PI, or minus the lower confidence bound."""
    if kind == "mean":
        return -mean
    if kind == "LCB":
        return -(mean - kappa * std)
    z = (y_best - xi - mean) / std
    if kind == "PI":
        return log_ndtr(z)
    # log EI = log std + log(phi(z) + z Phi(z)), stable far in the lower tail
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + z * np.exp(log_ndtr(z))
        tail = -0.5 * z * z - 0.5 * math.log(2 * math.pi) - 2.0 * np.log(np.abs(z))
        log_h = np.where(z > -6.0, np.log(np.maximum(h, 1e-300)), tail)
    return np.log(std) + log_h


# ─── optimiser ───────────────────────────────────────────────────────────────


class _Optimizer:
    """Ask/tell over scikit-optimize dimensions, aware of pending points.

    ``tell`` only records; the surrogate is fitted at the next ``ask`` (once
    for every batch of results). ``ask(pending)`` never returns a pending
    point, nor, while any other remains, an evaluated one.
    """

    def __init__(self, dims: list[Any], *, surrogate: str = "GP", acquisition: str = "EI",
                 kappa: float = 1.96, xi: float = 0.01, liar: str = "cl_min",
                 seed: int | None = None):
        self.space = Space(normalize_dimensions(dims))
        self.surrogate, self.acquisition, self.liar = surrogate, acquisition, liar
        self.kappa, self.xi = kappa, xi
        self.rng = np.random.RandomState(seed)
        self.Xi: list[list[Any]] = []  # told points
        self.yi: list[float] = []  # their values (minimised)
        self.evaluated: set[tuple] = set()  # told or failed: not suggested again
        self.seconds: list[float] = []  # optimiser time of each suggestion
        self.models: list[Any] = []  # the last fitted surrogate (for plots)
        self.gains = np.zeros(3)  # gp_hedge: EI, LCB, PI
        self._hedge: list[np.ndarray] = []  # gp_hedge: last proposal of each
        self._gp: _GP | None = None
        self._fitted_on = -1  # len(yi) when the GP was last fitted
        self._cols = self._columns()

    def _columns(self) -> list[slice]:
        cols, start = [], 0
        for dim in self.space.dimensions:
            cols.append(slice(start, start + dim.transformed_size))
            start += dim.transformed_size
        return cols

    @property
    def n_dims(self) -> int:
        return self.space.transformed_n_dims

    # recording
    def tell(self, point: Sequence[Any], y: float) -> None:
        self.Xi.append(list(point))
        self.yi.append(float(y))
        self.evaluated.add(_key(point))

    def mark(self, point: Sequence[Any]) -> None:
        """A point that failed: not told, but not suggested again."""
        self.evaluated.add(_key(point))

    # asking
    def ask(self, pending: Iterable[Sequence[Any]] = (), *,
            exploit: bool = False) -> list[Any] | None:
        """One new point, or None when every point of a finite space is pending.

        ``exploit`` asks for the minimum of the model's mean instead of the
        acquisition's maximum (the end of a budget: refine, stop exploring).
        """
        t0 = time.perf_counter()
        pending = [list(p) for p in pending]
        avoid = {_key(p) for p in pending}
        if self.surrogate == "random" or len(self.yi) < 2:
            point = self._random(avoid)
        else:
            # Single-threaded BLAS: on matrices of a few hundred rows, threads only
            # add overhead, and on a busy machine they make a fit ten times slower.
            with threadpool_limits(1, user_api="blas"):
                point = self._suggest(pending, avoid, exploit)
        self.seconds.append(time.perf_counter() - t0)
        return point

    def _random(self, avoid: set[tuple]) -> list[Any] | None:
        for _ in range(100):
            point = self.point(self.space.rvs(1, random_state=self.rng)[0])
            if _key(point) not in avoid and _key(point) not in self.evaluated:
                return point
        return self._any_left(avoid)

    def _any_left(self, avoid: set[tuple]) -> list[Any] | None:
        """A finite space nearly used up: a point not evaluated, else one not pending."""
        if any(isinstance(d, Real) for d in self.space.dimensions) or self._size() > 100_000:
            return self.point(self.space.rvs(1, random_state=self.rng)[0])
        points = [list(p) for p in itertools.product(*(_levels(d) for d in self.space.dimensions))]
        used = avoid | self.evaluated
        for left in ([p for p in points if _key(p) not in used],
                     [p for p in points if _key(p) not in avoid]):
            if left:
                return left[self.rng.randint(len(left))]
        return None

    def _size(self) -> int:
        return math.prod(len(_levels(d)) if not isinstance(d, Integer)
                         else d.high - d.low + 1 for d in self.space.dimensions)

    def point(self, raw: Sequence[Any]) -> list[Any]:
        return [_plain(d, v) for d, v in zip(self.space.dimensions, raw)]

    def _suggest(self, pending: list[list[Any]], avoid: set[tuple],
                 exploit: bool) -> list[Any] | None:
        model, y_best, scale = self._model(pending)
        kinds = ["EI", "LCB", "PI"] if self.acquisition == "gp_hedge" else [self.acquisition]
        if exploit:
            kinds = ["mean"]
        X = self._candidates()
        mean, std = self._predict(model, X)
        proposals = []
        for kind in kinds:
            score = _acquisition(kind, mean, std, y_best, xi=self.xi / scale, kappa=self.kappa)
            score = self._adjust(score, X)
            Xk, sk = X, score
            if isinstance(model, _GP):
                Xk, sk = self._refine(model, kind, X, score, y_best, scale)
            proposals.append((Xk, sk))
        if len(kinds) > 1:
            self._hedge = [Xk[np.argmax(sk)] for Xk, sk in proposals]
            logits = self.gains - self.gains.max()
            probs = np.exp(logits) / np.exp(logits).sum()
            Xk, sk = proposals[int(np.argmax(self.rng.multinomial(1, probs)))]
        else:
            Xk, sk = proposals[0]
        for i in np.argsort(-sk, kind="stable")[:500]:
            point = self.point(self.space.inverse_transform(Xk[i:i + 1])[0])
            if _key(point) not in avoid and _key(point) not in self.evaluated:
                return point
        return self._random(avoid)

    def _model(self, pending: list[list[Any]]) -> tuple[Any, float, float]:
        """The surrogate with lies at the pending points; (model, best y, y scale)."""
        X = self.space.transform(self.Xi)
        y = np.asarray(self.yi)
        lie = {"cl_min": y.min(), "cl_max": y.max(), "cl_mean": y.mean()}[self.liar]
        Xp = self.space.transform(pending) if pending else np.empty((0, X.shape[1]))
        Xa, ya = np.vstack([X, Xp]), np.concatenate([y, np.full(len(Xp), lie)])
        if self.surrogate == "GP":
            if self._gp is None:
                self._gp = _GP(self.space, self.rng.randint(2 ** 31 - 1))
            if self._fitted_on != len(y):
                self._gp.fit(X, y)
                self._fitted_on = len(y)
                if self._hedge:
                    self.gains -= self._gp.predict_std(np.vstack(self._hedge))[0]
                self.models = [self._gp.est]
            gp = self._gp.with_points(Xa, ya) if len(Xp) else self._gp
            # The incumbent is the best posterior mean at a point seen, not the
            # best observation: with noise, the luckiest draw would freeze EI.
            return gp, self._incumbent(gp.predict_std(X)[0]), gp.y_std
        est = cook_estimator(self.surrogate, space=self.space,
                             random_state=self.rng.randint(2 ** 31 - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xa, ya)
        self.models = [est]
        if self._hedge:
            self.gains -= est.predict(np.vstack(self._hedge))
            self._hedge = []
        return est, self._incumbent(y), 1.0

    def _incumbent(self, values: np.ndarray) -> float:
        """The value to improve on, of the points seen (their model means or values)."""
        return float(np.min(values))

    def _best_told(self, k: int) -> np.ndarray:
        """Indexes of the k best told points: the centres of local candidates."""
        return np.argsort(self.yi, kind="stable")[:k]

    def _adjust(self, score: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The acquisition of candidates, as constraints change it (none here)."""
        return score

    def _predict(self, model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(model, _GP):
            return model.predict_std(X)
        if hasattr(model, "quantiles"):  # GBRT; its return_std needs np.in1d, gone in numpy 2.4
            q = model.predict(X, return_quantiles=True)
            at = {v: i for i, v in enumerate(model.quantiles)}
            mean, std = q[:, at[0.5]], (q[:, at[0.84]] - q[:, at[0.16]]) / 2.0
        else:
            mean, std = model.predict(X, return_std=True)
        return mean, np.maximum(std, 1e-9)

    def _candidates(self) -> np.ndarray:
        """Random points of the space and perturbations of the best ones, snapped."""
        X = self.space.transform(self.space.rvs(_N_RANDOM, random_state=self.rng))
        Xi = self.space.transform(self.Xi)
        centres = Xi[self._best_told(3)]
        local = [self._perturb(c, sigma, _N_LOCAL) for c in centres for sigma in _LOCAL_SIGMAS]
        return self._snap(np.vstack([X, *local]))

    def _perturb(self, centre: np.ndarray, sigma: float, n: int) -> np.ndarray:
        X = np.repeat(centre[None, :], n, axis=0)
        for dim, col in zip(self.space.dimensions, self._cols):
            if not isinstance(dim, Categorical):
                X[:, col] = np.clip(X[:, col] + self.rng.normal(0.0, sigma, (n, 1)), 0.0, 1.0)
        return X

    def _snap(self, X: np.ndarray) -> np.ndarray:
        """Round integer dimensions (and one-hot groups) to values they can take."""
        for dim, col in zip(self.space.dimensions, self._cols):
            if isinstance(dim, Real):
                continue
            part = X[:, col] if dim.transformed_size > 1 else X[:, col.start]
            X[:, col] = np.asarray(dim.transform(dim.inverse_transform(part)),
                                   float).reshape(len(X), -1)
        return X

    def _refine(self, gp: _GP, kind: str, X: np.ndarray, score: np.ndarray, y_best: float,
                scale: float) -> tuple[np.ndarray, np.ndarray]:
        """A few rounds of shrinking perturbations around the five best candidates."""
        for sigma in _REFINE_SIGMAS:
            top = X[np.argsort(-score, kind="stable")[:5]]
            new = self._snap(np.vstack([self._perturb(c, sigma, 100) for c in top]))
            mean, std = gp.predict_std(new)
            new_score = self._adjust(_acquisition(kind, mean, std, y_best, xi=self.xi / scale,
                                                  kappa=self.kappa), new)
            X, score = np.vstack([X, new]), np.concatenate([score, new_score])
        return X, score


# ─── several objectives and constraints ──────────────────────────────────────
#
# ParEGO (Knowles, 2006): each suggestion draws random weights, scalarises the
# normalised objectives with an augmented Chebyshev function and asks the usual
# surrogate (GP, RF, ET, GBRT) for the best point of that scalarisation: over
# many suggestions the weights sweep the whole front. Constraints get models of
# their own (a GP of how far each run was from its bound), and the acquisition
# is multiplied by the probability that a point meets them all: the search
# learns where the feasible region lies, rather than being pushed away from
# penalised values it cannot tell from bad ones (a penalty makes the objective's
# surface a cliff the surrogate smooths over, and says nothing of how far off a
# run was).

_RHO = 0.05  # the augmented Chebyshev's weight on the sum: keeps weakly dominated points out


class _GoalOptimizer(_Optimizer):
    """ParEGO over several objectives, with a model of each constraint (see above).

    Told points keep their objective vectors (``Y``) and constraint slacks
    (``S``); each ``ask`` draws weights, puts the scalarised values where the
    one-objective optimiser reads them (``yi``), refits, and weighs the
    acquisition by the probability of meeting every constraint. With no point
    feasible yet, it looks for one: the probability alone.
    """

    def __init__(self, dims: list[Any], *, n_objectives: int, n_constraints: int,
                 **kwargs: Any):
        super().__init__(dims, **kwargs)
        self.n_objectives, self.n_constraints = n_objectives, n_constraints
        self.Y: list[list[float]] = []  # minimised objective values of the told points
        self.S: list[list[float]] = []  # their constraint slacks (<= 0: met)
        self.weights = np.random.RandomState(self.rng.randint(2 ** 31 - 1))
        self._constraint_gps: list[Any] = []
        self._seeking = False  # no told point is feasible: look for one

    def tell(self, point: Sequence[Any], y: float | None = None, *,
             vector: Sequence[float] = (), slack: Sequence[float] = ()) -> None:
        self.Xi.append(list(point))
        self.Y.append([float(v) for v in vector])
        self.S.append([float(v) for v in slack])
        self.yi.append(0.0)  # set from the weights of each ask
        self.evaluated.add(_key(point))

    def ask(self, pending: Iterable[Sequence[Any]] = (), *,
            exploit: bool = False) -> list[Any] | None:
        if len(self.Y) >= 2:
            t0 = time.perf_counter()
            self.yi = self._scalarised()
            self._fitted_on = -1  # other weights, other values: fit again
            self._fit_constraints()
            spent = time.perf_counter() - t0
            point = super().ask(pending, exploit=exploit)
            self.seconds[-1] += spent
            return point
        return super().ask(pending, exploit=exploit)

    def _scalarised(self) -> list[float]:
        """max_i(w_i f_i) + rho sum_i(w_i f_i), objectives normalised to [0, 1] over
        what is known, weights drawn uniformly from the simplex (Knowles, 2006)."""
        Y = np.asarray(self.Y, float)
        if self.n_objectives == 1:
            return Y[:, 0].tolist()
        low, high = Y.min(axis=0), Y.max(axis=0)
        N = (Y - low) / np.where(high > low, high - low, 1.0)
        w = self.weights.dirichlet(np.ones(self.n_objectives))
        return ((w * N).max(axis=1) + _RHO * (w * N).sum(axis=1)).tolist()

    def _feasible(self) -> np.ndarray:
        if not self.n_constraints:
            return np.ones(len(self.Y), bool)
        return np.all(np.asarray(self.S, float) <= 0, axis=1)

    def _fit_constraints(self) -> None:
        """A GP of each constraint's slack: its mean and spread say how likely a point
        meets it."""
        self._constraint_gps = []
        if not self.n_constraints:
            return
        X = self.space.transform(self.Xi)
        S = np.asarray(self.S, float)
        for j in range(self.n_constraints):
            gp = _GP(self.space, self.rng.randint(2 ** 31 - 1))
            with threadpool_limits(1, user_api="blas"):
                gp.fit(X, S[:, j])
            self._constraint_gps.append(gp)

    def feasibility(self, X: np.ndarray) -> np.ndarray:
        """log P(every constraint met) at transformed points."""
        total = np.zeros(len(X))
        for gp in self._constraint_gps:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mean, std = gp.est.predict(np.asarray(X, float), return_std=True)
            total += log_ndtr(-mean / np.maximum(std, 1e-9))
        return total

    def _incumbent(self, values: np.ndarray) -> float:
        feasible = self._feasible()
        self._seeking = bool(self.n_constraints) and not feasible.any()
        values = np.asarray(values)[:len(feasible)]
        return float(values[feasible].min() if feasible.any() else values.min())

    def _best_told(self, k: int) -> np.ndarray:
        return np.lexsort((np.asarray(self.yi), ~self._feasible()))[:k]  # feasible ones first

    def _adjust(self, score: np.ndarray, X: np.ndarray) -> np.ndarray:
        if not self._constraint_gps:
            return score
        log_feasible = self.feasibility(X)
        return log_feasible if self._seeking else score + log_feasible


def _levels(dim: Any) -> list[Any]:
    if isinstance(dim, Categorical):
        return list(dim.categories)
    return list(range(dim.low, dim.high + 1))


def _design(dims: list[Any], n: int, kind: str, seed: int) -> list[list[Any]]:
    """The initial design: n points from a Sobol' sequence, a Latin hypercube or at random."""
    if n <= 0:
        return []
    space = Space(normalize_dimensions(dims))
    if kind == "random":
        raw = space.rvs(n, random_state=seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = cook_initial_point_generator(kind).generate(space.dimensions, n,
                                                              random_state=seed)
    return [[_plain(d, v) for d, v in zip(space.dimensions, p)] for p in raw]


# ─── experiment source (what exp's loop asks and tells) ──────────────────────


@dataclass(slots=True)
class Evaluation:
    """One evaluation: its id, configuration, status and objective value (None if
    unusable); with several objectives or constraints, each value and feasibility."""

    id: int
    params: dict[str, Any]
    status: str
    value: float | None  # with several objectives, the first one's
    seconds: float | None = None
    error: str | None = None
    values: dict[str, float] | None = None  # several objectives: each one's value
    feasible: bool | None = None  # with constraints: whether it met them all


class _Source:
    """Suggests configurations to exp's loop and tells it what came back.

    Ids are evaluation indexes (the lowest not yet in the journal), ``run`` is
    always 1. ``--sync`` hands out a batch of one point per worker and waits
    for the whole batch, telling its results in id order, so a seeded search
    suggests the same points whatever the timing of the runs. With several
    objectives or constraints (``goal.multi``) the optimiser is told each
    result's objective values and constraint slacks, and the source keeps the
    Pareto front for the progress line.
    """

    batching = False  # one evaluation per worker at a time: the next depends on results

    def __init__(self, opt: _Optimizer, mapping: _Mapping, journal: exp._Journal, *,
                 n: int, n_new: int, used_ids: set[int], design: list[list[Any]],
                 goal: exp.Goal, sync: bool, batch: int, retry: list[exp._Task],
                 plotter: _LivePlot | None = None, pruned_as: str = "skip",
                 ref: dict[int, float] | None = None):
        self.opt, self.mapping, self.journal = opt, mapping, journal
        self.n = n  # the budget: evaluations in all, earlier sessions included
        self.left = n_new  # new evaluations still to hand out
        self._ids = (i for i in itertools.count() if i not in used_ids)
        self.design, self.goal = design, goal
        self.objective, self.maximize = goal.objectives[0]
        self.sync, self.batch, self.retry, self.plotter = sync, batch, retry, plotter
        self.pending: dict[int, list[Any]] = {}  # id -> point, handed out, not back yet
        self._held: list[tuple] = []  # sync: results to tell, in id order
        self.history: list[tuple[int, float]] = []  # (id, value) of usable results, in order
        self.best: tuple[float, int] | None = None  # (minimised value, id)
        self.front = _FrontKeeper(goal, ref or {})  # several objectives, or constraints
        self.progress: exp._Progress | None = None
        self.objective_seen = False  # some result had the objective: a missing key is no typo
        self.pruned_as = pruned_as  # how pruned runs are told (PRUNED_AS)

    def take(self, k: int) -> list[exp._Task]:
        if self.sync:
            if self.pending:
                return []  # the batch is still running
            k = min(k, self.batch)
        tasks = []
        while len(tasks) < k and (self.retry or self.left > 0):
            if self.retry:
                task = self.retry.pop(0)
                point = self.mapping.to_point(task.params)
            else:
                cid = next(self._ids)
                point = self._next_point(cid)
                if point is None:  # a finite space with every point pending
                    self._ids = itertools.chain([cid], self._ids)
                    break
                task = exp._Task(cid, 1, self.mapping.to_params(point))
                self.left -= 1
            self.pending[task.id] = point
            tasks.append(task)
        self._show()
        return tasks

    def _next_point(self, cid: int) -> list[Any] | None:
        taken = {_key(p) for p in self.pending.values()} | self.opt.evaluated
        if cid < len(self.design) and _key(self.design[cid]) not in taken:
            return self.design[cid]
        # The last tenth of the budget refines the best region instead of exploring
        # (one objective: several have a front to spread along, not one best).
        exploit = not self.goal.multi and cid >= self.n - max(1, self.n // 10)
        return self.opt.ask(self.pending.values(), exploit=exploit)

    def tell(self, outcome: exp._Outcome) -> None:
        point = self.pending.pop(outcome.task.id)
        told = None  # (minimised objective values, constraint slacks)
        if outcome.status == "pruned":
            told = _pruned_told(outcome.record(), self.pruned_as, self.goal)
        elif outcome.status == "ok":
            record = outcome.record()
            told, reason = self._read(record.get("result"))
            if told is None:
                # Journaled again with the reason; the latest record of an id wins.
                record.update(status="failed", error=f"exp gopt: {reason}\n")
                outcome.status, outcome.line = "failed", (exp._dumps(record) + "\n").encode()
                self.journal.write(outcome.line)
                self._stop_at_typo(record.get("result"), reason)
        full = outcome.status == "ok"  # a pruned run's value is no result to rank
        if self.sync:
            self._held.append((outcome.task.id, point, told, full))
            if not self.pending:
                for held in sorted(self._held, key=lambda h: h[0]):
                    self._record(*held)
                self._held = []
        else:
            self._record(outcome.task.id, point, told, full)
        if self.plotter is not None:
            self.plotter.update(self.history, self.maximize)

    def _read(self, result: Any) -> tuple[tuple[list[float], list[float]] | None, str | None]:
        """What the optimiser is told of an ok result, or (None, why it cannot be)."""
        if self.goal.multi:
            vector, slacks, reason = self.goal.read(result)
        else:
            value, reason = _objective_value(result, self.objective)
            vector = None if value is None else [-value if self.maximize else value]
            slacks = []
        if vector is None:
            return None, reason
        self.objective_seen = True
        return (vector, slacks), None

    def _stop_at_typo(self, result: Any, reason: str | None) -> None:
        """Before any result had the goal's keys, a missing one is a typo, not a bad run:
        stop now rather than spend the budget on it."""
        if self.objective_seen:
            return
        missing = self.goal.missing(result)
        if missing:
            flag = ("--objective" if any(k == missing[0] for k, _ in self.goal.objectives)
                    else "--constraint")
            raise exp.ExpError(f"{flag} {missing[0]!r}: {reason}")
        if not isinstance(result, (dict, int, float)):
            raise exp.ExpError(f"run() returned {exp._printable(repr(result))[:80]} (a "
                               f"{type(result).__name__}); exp gopt minimises a number: "
                               "return a float, or a dict and name its key with "
                               "--objective KEY")

    def _record(self, cid: int, point: list[Any] | None,
                told: tuple[list[float], list[float]] | None, full: bool = True) -> None:
        if point is None:
            return
        if told is None:
            self.opt.mark(point)
            return
        vector, slacks = told
        if self.goal.multi:
            self.opt.tell(point, vector=vector, slack=slacks)
        else:
            self.opt.tell(point, vector[0])
        if not full:
            return
        if self.goal.multi:
            self.front.add(cid, vector, slacks)
            return
        y = vector[0]
        self.history.append((cid, y))
        if self.best is None or y < self.best[0]:
            self.best = (y, cid)

    def replay(self, records: Iterable[dict[str, Any]]) -> int:
        """Tell the optimiser what a journal holds (no re-evaluation); how many told."""
        told = 0
        for r in sorted(records, key=lambda r: r["id"]):
            point = self.mapping.to_point(r.get("params") or {})
            value = _told(r, self.goal, self.pruned_as)
            self._record(r["id"], point, value, r["status"] == "ok")
            told += value is not None and point is not None
        self.objective_seen = self.objective_seen or told > 0
        return told

    def status(self) -> str:
        """Best value (or the front) so far and the optimiser's time per suggestion, for
        the progress line."""
        parts = []
        if self.goal.multi:
            parts.append(self.front.status())
        elif self.best is not None:
            value = -self.best[0] if self.maximize else self.best[0]
            parts.append(f"best {value:.6g} (id {self.best[1]})")
        if self.opt.seconds:
            parts.append(f"optimiser {sum(self.opt.seconds) / len(self.opt.seconds):.3f}s/point")
        return "".join(" | " + p for p in parts if p)

    def _show(self) -> None:
        if self.progress is not None:
            self.progress.extra = self.status()


class _FrontKeeper:
    """The feasible non-dominated results of a search as they come, the range of all
    usable ones (for the reference point) and the hypervolume, for the progress line."""

    def __init__(self, goal: exp.Goal, given: dict[int, float]):
        self.goal, self.given = goal, given
        n_objectives = len(goal.objectives)
        self.front: list[tuple[list[float], int]] = []  # (minimised values, id)
        self.worst = [-math.inf] * n_objectives
        self.best = [math.inf] * n_objectives
        self.usable = self.feasible = 0
        self.history: list[tuple[int, float]] = []  # (usable results so far, hypervolume)

    def add(self, cid: int, vector: list[float], slacks: list[float]) -> None:
        self.usable += 1
        self.worst = [max(a, b) for a, b in zip(self.worst, vector)]
        self.best = [min(a, b) for a, b in zip(self.best, vector)]
        if all(s <= 0 for s in slacks):
            self.feasible += 1
            if not any(_dominates(v, vector) for v, _ in self.front):
                self.front = [(v, i) for v, i in self.front if not _dominates(vector, v)]
                self.front.append((vector, cid))
        self.history.append((self.usable, self.hypervolume()))

    def reference(self) -> list[float]:
        return exp.reference_point(self.worst, self.best, self.given)

    def hypervolume(self) -> float:
        return exp.hypervolume([v for v, _ in self.front], self.reference()) \
            if self.front else 0.0

    def status(self) -> str:
        if not self.usable:
            return ""
        if not self.front:
            return f"no feasible run yet ({self.usable} usable)"
        if len(self.goal.objectives) == 1:
            (value,), cid = min(self.front)
            maximize = self.goal.objectives[0][1]
            return (f"best {-value if maximize else value:.6g} (id {cid}) | "
                    f"{self.feasible} of {self.usable} feasible")
        return f"front {len(self.front)} | hypervolume {self.hypervolume():.6g}"


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is at least as good as b on every (minimised) objective, and better on one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _warm_points(paths: Iterable[str | os.PathLike], mapping: _Mapping,
                 goal: exp.Goal) -> list[tuple[list[Any], list[float], list[float]]]:
    """(point, minimised objective values, constraint slacks) of the ok runs of other
    journals (a grid's included) that lie inside this space."""
    points = []
    for path in paths:
        for r in exp.read_journal(path):
            if r["status"] != "ok":
                continue
            point = mapping.to_point(r.get("params") or {})
            if point is None:
                continue
            try:
                told = _told(r, goal)
            except exp.ExpError as e:
                raise exp.ExpError(f"--warm-start {path}: {e}") from None
            if told is not None:
                points.append((point, *told))
    return points


def _run(setup: exp._Setup, source: _Source, journal: exp._Journal, *, timeout: float | None,
         cancel: bool, quiet: bool, total: int, load_timeout: float, kuma: bool = False,
         progress_every: float | None = None,
         pruning: exp._Pruning = exp._Pruning()) -> tuple[bool, exp._Progress]:
    """exp's pool and loop, with the optimiser's status on the progress line."""
    progress = exp._Progress(total, quiet=quiet, label="gopt ", kuma=kuma, every=progress_every)
    source.progress = progress
    return exp._run_pool(setup, source, journal, timeout=timeout, cancel=cancel, quiet=quiet,
                         total=total, progress=progress, load_timeout=load_timeout,
                         pruning=pruning)


# ─── library API ─────────────────────────────────────────────────────────────


@dataclass
class GoptResult:
    """What ``optimize`` found: the best configuration ``x`` and its value ``fun``.

    ``evaluations`` holds every evaluation of the journal in id order (earlier
    sessions included); ``optimizer_seconds`` the optimiser's time for each
    suggestion of this session, apart from run time. With several objectives
    there is no one best: ``pareto`` holds the feasible evaluations no other
    beats on every objective (sorted by the first objective, best first),
    ``hypervolume`` what they dominate up to ``reference`` (each objective's
    worst value seen plus ``exp.REF_MARGIN`` of its range, unless given), and
    ``x``/``fun`` are the front's best on the first objective.
    """

    x: dict[str, Any] | None
    fun: float | None
    evaluations: list[Evaluation]
    completed: bool
    optimizer_seconds: list[float] = field(default_factory=list)
    journal: Path | None = None
    plots: list[Path] = field(default_factory=list)
    maximize: bool = False
    optimizer_state: dict[str, list] = field(default_factory=dict)  # see journal_state
    objectives: list[tuple[str | None, bool]] = field(default_factory=list)  # (key, maximise)
    constraints: list[str] = field(default_factory=list)
    pareto: list[Evaluation] = field(default_factory=list)
    hypervolume: float | None = None
    reference: dict[str, float] = field(default_factory=dict)

    def top(self, k: int = 5) -> list[Evaluation]:
        """The k best usable (and feasible) evaluations by the (first) objective, best first."""
        ok = [e for e in self.evaluations if e.value is not None and e.feasible is not False]
        return sorted(ok, key=lambda e: e.value, reverse=self.maximize)[:k]

    @property
    def n_ok(self) -> int:
        return sum(e.status == "ok" for e in self.evaluations)


def _check_options(n: int, surrogate: str, acquisition: str, liar: str | None, initial: str,
                   n_initial: int | None, kappa: float, xi: float) -> None:
    def valid(name: str, value: str, choices: tuple[str, ...]) -> None:
        if value not in choices:
            raise exp.ExpError(f"unknown {name} {value!r} (valid {name}s are "
                               f"{', '.join(map(repr, choices))})")
    valid("surrogate", surrogate, SURROGATES)
    valid("acquisition", acquisition, ACQUISITIONS)
    if liar is not None:  # None: the default for the goal (_default_liar)
        valid("liar", liar, LIARS)
    valid("initial design", initial, INITIAL_DESIGNS)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise exp.ExpError(f"n must be >= 1, got {n!r}")
    if n_initial is not None and (not isinstance(n_initial, int) or n_initial < 0):
        raise exp.ExpError(f"--n-initial must be >= 0, got {n_initial!r}")
    if not (math.isfinite(kappa) and kappa >= 0):
        raise exp.ExpError(f"--kappa must be >= 0, got {kappa!r}")
    if not (math.isfinite(xi) and xi >= 0):
        raise exp.ExpError(f"--xi must be >= 0, got {xi!r}")


def optimize(space: exp.ParamSpace | str | os.PathLike, runnable: str, *, n: int = 20,
             workers: int | None = None, surrogate: str = "GP", acquisition: str = "EI",
             kappa: float = 1.96, xi: float = 0.01, n_initial: int | None = None,
             initial: str = "sobol", sync: bool = False, liar: str | None = None,
             objective: str | None = None, maximize: bool = False,
             warm_start: Sequence[str | os.PathLike] = (), plot: bool = False,
             gpus: Any = None, per_gpu: int = 1, gpus_per_run: int = 1,
             timeout: float | None = None, out: str | os.PathLike = ".",
             name: str | None = None, seed: int | None = None, fresh: bool = False,
             retry_failed: bool = False, cancel: bool = False,
             quiet: bool = False, cluster: str | None = None,
             scheduler_file: str | None = None, cluster_security: str | None = None,
             load_timeout: float = 300.0, gpu_max_util: float = exp.GPU_MAX_UTIL,
             gpu_max_mem: float = exp.GPU_MAX_MEM, kuma: bool = False,
             progress_every: float | None = None, prune: str | None = None,
             min_step: float = 1, max_step: float | None = None, eta: int = 3,
             prune_grace: float = 60.0, pruned_as: str = "skip", objectives: Any = None,
             constraints: Sequence[str] = (), ref: Any = None,
             report: bool = False) -> GoptResult:
    """Minimise (or, with ``maximize``, maximise) what ``runnable`` returns over ``space``.

    Runs ``n`` evaluations in all, those already in ``OUT/NAME.jsonl``
    included: calling again with the same arguments replays the journal into
    the optimiser and evaluates only what is missing. A run that fails, times
    out, crashes or returns no finite number is journaled with its reason and
    not told to the optimiser; ``cancel`` stops at the first one instead.
    The journal is ``NAME-gopt.jsonl`` after the param file unless ``name`` is
    given, so a search never meets the grid journal of the same space.
    ``cluster`` (or ``scheduler_file``) runs on a Dask scheduler, as for
    ``exp.run_experiment``. ``prune`` stops runs whose reports of the objective
    are losing (see ``exp.report``); a pruned run is told to the optimiser at
    its last reported value (``pruned_as="last"``) or not at all (``"skip"``, the
    default: measured better, bench/prune.md).

    Several objectives: ``objectives={"acc": "max", "latency_ms": "min"}``
    (keys of the dict result), with ``constraints=["memory_mb <= 8000"]`` on
    other keys (a run that breaks one is ok but infeasible); the search is
    ParEGO with a model of each constraint, pruning watches the first
    objective, and ``ref`` ({key: value}) fixes the hypervolume's reference
    point. Resuming without naming a goal keeps the journal's. ``report``: write
    the HTML report (``NAME.html``) at the end, and when interrupted.
    Raises ``ExpError`` for bad input before any run starts.
    """
    with exp._interruptible():  # SIGTERM and SIGHUP end it as Ctrl-C does, at any moment
        return _optimize(**locals())


def _optimize(space: Any, runnable: str, *, n: int, workers: int | None, surrogate: str,
              acquisition: str, kappa: float, xi: float, n_initial: int | None, initial: str,
              sync: bool, liar: str | None, objective: str | None, maximize: bool,
              warm_start: Sequence[str | os.PathLike], plot: bool, gpus: Any, per_gpu: int,
              gpus_per_run: int, timeout: float | None, out: str | os.PathLike,
              name: str | None, seed: int | None, fresh: bool, retry_failed: bool, cancel: bool,
              quiet: bool, cluster: str | None, scheduler_file: str | None,
              cluster_security: str | None, load_timeout: float, gpu_max_util: float,
              gpu_max_mem: float, kuma: bool, progress_every: float | None, prune: str | None,
              min_step: float, max_step: float | None, eta: int, prune_grace: float,
              pruned_as: str, objectives: Any, constraints: Sequence[str],
              ref: Any, report: bool) -> GoptResult:
    _check_options(n, surrogate, acquisition, liar, initial, n_initial, kappa, xi)
    if pruned_as not in PRUNED_AS:
        raise exp.ExpError(f"pruned_as must be one of {exp._quoted(PRUNED_AS)}, got {pruned_as!r}")
    goal = _goal(objective, maximize, objectives, constraints)
    named = objective is not None or maximize or bool(objectives) or bool(constraints)
    given_ref = _given_ref(ref, goal)
    pruning = exp._Pruning(prune, *goal.objectives[0], min_step, max_step, eta,
                           prune_grace).check()
    if name is None:
        filename = space.filename if isinstance(space, exp.ParamSpace) else os.fspath(space)
        name = (Path(filename).stem if filename else "exp") + "-gopt"
    setup = exp._prepare(space, runnable, workers=workers, gpus=gpus, per_gpu=per_gpu,
                         gpus_per_run=gpus_per_run, out=out, name=name, seed=seed,
                         cluster=cluster, scheduler_file=scheduler_file,
                         cluster_security=cluster_security, gpu_max_util=gpu_max_util,
                         gpu_max_mem=gpu_max_mem)
    mapping = _Mapping(setup.space)
    drawn = _numpy_seed(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2 ** 32)
    extra = {"seed": seed} if seed is not None else {}
    if goal.multi:
        extra.update(goal.header())
    header = exp._header("gopt", setup, optimizer_seed=drawn, objective=goal.objectives[0][0],
                         maximize=goal.objectives[0][1], pruned_as=pruned_as, **extra)
    hint = ("start another that learns from this one with --name NEW "
            f"--warm-start {setup.journal_path}, or use --fresh")
    journal = exp._Journal(setup.journal_path, header, fresh=fresh,
                           hint="a search keeps its space: " + hint)
    try:
        goal = _resumed_goal(journal, goal, named, hint)
        objective, maximize = goal.objectives[0]
        pruning = exp._Pruning(prune, objective, maximize, min_step, max_step, eta,
                               prune_grace).check()
        opt_seed = _numpy_seed(journal.header.get("optimizer_seed", drawn))
        opt = _new_optimizer(mapping.dims, goal, surrogate=surrogate, acquisition=acquisition,
                             kappa=kappa, xi=xi, liar=liar, seed=opt_seed)
        warm = _warm_points(warm_start, mapping, goal)
        for point, *told in warm:
            _tell(opt, point, told)
        pruned_as = journal.header.get("pruned_as", pruned_as)  # as the optimiser was told
        records = exp.read_journal(journal.path) if journal.has_runs else []
        retry = [r for r in records if retry_failed and r["status"] not in ("ok", "pruned")
                 and mapping.to_point(r.get("params") or {}) is not None]
        k = default_n_initial(len(mapping.dims), n) if n_initial is None else n_initial
        source = _Source(
            opt, mapping, journal, n=n, n_new=max(0, n - len(records)),
            used_ids={r["id"] for r in records},
            design=_design(mapping.dims, max(0, k - len(warm)), initial, opt_seed),
            goal=goal, sync=sync, batch=len(setup.slots),
            retry=[exp._Task(r["id"], 1, r["params"]) for r in sorted(retry, key=_by_id)],
            plotter=(_LivePlot(setup.out / f"{setup.name}_convergence.png", objective,
                               multi=goal.multi) if plot else None),
            pruned_as=pruned_as, ref=given_ref)
        source.replay([r for r in records if r not in retry])
        total = source.left + len(source.retry)
        completed, progress = True, None
        if total:
            completed, progress = _run(setup, source, journal, timeout=timeout, cancel=cancel,
                                       quiet=quiet, total=total, load_timeout=load_timeout,
                                       kuma=kuma, progress_every=progress_every, pruning=pruning)
    except BaseException:
        exp._finish(setup, journal, None, None, quiet=True, failed=True)
        if report:
            exp._report_after(journal, quiet)
        raise
    exp._finish(setup, journal, progress, None, quiet=quiet, objective=objective,
                maximize=maximize, rank=not goal.multi, report=report)
    result = _result(setup.journal_path, goal, completed, opt.seconds, given_ref)
    result.optimizer_state = _state(opt)
    if plot:
        history = source.front.history if goal.multi else source.history
        result.plots = [source.plotter.close(history, maximize),
                        *_final_plots(opt, setup.out, setup.name, goal, result)]
        reports = exp.read_reports(setup.journal_path)
        fig = _plot_curves(_pyplot(), reports, exp.read_journal(setup.journal_path),
                           objective or pruning.metric, maximize) if reports else None
        if fig is not None:
            result.plots.append(_save(fig, setup.out / f"{setup.name}_curves.png"))
            _pyplot().close(fig)
    if not quiet:
        print(_report(result), file=sys.stderr)
    return result


def _told(record: dict[str, Any], goal: exp.Goal,
          pruned_as: str = "last") -> tuple[list[float], list[float]] | None:
    """What the optimiser is told of a journal record: (minimised objective values,
    constraint slacks), or None."""
    if record["status"] == "pruned":
        return _pruned_told(record, pruned_as, goal)
    if record["status"] != "ok":
        return None
    result = record.get("result")
    if goal.multi:
        vector, slacks, _ = goal.read(result)
        return None if vector is None else (vector, slacks)
    (objective, maximize), = goal.objectives
    value, _ = _objective_value(result, objective)
    return None if value is None else ([-value if maximize else value], [])


#: How a pruned run informs the optimiser: "skip" (the default), not told, only not
#: suggested again; "last", told at its last reported value as if final (the model
#: then takes early, worse values for results and crowds its suggestions around
#: what it saw of few full runs). bench/bench_prune.py chose the default: with
#: hyperband "skip" was better on 9 of 10 seeds, with ASHA they split 5 to 5.
#: Journals that do not record it were told "last".
PRUNED_AS = ("last", "skip")


def _pruned_told(record: dict[str, Any], pruned_as: str,
                 goal: exp.Goal) -> tuple[list[float], list[float]] | None:
    """A pruned run's last reported metrics, told as its result (when they hold every
    key of the goal), or None."""
    metrics = record.get("result")
    if pruned_as == "skip" or not isinstance(metrics, dict):
        return None
    if not goal.multi:
        (objective, maximize), = goal.objectives
        value = metrics.get(objective or "value")
        if not (exp._is_number(value) and math.isfinite(value)):
            return None
        return [-value if maximize else float(value)], []
    vector, slacks, _ = goal.read(metrics)
    return None if vector is None else (vector, slacks)


def _state(opt: _Optimizer) -> dict[str, list]:
    """The optimiser's knowledge, order-free: told points with their values (objective
    values and constraint slacks with several) and the points not to ask again."""
    told = zip(opt.Xi, opt.Y, opt.S) if isinstance(opt, _GoalOptimizer) else zip(opt.Xi, opt.yi)
    return {"told": sorted(exp._dumps(list(t)) for t in told),
            "evaluated": sorted(exp._dumps(list(k)) for k in opt.evaluated)}


def _default_liar(goal: exp.Goal) -> str:
    """The value assumed at pending points: the best seen for one objective; the mean
    of the scalarised values for several. Each ParEGO suggestion scalarises with other
    weights, and the optimistic lie drew 4 async workers together: on DTLZ2 (4
    workers, 4 seeds, bench/bench_multi.py's problem) the median hypervolume was
    0.263 with cl_min, 0.302 with cl_max, 0.333 with cl_mean."""
    return "cl_mean" if goal.multi else "cl_min"


def _new_optimizer(dims: list[Any], goal: exp.Goal, **kwargs: Any) -> _Optimizer:
    if kwargs.get("liar", "") is None:
        kwargs["liar"] = _default_liar(goal)
    if goal.multi:
        return _GoalOptimizer(dims, n_objectives=len(goal.objectives),
                              n_constraints=len(goal.constraints), **kwargs)
    return _Optimizer(dims, **kwargs)


def journal_state(space: exp.ParamSpace | str | os.PathLike, journal: str | os.PathLike, *,
                  objective: str | None = None, maximize: bool = False,
                  objectives: Any = None, constraints: Sequence[str] | None = None
                  ) -> dict[str, list]:
    """The optimiser state a resume builds from ``journal`` alone (no warm start).

    Compare with ``GoptResult.optimizer_state`` of a search that ran, was
    killed and resumed: they must be equal. The goal is the one the journal
    records unless given.
    """
    space = space if isinstance(space, exp.ParamSpace) else exp.ParamSpace(space)
    mapping = _Mapping(space)
    header, _, _ = exp._read_lines(Path(journal))
    header = header or {}
    if objective is not None or maximize or objectives or constraints:
        goal = _goal(objective, maximize, objectives, constraints or ())
    else:
        goal = exp.Goal.of_header(header)
    opt = _new_optimizer(mapping.dims, goal)
    pruned_as = header.get("pruned_as", "last")
    for r in exp.read_journal(journal):
        point = mapping.to_point(r.get("params") or {})
        if point is None:
            continue
        told = _told(r, goal, pruned_as)
        if told is None:
            opt.mark(point)
        elif goal.multi:
            opt.tell(point, vector=told[0], slack=told[1])
        else:
            opt.tell(point, told[0][0])
    return _state(opt)


def _goal(objective: str | None, maximize: bool, objectives: Any,
          constraints: Iterable[str]) -> exp.Goal:
    """The goal of optimize's arguments: ``objective``/``maximize`` for one, or
    ``objectives`` ({key: "min"|"max"}, [(key, "min"|"max")]) for several."""
    if not objectives:
        return exp.Goal.of([(objective, "max" if maximize else "min")], constraints)
    if objective is not None:
        raise exp.ExpError("give the objective once: objective=KEY or objectives={...}")
    if maximize:
        raise exp.ExpError("maximize is for objective=KEY; give each of objectives its "
                           "direction ({KEY: 'max'}, or --objective KEY:max)")
    return exp.Goal.of(objectives, constraints)


def _by_id(record: dict[str, Any]) -> int:
    return record["id"]


def _given_ref(ref: Any, goal: exp.Goal) -> dict[int, float]:
    """``ref`` ({key: value} or ["KEY=VALUE"]) as {objective index: minimised value}."""
    if not ref:
        return {}
    if len(goal.objectives) < 2:
        raise exp.ExpError("--ref sets the hypervolume's reference point, which only "
                           "several objectives have")
    return exp._ref_values(ref, goal.objectives)


def _resumed_goal(journal: exp._Journal, goal: exp.Goal, named: bool, hint: str) -> exp.Goal:
    """The goal of a resumed search: the journal's when none is named; a goal named that
    differs from a journal's several objectives is another search."""
    if not journal.has_runs:
        return goal
    recorded = exp.Goal.of_header(journal.header)
    if not named:
        return recorded
    if recorded != goal and (recorded.multi or goal.multi):
        raise exp.ExpError(f"{journal.path} is a search to {recorded.describe()}, not to "
                           f"{goal.describe()}: {hint}")
    return goal


def _tell(opt: _Optimizer, point: list[Any], told: Sequence[list[float]]) -> None:
    """Tell a point's (objective values, constraint slacks) as the optimiser takes them."""
    vector, slacks = told
    if isinstance(opt, _GoalOptimizer):
        opt.tell(point, vector=vector, slack=slacks)
    else:
        opt.tell(point, vector[0])


def _result(path: Path, goal: exp.Goal, completed: bool, seconds: list[float],
            given_ref: dict[int, float] | None = None) -> GoptResult:
    objective, maximize = goal.objectives[0]
    evaluations, vectors = [], []
    for r in exp.read_journal(path):
        value = values = feasible = None
        if r["status"] == "ok" and goal.multi:
            vector, slacks, _ = goal.read(r.get("result"))
            if vector is not None:
                values = {k: (-v if m else v) for (k, m), v in zip(goal.objectives, vector)}
                value, feasible = values[objective], all(x <= 0 for x in slacks)
                vectors.append((vector, feasible, len(evaluations)))
        elif r["status"] == "ok":
            value, _ = _objective_value(r.get("result"), objective)
        error = (r.get("error") or "").strip().splitlines()
        evaluations.append(Evaluation(r["id"], r.get("params") or {}, r["status"], value,
                                      r.get("seconds"), error[-1] if error else None,
                                      values, feasible))
    result = GoptResult(None, None, evaluations, completed, list(seconds), path,
                        maximize=maximize, objectives=list(goal.objectives),
                        constraints=[exp._constraint_text(*c) for c in goal.constraints])
    if goal.multi:
        _front_of(result, vectors, goal, given_ref or {})
    best = result.pareto[:1] if goal.multi else result.top(1)
    if best:
        result.x, result.fun = dict(best[0].params), best[0].value
    return result


def _front_of(result: GoptResult, vectors: list[tuple[list[float], bool, int]],
              goal: exp.Goal, given_ref: dict[int, float]) -> None:
    """Fill in the result's Pareto front, hypervolume and reference point."""
    feasible = [(v, i) for v, ok, i in vectors if ok]
    on_front = [feasible[j] for j in exp.pareto_front([v for v, _ in feasible])]
    on_front.sort(key=lambda f: (f[0], result.evaluations[f[1]].id))
    result.pareto = [result.evaluations[i] for _, i in on_front]
    if not vectors:
        return
    ref = exp.reference_point([max(col) for col in zip(*(v for v, _, _ in vectors))],
                              [min(col) for col in zip(*(v for v, _, _ in vectors))], given_ref)
    result.reference = {k or "value": (-r if m else r) for (k, m), r in zip(goal.objectives, ref)}
    result.hypervolume = exp.hypervolume([v for v, _ in on_front], ref)


def _report(result: GoptResult) -> str:
    """The end of the output: optimiser time apart from run time, the best, the top 5."""
    lines = []
    if result.optimizer_seconds:
        s = result.optimizer_seconds
        run_s = sum(e.seconds or 0.0 for e in result.evaluations)
        lines.append(f"optimiser: {len(s)} suggestion(s), {sum(s):.2f}s in all, "
                     f"{sum(s) / len(s):.3f}s each (runs: {run_s:.2f}s of run time in all)")
    if len(result.objectives) > 1 or result.constraints:
        lines += _front_lines(result)
    elif result.x is None:
        lines.append("no usable result yet")
        return "\n".join(lines)
    else:
        lines.append(f"best: {result.fun:.6g} {exp._dumps(result.x)}")
    if result.plots:
        lines.append("plots: " + ", ".join(str(p) for p in result.plots))
    return "\n".join(lines)


#: Rows of the front the summary prints (exp results --pareto prints all).
_FRONT_ROWS = 20


def _front_lines(result: GoptResult) -> list[str]:
    """The summary of a search with several objectives or constraints: the front, sorted
    by the first objective, its hypervolume and reference point."""
    goal = exp.Goal(result.objectives, [exp.parse_constraint(c) for c in result.constraints])
    usable = [e for e in result.evaluations if e.values is not None]
    feasible = sum(bool(e.feasible) for e in usable)
    lines = [f"goal: {goal.describe()}"]
    if not usable:
        return lines + ["no usable result yet"]
    if not result.pareto:
        return lines + [f"no feasible result yet: none of {len(usable)} usable evaluation(s) "
                        "meets every constraint"]
    ref = ", ".join(f"{k}={exp._num(v)}" for k, v in result.reference.items())
    what = "pareto front" if len(goal.objectives) > 1 else "best"
    lines.append(f"{what}: {len(result.pareto)} of {feasible} feasible evaluation(s) "
                 f"({len(usable)} usable); hypervolume {exp._num(result.hypervolume)} "
                 f"(reference point {ref})")
    keys = [k or "value" for k, _ in goal.objectives]
    rows = [{"id": e.id, **e.values, **{f"param.{k}": v for k, v in e.params.items()}}
            for e in result.pareto[:_FRONT_ROWS]]
    columns = ["id", *keys, *dict.fromkeys(c for r in rows for c in r if c.startswith("param."))]
    for r in rows:
        r.update({c[6:]: r[c] for c in columns if c.startswith("param.") and c[6:] not in keys})
    columns = [c[6:] if c.startswith("param.") and c[6:] not in keys else c for c in columns]
    lines.append(exp.Table(columns, rows, {}, {}, len(rows), False, []).format("table"))
    if len(result.pareto) > _FRONT_ROWS:
        lines.append(f"… {len(result.pareto) - _FRONT_ROWS} more (exp results "
                     f"{result.journal} --pareto shows every one)")
    return lines


# ─── plots ───────────────────────────────────────────────────────────────────


def _pyplot() -> Any:
    """matplotlib.pyplot, on the Agg backend when there is no display."""
    import matplotlib
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _interactive(plt: Any) -> bool:
    import matplotlib
    return matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo",
                                                    "template")


def _save(fig: Any, path: Path) -> Path:
    """Write a PNG whole or not at all (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _label(metric: str | None, maximize: bool) -> str:
    """An axis that names the metric and its direction: "accuracy (max)"."""
    return f"{metric or 'result'} ({'max' if maximize else 'min'})"


def _draw_convergence(ax: Any, history: list[tuple[int, float]], maximize: bool,
                      metric: str | None = None) -> None:
    """Best value so far against evaluations (history: (id, minimised value))."""
    ax.clear()
    values = [-y if maximize else y for _, y in sorted(history)]
    best = (np.maximum if maximize else np.minimum).accumulate(values) if values else []
    n = np.arange(1, len(values) + 1)
    ax.plot(n, values, ".", color="0.6", label="evaluation")
    ax.plot(n, best, "-", color="C0", lw=2, label="best so far")
    ax.set_xlabel("evaluation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(_label(metric, maximize))
    ax.set_title(f"Convergence: the best {metric or 'result'} so far")
    ax.grid(alpha=0.3)
    if values:
        ax.legend(loc="best")


def _draw_hypervolume(ax: Any, history: list[tuple[int, float]]) -> None:
    """The front's hypervolume against usable evaluations (each against the reference
    point of its time: the point moves as worse values are seen)."""
    ax.clear()
    n, volume = zip(*history) if history else ((), ())
    ax.plot(n, volume, "-", color="C0", lw=2, drawstyle="steps-post")
    ax.set_xlabel("usable evaluation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("hypervolume of the front (higher is better)")
    ax.set_title("Convergence: the hypervolume of the Pareto front")
    ax.grid(alpha=0.3)


class _LivePlot:
    """The convergence plot, redrawn every few seconds while the search runs."""

    def __init__(self, path: Path, metric: str | None = None, *, multi: bool = False):
        self.path, self.metric, self.multi = path, metric, multi
        self._last = 0.0
        self._plt = _pyplot()
        self._fig, self._ax = self._plt.subplots(figsize=(6.4, 4.2))
        self._live = _interactive(self._plt)
        if self._live:
            self._plt.ion()
            self._plt.show(block=False)

    def update(self, history: list[tuple[int, float]], maximize: bool, *,
               force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _PLOT_EVERY:
            return
        self._last = now
        if self.multi:
            _draw_hypervolume(self._ax, history)
        else:
            _draw_convergence(self._ax, history, maximize, self.metric)
        self._fig.tight_layout()
        _save(self._fig, self.path)
        if self._live:
            self._plt.pause(0.001)

    def close(self, history: list[tuple[int, float]], maximize: bool) -> Path:
        self.update(history, maximize, force=True)
        self._plt.close(self._fig)
        return self.path


def _axis(ax: Any, dim: Any, which: str = "x") -> None:
    """Log scale for a log-uniform dimension; category names for a categorical one."""
    if isinstance(dim, (Real, Integer)) and dim.prior == "log-uniform":
        getattr(ax, f"set_{which}scale")("log")
    if isinstance(dim, Categorical):
        getattr(ax, f"set_{which}ticks")(range(len(dim.categories)))
        getattr(ax, f"set_{which}ticklabels")([str(c) for c in dim.categories])


def _final_plots(opt: _Optimizer, out: Path, name: str, goal: exp.Goal,
                 result: GoptResult | None = None) -> list[Path]:
    """The model's partial dependence (NAME_objective.png) and the evaluations
    (NAME_evaluations.png), in the metric's own sign and name; with several
    objectives, the front (NAME_pareto.png) and a dependence plot of each
    objective (NAME_objective_KEY.png)."""
    if len(opt.yi) < 2:
        return []
    plt = _pyplot()
    paths = []
    if isinstance(opt, _GoalOptimizer) and result is not None and len(goal.objectives) > 1:
        paths += _drawn(plt, lambda: _plot_pareto(plt, result), out / f"{name}_pareto.png")
    views = [(opt, "", goal.objectives[0])] if not isinstance(opt, _GoalOptimizer) else [
        (_one_objective(opt, j), f"_{k}" if len(goal.objectives) > 1 else "", (k, m))
        for j, (k, m) in enumerate(goal.objectives)]
    for j, (view, suffix, (metric, maximize)) in enumerate(views):
        X = view.space.transform(view.Xi)
        if view.surrogate in ("GP", "random"):
            model = _GP(view.space, 0).fit(X, np.asarray(view.yi)).est
        else:
            model = cook_estimator(view.surrogate, space=view.space, random_state=0)
            model.fit(X, view.yi)
        kinds = [("objective", _plot_dependence)] + ([("evaluations", _plot_evaluations)]
                                                     if j == 0 else [])
        for kind, draw in kinds:
            paths += _drawn(plt, lambda: draw(plt, view, model, maximize, metric),
                            out / f"{name}_{kind}{suffix if kind == 'objective' else ''}.png")
    return paths


def _drawn(plt: Any, draw: Callable[[], Any], path: Path) -> list[Path]:
    """[path] of a figure drawn and saved, or [] with a warning: a plot must not lose a
    finished search."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = draw()
        saved = _save(fig, path)
        plt.close(fig)
        return [saved]
    except Exception as e:  # noqa: BLE001
        exp._log().warning("cannot draw %s: %s", path.name, e)
        return []


def _one_objective(opt: _GoalOptimizer, j: int) -> _Optimizer:
    """A one-objective view of a search (the points told, the j-th objective's values),
    for the plots of that objective."""
    view = _Optimizer.__new__(_Optimizer)
    view.__dict__.update(opt.__dict__)
    view.yi = [y[j] for y in opt.Y]
    return view


def _plot_pareto(plt: Any, result: GoptResult) -> Any:
    """Every usable evaluation in objective space, the feasible front drawn as steps
    (two objectives) or marked in each pair of objectives (three or more); infeasible
    evaluations grey crosses."""
    keys = [k or "value" for k, _ in result.objectives]
    signs = {k: m for k, (_, m) in zip(keys, result.objectives)}
    usable = [e for e in result.evaluations if e.values is not None]
    on_front = {e.id for e in result.pareto}
    pairs = list(itertools.combinations(range(len(keys)), 2))
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.axis("off")
    order = {e.id: n for n, e in enumerate(usable)}
    for ax, (a, b) in zip(axes.flat, pairs):
        ka, kb = keys[a], keys[b]
        feasible = [e for e in usable if e.feasible is not False]
        infeasible = [e for e in usable if e.feasible is False]
        if infeasible:
            ax.scatter([e.values[ka] for e in infeasible], [e.values[kb] for e in infeasible],
                       marker="x", color="0.65", s=22, label="infeasible")
        points = ax.scatter([e.values[ka] for e in feasible], [e.values[kb] for e in feasible],
                            c=[order[e.id] for e in feasible], cmap="viridis", s=18,
                            alpha=0.8, label="feasible")
        front = sorted((e for e in feasible if e.id in on_front), key=lambda e: e.values[ka],
                       reverse=signs[ka])
        fx, fy = [e.values[ka] for e in front], [e.values[kb] for e in front]
        if len(keys) == 2 and front:
            ref = result.reference
            sx = [fx[0], *fx, ref.get(ka, fx[-1])]
            sy = [ref.get(kb, fy[0]), *fy, fy[-1]]
            ax.plot(sx, sy, drawstyle="steps-post", color="C3", lw=1.5)
            ax.fill_between(sx, sy, ref.get(kb, fy[0]), step="post", color="C3", alpha=0.07,
                            lw=0, label="dominated (the hypervolume)")
            ax.plot([ref[ka]], [ref[kb]], marker="+", color="0.3", ms=10, ls="none",
                    label="reference point")
        ax.scatter(fx, fy, facecolors="none", edgecolors="C3", s=70, lw=1.5,
                   label=f"Pareto front ({len(front)})" if len(keys) == 2 else "on the front")
        ax.set_xlabel(_label(ka, signs[ka]))
        ax.set_ylabel(_label(kb, signs[kb]))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.colorbar(points, ax=axes.ravel().tolist(), label="evaluation", shrink=0.8)
    hv = "" if result.hypervolume is None else f", hypervolume {exp._num(result.hypervolume)}"
    fig.suptitle(f"Pareto front: {len(result.pareto)} of {len(usable)} usable evaluations{hv}")
    return fig


def _grid_axes(plt: Any, n: int, title: str) -> tuple[Any, Any]:
    size = 3.2 if n <= 3 else 2.4
    fig, axes = plt.subplots(n, n, figsize=(size * n + 1.6, size * n + 0.8), squeeze=False)
    fig.suptitle(title)
    return fig, axes


def _plot_dependence(plt: Any, opt: _Optimizer, model: Any, maximize: bool,
                     metric: str | None) -> Any:
    """Partial dependence of the model: on the diagonal the metric against each
    parameter, averaged over the others; below it, pairs as contours with a colour bar;
    the best evaluation marked."""
    space, dims = opt.space, opt.space.dimensions
    n = len(dims)
    samples = space.transform(space.rvs(n_samples=100, random_state=np.random.RandomState(0)))
    sign = -1.0 if maximize else 1.0
    best = opt.Xi[int(np.argmin(opt.yi))]
    fig, axes = _grid_axes(plt, n, f"Partial dependence of {_label(metric, maximize)}\n"
                                   "(the model's mean over the other parameters)")
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                xi, yi = _dependence(opt, model, samples, [i], 40)
                ax.plot(xi[0], sign * yi, color="C0")
                ax.axvline(_position(dims[i], best[i]), color="C3", ls="--", lw=1,
                           label="best evaluation")
                ax.set_ylabel(_label(metric, maximize))
                _axis(ax, dims[i])
                if i == 0:
                    ax.legend(loc="best", fontsize="small")
            else:
                (xi, yi), zi = _dependence(opt, model, samples, [j, i], 24)
                contour = ax.contourf(xi, yi, sign * zi, levels=12, cmap="viridis_r"
                                      if not maximize else "viridis")
                fig.colorbar(contour, ax=ax, label=metric or "result")
                px = [_position(dims[j], x[j]) for x in opt.Xi]
                py = [_position(dims[i], x[i]) for x in opt.Xi]
                ax.scatter(px, py, c="k", s=6, alpha=0.5)
                ax.scatter([_position(dims[j], best[j])], [_position(dims[i], best[i])],
                           c="C3", s=40, marker="*")
                _axis(ax, dims[j])
                _axis(ax, dims[i], "y")
                ax.set_ylabel(dims[i].name if j == 0 else "")
            ax.set_xlabel(dims[j].name if i == n - 1 else "")
    fig.tight_layout()
    return fig


def _levels_of(dim: Any, n: int) -> tuple[list[Any], list[Any]]:
    """(where to plot, values) of a dimension: its categories, or n points spaced
    evenly on its scale (geometrically for a log-uniform one)."""
    if isinstance(dim, Categorical):
        return list(range(len(dim.categories))), list(dim.categories)
    if dim.prior == "log-uniform":
        values = np.geomspace(dim.low, dim.high, n)
    else:
        values = np.linspace(dim.low, dim.high, n)
    if isinstance(dim, Integer):
        values = np.unique(np.round(values).astype(int))
    return list(values), list(values)


def _dependence(opt: _Optimizer, model: Any, samples: np.ndarray, dims: list[int],
                n: int) -> tuple[list[list[Any]], np.ndarray]:
    """The model's mean prediction over ``samples`` with one or two dimensions set to
    each value of a grid: (the grid's axes, the means; a matrix for two)."""
    axes, values = zip(*(_levels_of(opt.space.dimensions[d], n) for d in dims))
    cols = [opt._cols[d] for d in dims]
    dim_objs = [opt.space.dimensions[d] for d in dims]

    def mean_at(point: tuple) -> float:
        X = samples.copy()
        for dim, col, v in zip(dim_objs, cols, point):
            X[:, col] = np.asarray(dim.transform([v]), float).reshape(1, -1)
        return float(np.mean(model.predict(X)))

    if len(dims) == 1:
        return list(axes), np.array([mean_at((v,)) for v in values[0]])
    return list(axes), np.array([[mean_at((vx, vy)) for vx in values[0]] for vy in values[1]])


def _position(dim: Any, value: Any) -> Any:
    """Where a value sits on a plot's axis: a category by its index."""
    return list(dim.categories).index(value) if isinstance(dim, Categorical) else value


def _plot_evaluations(plt: Any, opt: _Optimizer, model: Any, maximize: bool,
                      metric: str | None) -> Any:
    """Where the search looked: histograms of each parameter, pairs coloured by the
    order of evaluation (and, with one parameter, the metric against it)."""
    dims = opt.space.dimensions
    n = len(dims)
    order = np.arange(len(opt.Xi))
    if n == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        x = [_position(dims[0], p[0]) for p in opt.Xi]
        values = -np.asarray(opt.yi) if maximize else np.asarray(opt.yi)
        points = ax.scatter(x, values, c=order, cmap="viridis")
        fig.colorbar(points, ax=ax, label="evaluation")
        ax.set_xlabel(dims[0].name)
        ax.set_ylabel(_label(metric, maximize))
        _axis(ax, dims[0])
        ax.set_title(f"Evaluations: {metric or 'result'} against {dims[0].name}")
        fig.tight_layout()
        return fig
    fig, axes = _grid_axes(plt, n, "Evaluations: where the search looked (colour: order)")
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            col = [_position(dims[j], p[j]) for p in opt.Xi]
            if i == j:
                if isinstance(dims[i], Categorical):
                    ax.hist(col, bins=np.arange(len(dims[i].categories) + 1) - 0.5,
                            color="C0", rwidth=0.8)
                else:
                    bins = (np.geomspace(dims[i].low, dims[i].high, 21)
                            if dims[i].prior == "log-uniform" else 20)
                    ax.hist(col, bins=bins, color="C0")
                ax.set_ylabel("evaluations" if j == 0 else "")
            else:
                row = [_position(dims[i], p[i]) for p in opt.Xi]
                points = ax.scatter(col, row, c=order, cmap="viridis", s=12)
                _axis(ax, dims[i], "y")
                ax.set_ylabel(dims[i].name if j == 0 else "")
            _axis(ax, dims[j])
            ax.set_xlabel(dims[j].name if i == n - 1 else "")
    fig.colorbar(points, ax=axes[1:, 0].tolist(), label="evaluation", shrink=0.6)
    return fig


def plot_journal(path: str | os.PathLike, *, objective: str | None = None,
                 maximize: bool = False, objectives: Any = None,
                 constraints: Sequence[str] | None = None) -> list[str]:
    """Draw a journal's figures beside it as PNGs; their paths.

    ``NAME_convergence.png`` (a search: the best so far), ``NAME_slices.png`` (the
    metric against each parameter that varies, a point per run and the mean per
    value), when runs reported ``NAME_curves.png`` (learning curves), and with
    several objectives (given, or those the search recorded) ``NAME_pareto.png``.
    """
    path = Path(path)
    experiment = exp._open_experiment(path)
    header = experiment.header
    goal = exp.Goal.of_header(header)
    if objectives:
        goal = exp.Goal.of(objectives, goal.constraints if constraints is None else constraints)
    if objective is None:
        objective, maximize = goal.objectives[0][0], maximize or goal.objectives[0][1]
    records = [r for _, r in experiment.records()]
    stem = path.name.removesuffix(".jsonl")
    plt = _pyplot()
    pngs = []
    if len(goal.objectives) > 1:
        front = _result(path, goal, True, [])
        if front.pareto:
            pngs += _drawn(plt, lambda: _plot_pareto(plt, front),
                           path.with_name(f"{stem}_pareto.png"))
    usable = [(r, v) for r in records if r["status"] == "ok"
              and (v := _value_or_none(r.get("result"), objective)) is not None]
    if header.get("command") == "gopt" and usable:
        history = [(r["id"], -v if maximize else v) for r, v in usable]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        _draw_convergence(ax, history, maximize, objective)
        fig.tight_layout()
        pngs.append(_save(fig, path.with_name(f"{stem}_convergence.png")))
        plt.close(fig)
    varying = exp._varying(experiment.space) if experiment.grid is not None else \
        experiment.space.param_names()
    if usable and varying:
        fig = _plot_slices(plt, experiment.space, usable, varying, maximize, objective)
        pngs.append(_save(fig, path.with_name(f"{stem}_slices.png")))
        plt.close(fig)
    reports = exp.read_reports(path)
    if reports:
        fig = _plot_curves(plt, reports, records, objective, maximize)
        if fig is not None:
            pngs.append(_save(fig, path.with_name(f"{stem}_curves.png")))
            plt.close(fig)
    if not pngs:
        raise exp.ExpError(f"{path}: no usable result to plot"
                           + ("" if objective or not records else
                              " (rank dict results with --objective KEY)"))
    return [str(p) for p in pngs]


def _value_or_none(result: Any, objective: str | None) -> float | None:
    try:
        value, _ = _objective_value(result, objective)
    except exp.ExpError:
        return None
    return value


def _plot_slices(plt: Any, space: exp.ParamSpace, usable: list[tuple[dict, float]],
                 names: list[str], maximize: bool, metric: str | None) -> Any:
    """The metric against each varying parameter: a point per run, the mean per value
    (or per bin of a continuous parameter), the best run marked."""
    n = len(names)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows + 0.6),
                             squeeze=False)
    fig.suptitle(f"{_label(metric, maximize)} against each parameter ({len(usable)} run(s))")
    values = np.array([v for _, v in usable])
    best = int(np.argmax(values) if maximize else np.argmin(values))
    for k, name in enumerate(names):
        ax = axes[k // cols, k % cols]
        x = [r["params"].get(name) for r, _ in usable]
        spec = space.get_spec(name)
        # A list is categories (in their order of value, when numbers); ranges are numbers.
        numeric = spec["type"] != "list" and all(exp._is_number(v) for v in x)
        if numeric:
            xs = np.asarray(x, float)
            ax.scatter(xs, values, s=10, alpha=0.5, color="C0", label="run")
            levels = sorted(set(xs.tolist()))
            if len(levels) <= 30:  # a grid: the mean of each value
                means = [values[xs == lv].mean() for lv in levels]
                ax.plot(levels, means, "-o", color="C1", ms=3, label="mean")
            if spec.get("prior") == "log-uniform" and xs.min() > 0:
                ax.set_xscale("log")
            ax.scatter([xs[best]], [values[best]], c="C3", marker="*", s=90, zorder=3,
                       label="best")
        else:
            known = spec.get("value") if spec["type"] == "list" else None
            order = sorted(set(x), key=lambda v: (not exp._is_number(v), v if exp._is_number(v)
                                                  else str(v))) if known is None else \
                sorted(dict.fromkeys(known), key=lambda v: v if exp._is_number(v) else 0)
            cats = list(dict.fromkeys(str(v) for v in order if v in x))
            pos = np.array([cats.index(str(v)) for v in x], float)
            jitter = np.random.RandomState(0).uniform(-0.15, 0.15, len(pos))
            ax.scatter(pos + jitter, values, s=10, alpha=0.5, color="C0", label="run")
            ax.plot(range(len(cats)), [values[pos == i].mean() for i in range(len(cats))],
                    "o", color="C1", ms=7, label="mean")
            ax.scatter([pos[best]], [values[best]], c="C3", marker="*", s=90, zorder=3,
                       label="best")
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats, rotation=30 if max(map(len, cats)) > 6 else 0)
        ax.set_xlabel(name)
        ax.set_ylabel(_label(metric, maximize) if k % cols == 0 else "")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(loc="best", fontsize="small")
    for k in range(n, rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.tight_layout()
    return fig


def _plot_curves(plt: Any, reports: list[dict], records: list[dict], metric: str | None,
                 maximize: bool) -> Any:
    """Every run's reported metric against its step; pruned runs in their own colour,
    the best finished run drawn last and thick."""
    if metric is None or not any(metric in r["metrics"] for r in reports):
        counts: dict[str, int] = {}
        for r in reports:
            for key in r["metrics"]:
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return None
        metric = max(counts, key=counts.get)
    status = {(r["id"], r["run"]): r["status"] for r in records}
    curves: dict[tuple, list[tuple[float, float]]] = {}
    for r in reports:
        value = r["metrics"].get(metric)
        if exp._is_number(value):
            curves.setdefault((r["id"], r["run"]), []).append((r["step"], value))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    colours = {"ok": "C0", "pruned": "C1"}
    drawn: set[str] = set()
    finals = {k: c[-1][1] for k, c in curves.items() if status.get(k) == "ok"}
    best = (max if maximize else min)(finals, key=finals.get) if finals else None
    for key, curve in curves.items():
        st = status.get(key, "running")
        label = st if st not in drawn else None
        drawn.add(st)
        steps, values = zip(*curve)
        ax.plot(steps, values, color=colours.get(st, "0.6"), lw=0.9,
                alpha=0.5 if st == "pruned" else 0.8, label=label)
    if best is not None:
        steps, values = zip(*curves[best])
        ax.plot(steps, values, color="C3", lw=2.4, label=f"best (id {best[0]} run {best[1]})")
    ax.set_xlabel("step")
    ax.set_ylabel(_label(metric, maximize))
    counts = {s: sum(1 for k in curves if status.get(k, "running") == s) for s in drawn}
    ax.set_title("Learning curves: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


# ─── command line ────────────────────────────────────────────────────────────


# ─── HTML report ─────────────────────────────────────────────────────────────
#
# One self-contained HTML file per journal: the data as JSON in the page (every
# character a browser could read as markup escaped), drawn by the page's own
# script on canvases, so nothing is fetched when it opens and a table of 50,000
# runs stays responsive (only the rows in view are in the document). Python
# computes what needs the models: parameter importance, and for a search the
# surrogate's partial dependence.

#: Points of learning curves a report keeps, all runs together: past it each run's
#: curve is thinned evenly, its last point kept.
_CURVE_POINTS = 200_000
#: Not-ok runs a report lists with their error and log tail (the table has them all).
_FAILURES_SHOWN = 300
#: The end of a failed run's log a report shows, in bytes.
_LOG_TAIL = 4000
#: Ok runs importance is computed from, at most (a random sample beyond: under 1 s
#: at any size, bench/bench_report.py).
_IMPORTANCE_RUNS = 5_000
#: Ok runs from which importance is measured on a held-out quarter; below, on the runs
#: the forest was fitted to (too few to hold any out).
_HELD_OUT_FROM = 100
#: Points the partial dependence's GP is fitted to, at most (the latest).
_DEPENDENCE_POINTS = 500


def report(journal: str | os.PathLike, out: str | os.PathLike | None = None, *,
           objective: str | None = None, maximize: bool | None = None) -> Path:
    """Write one self-contained HTML file that shows ``journal`` (a grid or a search,
    finished or still running) and return its path (``NAME.html`` beside the journal
    unless ``out`` is given). Offline: it fetches nothing when it opens.

    Sections: the experiment (command line, provenance, counts, best runs, time,
    worker use), every run as a sortable, filterable table, the history of the
    objective, parallel coordinates, slices (with a search's partial dependence),
    parameter importance, the Pareto front when there are several objectives,
    learning curves when runs reported, a timeline of the workers, failures.
    ``objective``/``maximize``: the metric to show, by default the journal's.
    """
    path = Path(journal)
    data = _report_data(path, objective, maximize)
    target = Path(out) if out is not None else path.with_name(
        path.name.removesuffix(".jsonl") + ".html")
    page = _REPORT_PAGE.replace("%TITLE%", html.escape(data["meta"]["name"]))
    page = page.replace("%DATA%", _script_json(data))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise exp.ExpError(f"cannot write the report {target}: {e.strerror}") from None
    return target


def _script_json(data: Any) -> str:
    """JSON that can sit inside <script>: no "<", ">" or "&" a parser would read
    ("</script>" in an error message ends nothing), no line separators JS chokes on."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _short(x: Any) -> Any:
    """A number as the report stores it (7 significant digits; None for nan and inf)."""
    if type(x) is float:
        return float(f"{x:.7g}") if math.isfinite(x) else None
    return x


def _cell_value(v: Any) -> Any:
    """A parameter or metric value as JSON the page shows: numbers, text, booleans."""
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is float:
        return _short(v)
    return exp._dumps(v)


def _report_data(path: Path, objective: str | None, maximize: bool | None) -> dict[str, Any]:
    experiment = exp._open_experiment(path)
    header = experiment.header
    goal = exp.Goal.of_header(header)
    if objective is not None:
        goal = exp.Goal([(objective, bool(maximize))], goal.constraints)
    elif maximize is not None and not goal.multi:
        goal = goal._replace(objectives=[(goal.objectives[0][0], bool(maximize))])
    records = sorted((r for _, r in experiment.records()), key=lambda r: (r["id"], r["run"]))
    space = experiment.space
    params = _param_meta(space, records)
    runs, metrics = _run_columns(records, params)
    key, maximize = goal.objectives[0]
    if key is None:
        key = "result" if "result" in metrics else next(iter(metrics), None)
    data = {"meta": _report_meta(path, experiment, len(records)),
            "params": params, "runs": runs, "metrics": list(metrics),
            "objective": key, "maximize": maximize,
            "guessed": goal.objectives[0][0] is None and header.get("command") != "gopt",
            "objectives": [[k, m] for k, m in goal.objectives] if len(goal.objectives) > 1
            else None,
            "constraints": [list(c) for c in goal.constraints]}
    data["importance"] = _importance(params, runs, key)
    data["dependence"] = (_report_dependence(space, records, key, maximize)
                          if header.get("command") == "gopt" else None)
    data["curves"] = _report_curves(path, records)
    data["failures"] = _report_failures(path, records)
    data["pareto"] = _report_pareto(path, goal) if len(goal.objectives) > 1 else None
    return data


def _report_meta(path: Path, experiment: Any, n: int) -> dict[str, Any]:
    h = experiment.header
    import shlex
    git = h.get("git")
    return {"name": path.name.removesuffix(".jsonl"), "journal": str(path),
            "command": h.get("command"), "argv": shlex.join(h["argv"]) if h.get("argv") else None,
            "cwd": h.get("cwd"), "created": h.get("created"), "exp": h.get("exp"),
            "python": h.get("python"), "platform": h.get("platform"), "host": h.get("host"),
            "git": None if not git else git.get("commit", "") + {True: " (dirty)", False: "",
                                                                  None: " (dirty: unknown)"}[
                git.get("dirty")],
            "runnable": h.get("runnable_spec") or h.get("runnable"),
            "runnable_hash": h.get("runnable_hash"),
            "seed": h.get("seed", h.get("optimizer_seed")),
            "repeats": experiment.runs, "size": experiment.space.size if experiment.grid else None,
            "running": experiment.running, "records": n,
            "written": time.strftime("%Y-%m-%d %H:%M:%S%z")}


def _param_meta(space: exp.ParamSpace, records: list[dict]) -> list[dict[str, Any]]:
    """Each parameter as the page draws it: "num" (log axis for a log-uniform prior),
    "cat" (levels, in the space's order) or "fixed"."""
    meta = []
    for name in space.param_names():
        domain = space.domain(name)
        if domain.type is exp.Types.VALUE:
            meta.append({"name": name, "kind": "fixed", "value": _cell_value(domain.values[0])})
            continue
        if domain.type is exp.Types.LIST:
            if len(domain.values) == 1:
                meta.append({"name": name, "kind": "fixed",
                             "value": _cell_value(domain.values[0])})
                continue
            levels = [exp._show(v) for v in domain.values]
            meta.append({"name": name, "kind": "cat", "levels": levels})
            continue
        meta.append({"name": name, "kind": "num", "log": domain.prior == "log-uniform",
                     "int": domain.dtype is exp.DTypes.INT})
    return meta


def _run_columns(records: list[dict], params: list[dict]) -> tuple[dict[str, list], dict]:
    """The runs as columns (the page's table and charts read them by index)."""
    metrics: dict[str, list] = {}
    for r in records:
        result = r.get("result")
        if isinstance(result, dict):
            for k, v in result.items():
                if k not in metrics and exp._is_number(v) and len(metrics) < 50:
                    metrics[k] = []
        elif exp._is_number(result) and "result" not in metrics:
            metrics["result"] = []
    starts = [r["start"] for r in records if exp._is_number(r.get("start"))]
    t0 = min(starts) if starts else 0.0
    workers: dict[str, int] = {}
    errors: dict[str, int] = {}
    cols: dict[str, list] = {k: [] for k in ("id", "run", "status", "seconds", "start", "end",
                                            "worker", "gpu", "step", "error")}
    pcols = {p["name"]: [] for p in params if p["kind"] != "fixed"}
    levels = {p["name"]: {v: i for i, v in enumerate(p["levels"])} for p in params
              if p["kind"] == "cat"}
    status_index = {s: i for i, s in enumerate(exp.STATUSES)}
    for r in records:
        cols["id"].append(r["id"])
        cols["run"].append(r["run"])
        cols["status"].append(status_index.get(r["status"], 2))
        cols["seconds"].append(_short(float(r["seconds"])) if exp._is_number(r.get("seconds"))
                               else None)
        for k in ("start", "end"):
            v = r.get(k)
            cols[k].append(round(v - t0, 3) if exp._is_number(v) else None)
        label = "" if r.get("worker") is None else str(r["worker"])
        cols["worker"].append(workers.setdefault(label, len(workers)))
        cols["gpu"].append(None if r.get("gpu") is None else str(r["gpu"]))
        cols["step"].append(_short(r["step"]) if exp._is_number(r.get("step")) else None)
        error = (r.get("error") or "").strip().splitlines()
        cols["error"].append(errors.setdefault(error[-1][:300], len(errors)) if error else None)
        values = r.get("params") or {}
        for name, col in pcols.items():
            v = values.get(name)
            if name in levels:
                shown = exp._show(v)
                if shown not in levels[name]:  # a value the space no longer has
                    levels[name][shown] = len(levels[name])
                col.append(None if name not in values else levels[name][shown])
            else:
                col.append(_cell_value(v))
        result = r.get("result")
        for k, col in metrics.items():
            v = result.get(k) if isinstance(result, dict) else (result if k == "result" else None)
            col.append(_short(float(v)) if exp._is_number(v) else None)
    for p in params:
        if p["kind"] == "cat":
            p["levels"] = list(levels[p["name"]])
    cols["params"] = pcols
    cols["metrics"] = metrics
    cols["workers"] = list(workers)
    cols["errors"] = list(errors)
    cols["statuses"] = list(exp.STATUSES)
    return cols, metrics


def _encoded(params: list[dict], runs: dict, key: str | None) -> tuple[list[str], Any, Any]:
    """(names, X, y) of the ok runs with a finite objective and every parameter set:
    log-uniform parameters as their logarithm, categories as their index."""
    names = [p["name"] for p in params if p["kind"] != "fixed"]
    y = runs["metrics"].get(key) if key else None
    if not names or y is None:
        return names, None, None
    logs = {p["name"] for p in params if p.get("log")}
    rows, values = [], []
    for i, status in enumerate(runs["status"]):
        if status != 0 or y[i] is None:
            continue
        row = [runs["params"][n][i] for n in names]
        if any(not exp._is_number(v) for v in row):
            continue
        rows.append([math.log10(v) if n in logs and v > 0 else float(v)
                     for n, v in zip(names, row)])
        values.append(y[i])
    return names, np.asarray(rows, float), np.asarray(values, float)


def _importance(params: list[dict], runs: dict, key: str | None) -> dict[str, Any] | None:
    """Permutation importance of each parameter for the objective: a forest of extra
    trees fitted to three quarters of the ok runs, each parameter's column shuffled
    in the other quarter, the drop in R² its importance (mean and sd of 5 shuffles)."""
    names, X, y = _encoded(params, runs, key)
    if X is None or len(y) < 8 or np.ptp(y) == 0:
        return {"reason": "too few ok runs with the objective (8 are needed) or a constant "
                          "objective"} if names else None
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.inspection import permutation_importance
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))[:_IMPORTANCE_RUNS]
    held_out = len(order) >= _HELD_OUT_FROM
    cut = int(len(order) * 0.75) if held_out else len(order)
    train, test = order[:cut], (order[cut:] if held_out else order)
    forest = ExtraTreesRegressor(n_estimators=32, min_samples_leaf=3, random_state=0, n_jobs=1)
    with threadpool_limits(1):
        forest.fit(X[train], y[train])
        r2 = float(forest.score(X[test], y[test]))
        found = permutation_importance(forest, X[test], y[test], n_repeats=5, random_state=0,
                                       n_jobs=1)
    return {"r2": _short(r2), "runs": int(len(y)), "sample": int(len(order)), "names": names,
            "held_out": held_out,
            "mean": [_short(float(v)) for v in found.importances_mean],
            "sd": [_short(float(v)) for v in found.importances_std]}


def _report_dependence(space: exp.ParamSpace, records: list[dict], key: str | None,
                       maximize: bool) -> dict[str, Any] | None:
    """A search's surrogate (a GP of the objective) as partial dependence on each
    parameter: the model's mean over the others, on 40 values of it."""
    try:
        mapping = _Mapping(space)
    except exp.ExpError:
        return None
    points, ys = [], []
    for r in records:
        if r["status"] != "ok":
            continue
        value, _ = exp._number_at(r.get("result"), key if key != "result" else None)
        point = mapping.to_point(r.get("params") or {})
        if value is not None and point is not None:
            points.append(point)
            ys.append(-value if maximize else value)
    if len(points) < 5 or np.ptp(ys) == 0:
        return None
    points, ys = points[-_DEPENDENCE_POINTS:], ys[-_DEPENDENCE_POINTS:]
    opt = _Optimizer(mapping.dims)
    with threadpool_limits(1, user_api="blas"):
        model = _GP(opt.space, 0).fit(opt.space.transform(points), np.asarray(ys)).est
        samples = opt.space.transform(opt.space.rvs(n_samples=100,
                                                    random_state=np.random.RandomState(0)))
        curves = {}
        for i, dim in enumerate(opt.space.dimensions):
            axis, means = _dependence(opt, model, samples, [i], 40)
            curves[dim.name] = {"x": [_short(float(v)) if not isinstance(dim, Categorical)
                                      else int(v) for v in axis[0]],
                                "y": [_short(float(-m if maximize else m)) for m in means]}
    return curves


def _report_curves(path: Path, records: list[dict]) -> dict[str, Any] | None:
    """Learning curves: per run, its steps and each metric it reported, thinned to
    _CURVE_POINTS in all."""
    reports = exp.read_reports(path)
    if not reports:
        return None
    index = {(r["id"], r["run"]): i for i, r in enumerate(records)}
    by_run: dict[int, list[dict]] = {}
    for rep in reports:
        i = index.get((rep["id"], rep.get("run")))
        if i is not None and exp._is_number(rep.get("step")) and isinstance(rep.get("metrics"), dict):
            by_run.setdefault(i, []).append(rep)
    keep = max(2, _CURVE_POINTS // max(1, len(by_run)))
    metrics: dict[str, None] = {}
    runs = []
    for i, reps in by_run.items():
        reps.sort(key=lambda rep: rep["step"])
        if len(reps) > keep:
            picks = np.unique(np.linspace(0, len(reps) - 1, keep).round().astype(int))
            reps = [reps[j] for j in picks]
        values: dict[str, list] = {}
        for j, rep in enumerate(reps):
            for k, v in rep["metrics"].items():
                if exp._is_number(v):
                    metrics.setdefault(k, None)
                    values.setdefault(k, [None] * len(reps))[j] = _short(float(v))
        runs.append({"run": i, "steps": [_short(rep["step"]) for rep in reps], "values": values})
    return {"metrics": list(metrics), "runs": runs}


def _report_failures(path: Path, records: list[dict]) -> dict[str, Any]:
    """The not-ok runs grouped by the last line of their error: for each, the runs, the
    whole error of the first and the tail of its log file."""
    logs = path.with_name(path.name.removesuffix(".jsonl") + ".logs")
    groups: dict[str, dict[str, Any]] = {}
    count = 0
    for i, r in enumerate(records):
        if r["status"] in ("ok", "pruned"):
            continue
        count += 1
        error = (r.get("error") or "").strip()
        last = error.splitlines()[-1][:300] if error else f"({r['status']}, no error text)"
        group = groups.get(last)
        if group is None:
            if len(groups) >= _FAILURES_SHOWN:
                continue
            group = groups[last] = {"last": last, "count": 0, "runs": [], "error": error[-8000:],
                                    **_log_tail(logs / f"{r['id']}-{r['run']}.log")}
        group["count"] += 1
        if len(group["runs"]) < 200:
            group["runs"].append(i)
    return {"count": count, "groups": sorted(groups.values(), key=lambda g: -g["count"])}


def _log_tail(log: Path) -> dict[str, Any]:
    """{"log": the end of a run's log, "log_path"}, or None for both without one."""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _LOG_TAIL))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return {"log": None, "log_path": None}
    if size > _LOG_TAIL:
        tail = "…" + tail.split("\n", 1)[-1]
    return {"log": tail, "log_path": str(log)}


def _report_pareto(path: Path, goal: exp.Goal) -> dict[str, Any] | None:
    try:
        front = exp.pareto(path, objectives=[(k, "max" if m else "min")
                                             for k, m in goal.objectives],
                           constraints=[exp._constraint_text(*c) for c in goal.constraints])
    except exp.ExpError:
        return None
    return {"front": [row["id"] for row in front.table.rows],
            "hypervolume": _short(front.hypervolume),
            "reference": {k: _short(v) for k, v in front.reference.items()},
            "feasible": front.feasible, "usable": front.usable}

def main(args: argparse.Namespace) -> int:
    """``exp gopt``: parsed by ``exp.main``; 0 when every run was ok, else 1."""
    gpus = exp._gpus_arg(args)
    found = exp.objectives_of(args.objective, args.maximize)
    (objective, maximize), objectives = found[0], None
    if len(found) > 1:
        objective, maximize = None, False
        objectives = [(k, "max" if m else "min") for k, m in found]
    result = optimize(
        args.params, args.module, n=args.n, workers=args.workers, surrogate=args.surrogate,
        acquisition=args.acquisition, kappa=args.kappa, xi=args.xi, n_initial=args.n_initial,
        initial=args.initial, sync=args.sync, liar=args.liar, objective=objective,
        maximize=maximize, objectives=objectives, constraints=args.constraint, ref=args.ref,
        report=args.report,
        warm_start=args.warm_start, plot=args.plot, gpus=gpus,
        per_gpu=args.per_gpu, gpus_per_run=args.gpus_per_run, timeout=args.timeout,
        out=args.out, name=args.name, seed=args.seed, fresh=args.fresh,
        retry_failed=args.retry_failed, cancel=args.cancel, quiet=args.quiet,
        cluster=args.cluster, scheduler_file=args.scheduler_file,
        cluster_security=args.cluster_security, load_timeout=args.load_timeout,
        gpu_max_util=args.gpu_max_util, gpu_max_mem=args.gpu_max_mem, kuma=args.kuma,
        progress_every=args.progress_every, prune=args.prune, min_step=args.min_step,
        max_step=args.max_step, eta=args.eta, prune_grace=args.prune_grace)
    all_ok = result.completed and all(e.status in ("ok", "pruned") for e in result.evaluations)
    return exp.EXIT_OK if all_ok else exp.EXIT_NOT_OK


#: The report's page: %TITLE% and %DATA% (see _script_json) are filled in; the rest
#: is the page's own style and script, drawn from the data when it opens.
_REPORT_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE% · exp report</title>
<style>
:root{--fg:#1d232b;--muted:#5f6b78;--line:#e2e6eb;--bg:#f5f6f8;--card:#fff;--accent:#1c6fd1}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif;color:var(--fg);background:var(--bg)}
.top{background:#1d232b;color:#fff;padding:16px 28px 14px}
.top h1{margin:0;font-size:20px;font-weight:600}
.top .sub{color:#aeb8c4;font-size:13px;margin-top:2px}
.live{display:inline-block;background:#e8890c;color:#fff;border-radius:4px;padding:1px 8px;margin-left:10px;font-size:12px;vertical-align:2px}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:7px 28px;display:flex;gap:16px;flex-wrap:wrap;font-size:13px}
nav a{color:var(--accent);text-decoration:none}
main{max-width:1260px;margin:0 auto;padding:8px 28px 60px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px;font-weight:600}
h3{font-size:13.5px;margin:14px 0 6px;font-weight:600}
.note{color:var(--muted);font-size:12.5px;margin:4px 0 8px}
.cols{display:flex;gap:28px;flex-wrap:wrap}
.cols>div{min-width:260px;flex:1}
table.kv td{padding:2px 14px 2px 0;vertical-align:top}
table.kv td:first-child{color:var(--muted);white-space:nowrap}
table.kv td:last-child{word-break:break-all}
table.plain{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.plain th,table.plain td{padding:3px 12px 3px 0;text-align:left;white-space:nowrap;border-bottom:1px solid #eef0f3}
table.plain th{color:var(--muted);font-weight:600;font-size:12.5px}
td.n,th.n{text-align:right}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-size:12.5px;margin:0 6px 4px 0}
.controls{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:0 0 10px}
.controls label{font-size:13px;white-space:nowrap}
input[type=search]{padding:4px 8px;border:1px solid #cfd5dc;border-radius:5px;min-width:240px;font:inherit}
select,button{font:inherit;font-size:13px;padding:2px 6px;border:1px solid #cfd5dc;border-radius:5px;background:#fff}
button.on{background:var(--accent);color:#fff;border-color:var(--accent)}
.vt{height:460px;overflow:auto;border:1px solid var(--line);border-radius:5px}
.vt table{border-collapse:collapse;width:max-content;min-width:100%;font-variant-numeric:tabular-nums;font-size:13px}
.vt th{position:sticky;top:0;background:#f1f3f5;cursor:pointer;user-select:none;z-index:1;height:28px}
.vt th,.vt td{padding:0 10px;white-space:nowrap;text-align:left;border-bottom:1px solid #eff1f3;height:24px;max-width:420px;overflow:hidden;text-overflow:ellipsis}
.vt th.sorted{color:var(--accent)}
.vt tr:hover td{background:#f4f8fd}
.dot{display:inline-block;width:8px;height:8px;border-radius:4px;margin-right:5px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
canvas{display:block}
.tip{position:fixed;pointer-events:none;background:rgba(22,26,32,.93);color:#fff;padding:6px 9px;border-radius:5px;font-size:12px;white-space:pre;z-index:20;display:none;max-width:520px;overflow:hidden}
details{border-bottom:1px solid var(--line);padding:6px 0}
summary{cursor:pointer}
pre{background:#f8f9fa;border:1px solid var(--line);border-radius:5px;padding:8px 10px;overflow:auto;max-height:300px;font-size:12px;margin:6px 0;white-space:pre-wrap;word-break:break-word}
.err{color:#c92a2a}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
</style>
</head>
<body>
<script type="application/json" id="exp-data">%DATA%</script>
<div class="top"><h1 id="title"></h1><div class="sub" id="subtitle"></div></div>
<nav id="nav"></nav>
<main id="main"></main>
<div class="tip" id="tip"></div>
<script>
"use strict";
(function () {
performance.mark("exp:start");
const D = JSON.parse(document.getElementById("exp-data").textContent);
const R = D.runs, N = R.id.length, STATUSES = R.statuses;
const SCOL = {ok: "#2f9e44", pruned: "#e8890c", failed: "#d6336c", timeout: "#7048e8", crashed: "#862e9c"};
const VARY = D.params.filter(p => p.kind !== "fixed");
const FIXED = D.params.filter(p => p.kind === "fixed");
const MAIN = document.getElementById("main"), NAV = document.getElementById("nav");
const TIP = document.getElementById("tip");

// ── helpers ──────────────────────────────────────────────────────────────
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.appendChild(typeof kid === "string" || typeof kid === "number" ? document.createTextNode(String(kid)) : kid);
  }
  return e;
}
function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e7)) return v.toExponential(3).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(6)));
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return String(v);
}
function duration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = Math.round(s % 60);
  return h ? `${h} h ${m} min` : `${m} min ${sec} s`;
}
function statusOf(i) { return STATUSES[R.status[i]]; }
function pval(p, i) {  // what a parameter shows for run i
  const v = R.params[p.name][i];
  return p.kind === "cat" && v !== null ? p.levels[v] : v;
}
function metricCol(name) { return R.metrics[name] || null; }
function better(a, b, maximize) { return maximize ? a > b : a < b; }
function tipShow(ev, text) {
  TIP.textContent = text; TIP.style.display = "block";
  const x = Math.min(ev.clientX + 14, window.innerWidth - TIP.offsetWidth - 8);
  const y = Math.min(ev.clientY + 14, window.innerHeight - TIP.offsetHeight - 8);
  TIP.style.left = x + "px"; TIP.style.top = y + "px";
}
function tipHide() { TIP.style.display = "none"; }
function runText(i, extra) {
  const lines = [`id ${R.id[i]} run ${R.run[i]} · ${statusOf(i)}`];
  if (extra) lines.push(extra);
  for (const p of VARY) lines.push(`${p.name} = ${fmt(pval(p, i))}`);
  return lines.join("\n");
}
function select(options, value, onchange) {
  const s = el("select", {onchange: () => onchange(s.value)});
  for (const o of options) s.appendChild(el("option", {value: o, text: o, selected: o === value}));
  return s;
}
function extent(arr, idx, positive) {
  let lo = Infinity, hi = -Infinity;
  for (const i of idx) {
    const v = arr[i];
    if (typeof v !== "number" || (positive && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { const d = positive ? lo * 0.5 : (Math.abs(lo) * 0.05 || 0.5); return [lo - d, hi + d]; }
  return [lo, hi];
}
function range(n) { const a = new Array(n); for (let i = 0; i < n; i++) a[i] = i; return a; }
const VIRIDIS = [[68,1,84],[72,40,120],[62,74,137],[49,104,142],[38,130,142],[31,158,137],[53,183,121],[109,205,89],[180,222,44],[253,231,37]];
function viridis(t) {
  t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - k, a = VIRIDIS[k], b = VIRIDIS[k + 1];
  return `rgb(${Math.round(a[0] + f * (b[0] - a[0]))},${Math.round(a[1] + f * (b[1] - a[1]))},${Math.round(a[2] + f * (b[2] - a[2]))})`;
}

// ── scales and axes ──────────────────────────────────────────────────────
function niceTicks(lo, hi, n) {
  const span = hi - lo, raw = span / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}
function makeScale(kind, lo, hi, a, b, levels) {
  // kind: "lin" | "log" | "cat"; maps a value onto [a, b] pixels
  if (kind === "cat") {
    const n = levels.length, f = v => a + (b - a) * (n === 1 ? 0.5 : (v + 0.5) / n);
    const every = Math.max(1, Math.ceil(n / 12));
    return {kind, f, ticks: levels.map((l, i) => [i, l]).filter((_, i) => i % every === 0), lo: -0.5, hi: n - 0.5};
  }
  if (kind === "log") {
    const L = Math.log10(lo), H = Math.log10(hi), f = v => a + (b - a) * (Math.log10(v) - L) / (H - L || 1);
    let ticks = [];
    for (let e = Math.floor(L); e <= Math.ceil(H); e++) for (const m of (H - L < 2.5 ? [1, 2, 5] : [1])) {
      const v = m * Math.pow(10, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push([v, fmt(v)]);
    }
    if (ticks.length < 2) ticks = [[lo, fmt(lo)], [hi, fmt(hi)]];
    return {kind, f, ticks, lo, hi};
  }
  const f = v => a + (b - a) * (v - lo) / (hi - lo || 1);
  return {kind, f, ticks: niceTicks(lo, hi, 5).map(v => [v, fmt(v)]), lo, hi};
}
function paramScale(p, idx, a, b) {
  if (p.kind === "cat") return makeScale("cat", 0, 0, a, b, p.levels);
  const col = R.params[p.name];
  const log = p.log && idx.every(i => col[i] === null || col[i] > 0);
  const [lo, hi] = extent(col, idx, log);
  if (log) { const pad = Math.pow(hi / lo, 0.04); return makeScale("log", lo / pad, hi * pad, a, b); }
  const pad = (hi - lo) * 0.04, s = makeScale("lin", lo - pad, hi + pad, a, b);
  if (p.int) {  // integers: a tick per integer when few, never between them
    s.ticks = hi - lo <= 12 ? range(Math.round(hi - lo) + 1).map(k => [lo + k, fmt(lo + k)])
      : s.ticks.filter(([v]) => Number.isInteger(v));
  }
  return s;
}
function valueScale(col, idx, a, b) {
  const [lo, hi] = extent(col, idx, false), pad = (hi - lo) * 0.05;
  return makeScale("lin", lo - pad, hi + pad, a, b);
}
function canvas(w, h) {
  const c = el("canvas"), dpr = window.devicePixelRatio || 1;
  c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
  c.style.width = w + "px"; c.style.height = h + "px";
  const g = c.getContext("2d"); g.scale(dpr, dpr);
  g.font = "11px system-ui, sans-serif";
  return [c, g];
}
// A 2-D chart: axes, grid, labels; draw(g, X, Y) paints; hover: nearest point
function chart(o) {
  const w = o.width, h = o.height, m = {l: 62, r: 16, t: o.title ? 24 : 10, b: 42};
  const [c, g] = canvas(w, h);
  const X = o.x(m.l, w - m.r), Y = o.y(h - m.b, m.t);
  g.strokeStyle = "#eceff2"; g.fillStyle = "#5f6b78"; g.lineWidth = 1;
  g.textAlign = "center"; g.textBaseline = "top";
  for (const [v, label] of X.ticks) {
    const px = X.f(v);
    g.beginPath(); g.moveTo(px, m.t); g.lineTo(px, h - m.b); g.stroke();
    g.fillText(String(label).slice(0, 14), px, h - m.b + 5);
  }
  g.textAlign = "right"; g.textBaseline = "middle";
  for (const [v, label] of Y.ticks) {
    const py = Y.f(v);
    g.beginPath(); g.moveTo(m.l, py); g.lineTo(w - m.r, py); g.stroke();
    g.fillText(String(label).slice(0, 10), m.l - 6, py);
  }
  g.strokeStyle = "#9aa5b1"; g.strokeRect(m.l, m.t, w - m.l - m.r, h - m.t - m.b);
  g.fillStyle = "#1d232b"; g.textAlign = "center"; g.textBaseline = "bottom";
  g.fillText(o.xlabel || "", (m.l + w - m.r) / 2, h - 4);
  if (o.title) { g.font = "600 12px system-ui, sans-serif"; g.fillText(o.title, (m.l + w - m.r) / 2, 17); g.font = "11px system-ui, sans-serif"; }
  g.save(); g.translate(13, (m.t + h - m.b) / 2); g.rotate(-Math.PI / 2); g.textBaseline = "middle";
  g.fillText(o.ylabel || "", 0, 0); g.restore();
  g.save(); g.beginPath(); g.rect(m.l, m.t, w - m.l - m.r, h - m.t - m.b); g.clip();
  const pts = o.draw(g, X, Y) || null;
  g.restore();
  if (pts && o.hover) {
    c.addEventListener("mousemove", ev => {
      const r = c.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
      let best = -1, bd = 144;
      for (let k = 0; k < pts.x.length; k++) {
        const dx = pts.x[k] - mx, dy = pts.y[k] - my, d = dx * dx + dy * dy;
        if (d < bd) { bd = d; best = k; }
      }
      if (best >= 0) tipShow(ev, o.hover(pts.i[best])); else tipHide();
    });
    c.addEventListener("mouseleave", tipHide);
  }
  return c;
}
function dotsAt(g, xs, ys, color, r) {
  g.fillStyle = color; g.beginPath();
  for (let k = 0; k < xs.length; k++) { g.moveTo(xs[k] + r, ys[k]); g.arc(xs[k], ys[k], r, 0, 6.2832); }
  g.fill();
}
function legend(items) {
  return el("div", {class: "note"}, items.map(([color, label]) =>
    el("span", {style: "margin-right:14px"}, el("span", {class: "dot", style: `background:${color}`}), label)));
}

// ── derived data ─────────────────────────────────────────────────────────
const ALL = range(N);
const OBJ = D.objective, MAX = D.maximize;
const objCol = OBJ ? metricCol(OBJ) : null;
function usable(col, statuses) {
  const keep = new Set(statuses || ["ok"]);
  return ALL.filter(i => keep.has(statusOf(i)) && col && typeof col[i] === "number");
}
function bestRuns(k) {
  if (!objCol) return [];
  const ok = usable(objCol);
  if (D.meta.repeats > 1) {  // rank configurations by their mean
    const groups = new Map();
    for (const i of ok) { const g = groups.get(R.id[i]) || []; g.push(i); groups.set(R.id[i], g); }
    const rows = [...groups.values()].map(g => ({i: g[0], runs: g.length, v: g.reduce((s, j) => s + objCol[j], 0) / g.length}));
    rows.sort((a, b) => MAX ? b.v - a.v : a.v - b.v);
    return rows.slice(0, k);
  }
  ok.sort((a, b) => MAX ? objCol[b] - objCol[a] : objCol[a] - objCol[b]);
  return ok.slice(0, k).map(i => ({i, runs: 1, v: objCol[i]}));
}
function counts() {
  const c = Object.fromEntries(STATUSES.map(s => [s, 0]));
  for (let i = 0; i < N; i++) c[statusOf(i)]++;
  return c;
}
function slotLabel(i) {
  const w = R.workers[R.worker[i]], gpu = R.gpu[i];
  return (w === "" ? "driver" : /^\d+$/.test(w) ? "worker " + w : w) + (gpu !== null ? ` · GPU ${gpu}` : "");
}

// ── sections ─────────────────────────────────────────────────────────────
const SECTIONS = [];
function section(id, title, build) {
  const sec = el("section", {id: id}, el("h2", {text: title}));
  MAIN.appendChild(sec);
  NAV.appendChild(el("a", {href: "#" + id, text: title}));
  try { build(sec, Math.max(320, sec.clientWidth - 42)); }
  catch (e) { sec.appendChild(el("p", {class: "err", text: "This section could not be drawn: " + e})); console.error(e); }
  SECTIONS.push(id);
}
function header() {
  const M = D.meta;
  document.getElementById("title").textContent = `${M.name}`;
  const sub = document.getElementById("subtitle");
  sub.textContent = `exp ${M.command || "?"} · ${N} run(s) in the journal · written ${M.written}`;
  if (M.running) sub.appendChild(el("span", {class: "live", text: "still running: what the journal held when written"}));
}
function overview(sec, width) {
  const M = D.meta, c = counts();
  sec.appendChild(el("div", {}, STATUSES.filter(s => c[s]).map(s =>
    el("span", {class: "badge", style: `background:${SCOL[s]}`, text: `${c[s]} ${s}`})),
    N ? null : el("span", {class: "note", text: "no run recorded yet"})));
  const kv = [["command line", M.argv ? "exp " + M.argv.replace(/^\S*exp(\.py)?\s/, "") : null], ["folder", M.cwd],
              ["journal", M.journal], ["created", M.created], ["runnable", M.runnable && `${M.runnable} (source ${M.runnable_hash})`],
              ["git", M.git], ["seed", M.seed], ["exp / python", `${M.exp} / ${M.python}`], ["platform", M.platform], ["host", M.host],
              ["repeats", M.repeats > 1 ? M.repeats : null], ["grid size", M.size]];
  if (FIXED.length) kv.push(["fixed", FIXED.map(p => `${p.name}=${fmt(p.value)}`).join("  ")]);
  if (D.objectives) kv.push(["objectives", D.objectives.map(([k, m]) => `${m ? "max" : "min"} ${k}`).join(", ")]);
  else if (OBJ) kv.push(["objective", `${MAX ? "max" : "min"} ${OBJ}` + (D.guessed ? " (the journal names none: exp report JOURNAL --objective KEY [--maximize] picks it)" : "")]);
  if (D.constraints.length) kv.push(["constraints", D.constraints.map(c => c.join(" ")).join(", ")]);
  const left = el("div", {}, el("h3", {text: "Experiment"}), el("table", {class: "kv"},
    kv.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => el("tr", {}, el("td", {text: k}), el("td", {text: String(v)})))));
  const right = el("div", {});
  const best = bestRuns(5);
  if (best.length) {
    right.appendChild(el("h3", {text: `Best ${best.length} by ${OBJ} (${MAX ? "higher" : "lower"} is better${M.repeats > 1 ? ", mean over repeats" : ""})`}));
    right.appendChild(el("table", {class: "plain", id: "best"},
      el("tr", {}, el("th", {text: "id"}), el("th", {class: "n", text: OBJ}), VARY.map(p => el("th", {text: p.name}))),
      best.map(b => el("tr", {}, el("td", {text: R.id[b.i]}), el("td", {class: "n", text: fmt(b.v)}),
        VARY.map(p => el("td", {text: fmt(pval(p, b.i))}))))));
  } else if (N) right.appendChild(el("p", {class: "note", text: OBJ ? `no ok run has a number for ${OBJ}` : "the runs return no number to rank"}));
  // time and worker use
  let lo = Infinity, hi = -Infinity, total = 0;
  const secs = [];
  for (let i = 0; i < N; i++) {
    if (R.start[i] !== null && R.start[i] < lo) lo = R.start[i];
    if (R.end[i] !== null && R.end[i] > hi) hi = R.end[i];
    if (R.seconds[i] !== null) { total += R.seconds[i]; secs.push(R.seconds[i]); }
  }
  secs.sort((a, b) => a - b);
  const span = hi > lo ? hi - lo : 0;
  const q = f => secs.length ? secs[Math.min(secs.length - 1, Math.floor(f * secs.length))] : null;
  right.appendChild(el("h3", {text: "Time"}));
  right.appendChild(el("table", {class: "kv"},
    [["wall time", duration(span)], ["run time, all runs", duration(total)],
     ["per run", secs.length ? `median ${duration(q(0.5))}, mean ${duration(total / secs.length)}, max ${duration(secs[secs.length - 1])}` : ""],
     ["parallelism", span ? (total / span).toFixed(2) + " runs at a time on average" : ""]].filter(([, v]) => v)
      .map(([k, v]) => el("tr", {}, el("td", {text: k}), el("td", {text: v})))));
  const slots = new Map();
  for (let i = 0; i < N; i++) {
    if (R.seconds[i] === null) continue;
    const key = slotLabel(i), s = slots.get(key) || {runs: 0, busy: 0};
    s.runs++; s.busy += R.seconds[i]; slots.set(key, s);
  }
  if (slots.size) {
    const rows = [...slots.entries()].sort((a, b) => a[0].localeCompare(b[0], undefined, {numeric: true}));
    right.appendChild(el("h3", {text: "Worker use"}));
    right.appendChild(el("table", {class: "plain", id: "workers"},
      el("tr", {}, el("th", {text: "worker"}), el("th", {class: "n", text: "runs"}), el("th", {class: "n", text: "busy"}), el("th", {class: "n", text: "of the wall time"})),
      rows.slice(0, 64).map(([k, s]) => el("tr", {}, el("td", {text: k}), el("td", {class: "n", text: s.runs}),
        el("td", {class: "n", text: duration(s.busy)}), el("td", {class: "n", text: span ? (100 * s.busy / span).toFixed(0) + " %" : ""})))));
    if (rows.length > 64) right.appendChild(el("p", {class: "note", text: `… and ${rows.length - 64} more workers`}));
  }
  sec.appendChild(el("div", {class: "cols"}, left, right));
}

function runsTable(sec) {
  const metrics = D.metrics;
  const grouped = {on: false};
  const c = counts();
  const shownStatus = new Set(STATUSES);
  const head = el("div", {class: "controls"});
  const filter = el("input", {type: "search", placeholder: "filter: any text in a row", "aria-label": "filter"});
  head.appendChild(filter);
  for (const s of STATUSES) {
    if (!c[s]) continue;
    const box = el("input", {type: "checkbox", checked: true, "data-status": s, onchange: () => { box.checked ? shownStatus.add(s) : shownStatus.delete(s); update(); }});
    head.appendChild(el("label", {}, box, el("span", {class: "dot", style: `background:${SCOL[s]};margin-left:4px`}), `${s} (${c[s]})`));
  }
  if (D.meta.repeats > 1) {
    const b = el("button", {id: "group", text: "group repeats", onclick: () => { grouped.on = !grouped.on; b.classList.toggle("on", grouped.on); sortBy = null; update(); }});
    head.appendChild(b);
  }
  const count = el("span", {class: "note", id: "count"});
  head.appendChild(count);
  sec.appendChild(head);
  // columns: per run, or per configuration (mean ± sd)
  function runColumns() {
    const cols = [{name: "id", get: i => R.id[i], num: true}, {name: "run", get: i => R.run[i], num: true},
                  {name: "status", get: i => statusOf(i), status: true}];
    for (const p of VARY) cols.push({name: p.name, get: i => pval(p, i), num: p.kind === "num"});
    for (const m of metrics) cols.push({name: m, get: i => R.metrics[m][i], num: true});
    cols.push({name: "seconds", get: i => R.seconds[i], num: true, text: v => v === null ? "" : v.toFixed(3)});
    if (R.step.some(v => v !== null)) cols.push({name: "step", get: i => R.step[i], num: true});
    cols.push({name: "worker", get: i => R.seconds[i] === null ? null : slotLabel(i)});
    if (R.error.some(v => v !== null)) cols.push({name: "error", get: i => R.error[i] === null ? null : R.errors[R.error[i]]});
    return cols;
  }
  let groups = null;
  function groupColumns() {
    if (!groups) {
      const byId = new Map();
      for (let i = 0; i < N; i++) { const g = byId.get(R.id[i]) || []; g.push(i); byId.set(R.id[i], g); }
      groups = [...byId.values()];
    }
    const stat = (col, g) => {
      const v = g.map(i => col[i]).filter(x => typeof x === "number");
      if (!v.length) return null;
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (v.length - 1)) : null;
      return {mean, sd};
    };
    const ms = (s) => s === null ? "" : fmt(s.mean) + (s.sd === null ? "" : " ± " + fmt(s.sd));
    const cols = [{name: "id", get: g => R.id[g[0]], num: true}, {name: "runs", get: g => g.length, num: true},
                  {name: "status", get: g => { const c = {}; for (const i of g) c[statusOf(i)] = (c[statusOf(i)] || 0) + 1; return Object.entries(c).map(([s, n]) => `${n} ${s}`).join(", "); }}];
    for (const p of VARY) cols.push({name: p.name, get: g => pval(p, g[0]), num: p.kind === "num"});
    for (const m of metrics) cols.push({name: m, get: g => { const s = stat(R.metrics[m], g); return s && s.mean; }, stat: g => stat(R.metrics[m], g), text2: ms, num: true});
    cols.push({name: "seconds", get: g => { const s = stat(R.seconds, g); return s && s.mean; }, num: true, text: v => v === null ? "" : v.toFixed(3)});
    return cols;
  }
  const scroller = el("div", {class: "vt", id: "runs-table"});
  const table = el("table"), thead = el("thead"), tbody = el("tbody");
  table.append(thead, tbody); scroller.appendChild(table); sec.appendChild(scroller);
  sec.appendChild(el("p", {class: "note", text: "Click a column to sort (again: the other way); rows without the value go last. Only the rows in view are drawn, at any size."}));
  let cols = [], rows = [], sortBy = null, desc = false, texts = null;
  const ROW = 24;
  function cellText(col, r) {
    if (col.stat) return col.text2(col.stat(r));
    const v = col.get(r);
    return col.text ? col.text(v) : fmt(v);
  }
  function update() {
    cols = grouped.on ? groupColumns() : runColumns();
    const base = grouped.on ? groups : ALL;
    const needle = filter.value.trim().toLowerCase();
    if (needle && (!texts || texts.grouped !== grouped.on)) {
      texts = base.map(r => cols.map(col => cellText(col, r)).join("\u0001").toLowerCase());
      texts.grouped = grouped.on;
    }
    rows = [];
    for (let k = 0; k < base.length; k++) {
      const r = base[k];
      if (!grouped.on && !shownStatus.has(statusOf(r))) continue;
      if (grouped.on && !r.some(i => shownStatus.has(statusOf(i)))) continue;
      if (needle && !texts[k].includes(needle)) continue;
      rows.push(r);
    }
    if (sortBy !== null) {
      const col = cols.find(c => c.name === sortBy);
      if (col) {
        const keys = new Map(rows.map(r => [r, col.get(r)]));
        rows.sort((a, b) => {
          const x = keys.get(a), y = keys.get(b);
          if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
          if (y === null || y === undefined) return -1;
          const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
          return desc ? -c : c;
        });
      }
    }
    thead.replaceChildren(el("tr", {}, cols.map(col => el("th", {
      class: (col.num ? "n " : "") + (col.name === sortBy ? "sorted" : ""), "data-col": col.name,
      text: col.name + (col.name === sortBy ? (desc ? " ▼" : " ▲") : ""),
      onclick: () => { if (sortBy === col.name) desc = !desc; else { sortBy = col.name; desc = false; } update(); }}))));
    count.textContent = `${rows.length} of ${grouped.on ? groups.length + " configurations" : N + " runs"} shown`;
    scroller.scrollTop = 0;
    draw();
  }
  function draw() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 4);
    const last = Math.min(rows.length, first + Math.ceil((scroller.clientHeight || 460) / ROW) + 8);
    const out = [];
    if (first > 0) out.push(el("tr", {style: `height:${first * ROW}px`}, el("td", {colspan: cols.length})));
    for (let k = first; k < last; k++) {
      const r = rows[k];
      out.push(el("tr", {"data-row": k, "data-id": grouped.on ? R.id[r[0]] : R.id[r]}, cols.map(col => {
        const text = cellText(col, r);
        const td = el("td", {class: col.num ? "n" : null, title: text.length > 40 ? text : null});
        if (col.status) td.appendChild(el("span", {class: "dot", style: `background:${SCOL[text]}`}));
        td.appendChild(document.createTextNode(text));
        return td;
      })));
    }
    if (last < rows.length) out.push(el("tr", {style: `height:${(rows.length - last) * ROW}px`}, el("td", {colspan: cols.length})));
    tbody.replaceChildren(...out);
  }
  let pending = false;
  scroller.addEventListener("scroll", () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } });
  let timer = null;
  filter.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, N > 5000 ? 120 : 0); });
  update();
}

function metricPicker(sec, current, draw, statuses) {
  const names = D.metrics.filter(m => usable(R.metrics[m], statuses).length);
  if (!names.length) { sec.appendChild(el("p", {class: "note", text: "No run has a number to draw yet."})); return null; }
  const value = names.includes(current) ? current : names[0];
  const holder = el("div");
  const controls = el("div", {class: "controls"}, el("label", {}, "metric ", select(names, value, v => draw(holder, v))));
  sec.append(controls, holder);
  draw(holder, value);
  return controls;
}
function directionOf(metric) {
  if (metric === OBJ) return MAX;
  const o = (D.objectives || []).find(([k]) => k === metric);
  return o ? o[1] : false;
}
function history(sec, width) {
  let byTime = false;
  let holder = null, metric = null;
  const redraw = () => draw(holder, metric);
  function draw(h, m) {
    holder = h; metric = m;
    const col = R.metrics[m], maximize = directionOf(m);
    const idx = usable(col, ["ok", "pruned"]);
    const order = idx.slice().sort((a, b) => (R.end[a] ?? 0) - (R.end[b] ?? 0) || a - b);
    const xs = byTime ? order.map(i => R.end[i] ?? 0) : order.map((_, k) => k + 1);
    const xr = [Math.min(...xs.slice(0, 1), 0), Math.max(1, xs[xs.length - 1] || 1)];
    const c = chart({width, height: 340, xlabel: byTime ? "wall time (s since the first run started)" : "run, in the order they ended",
      ylabel: m + (maximize ? " (higher is better)" : " (lower is better)"),
      x: (a, b) => makeScale("lin", xr[0], xr[1] * 1.02, a, b), y: (a, b) => valueScale(col, idx, a, b),
      draw: (g, X, Y) => {
        const px = xs.map(X.f), py = order.map(i => Y.f(col[i]));
        for (const s of ["ok", "pruned"]) {
          const sel = order.map((i, k) => statusOf(i) === s ? k : -1).filter(k => k >= 0);
          g.globalAlpha = order.length > 5000 ? 0.35 : 0.75;
          dotsAt(g, sel.map(k => px[k]), sel.map(k => py[k]), SCOL[s], order.length > 5000 ? 1.6 : 2.6);
        }
        g.globalAlpha = 1; g.strokeStyle = "#1c6fd1"; g.lineWidth = 2; g.beginPath();
        let best = null, started = false;
        order.forEach((i, k) => {
          if (statusOf(i) !== "ok") return;
          if (best === null || better(col[i], best, maximize)) best = col[i];
          const y = Y.f(best);
          if (!started) { g.moveTo(px[k], y); started = true; } else g.lineTo(px[k], y);
        });
        if (started) g.lineTo(px[px.length - 1], Y.f(best));
        g.stroke();
        return {x: px, y: py, i: order};
      },
      hover: i => runText(i, `${m} = ${fmt(col[i])}` + (R.end[i] !== null ? `\nended at ${duration(R.end[i])}` : ""))});
    h.replaceChildren(c, legend([[SCOL.ok, "ok"], ...(idx.some(i => statusOf(i) === "pruned") ? [[SCOL.pruned, "pruned (its last report)"]] : []), ["#1c6fd1", "best so far"]]));
  }
  const controls = metricPicker(sec, OBJ, draw, ["ok", "pruned"]);
  if (controls) {
    const b1 = el("button", {class: "on", text: "run order", onclick: () => { byTime = false; b1.classList.add("on"); b2.classList.remove("on"); redraw(); }});
    const b2 = el("button", {text: "wall time", onclick: () => { byTime = true; b2.classList.add("on"); b1.classList.remove("on"); redraw(); }});
    controls.append(b1, b2);
  }
}

function parallel(sec, width) {
  if (!VARY.length) { sec.appendChild(el("p", {class: "note", text: "No parameter varies."})); return; }
  metricPicker(sec, OBJ, (h, m) => {
    const col = R.metrics[m], maximize = directionOf(m);
    const idx = usable(col);
    const height = 380, top = 30, bottom = height - 40;
    const axes = [...VARY.map(p => ({name: p.name, s: paramScale(p, idx, bottom, top), col: R.params[p.name]})),
                  {name: m, s: valueScale(col, idx, bottom, top), col}];
    const [c, g] = canvas(width, height);
    const x0 = 60, x1 = width - 70, step = (x1 - x0) / Math.max(1, axes.length - 1);
    const ax = axes.map((_, k) => axes.length === 1 ? (x0 + x1) / 2 : x0 + k * step);
    const [lo, hi] = extent(col, idx);
    const t = v => maximize ? (v - lo) / (hi - lo || 1) : (hi - v) / (hi - lo || 1);  // 1: best
    const BINS = 24, paths = Array.from({length: BINS}, () => []);
    for (const i of idx) {
      if (axes.some(a => a.col[i] === null)) continue;
      paths[Math.min(BINS - 1, Math.floor(t(col[i]) * BINS))].push(i);
    }
    g.lineWidth = 1; g.globalAlpha = Math.max(0.06, Math.min(0.7, 25 / Math.sqrt(idx.length + 1)));
    paths.forEach((list, b) => {
      if (!list.length) return;
      g.strokeStyle = viridis((b + 0.5) / BINS); g.beginPath();
      for (const i of list) axes.forEach((a, k) => { const y = a.s.f(a.col[i]); k ? g.lineTo(ax[k], y) : g.moveTo(ax[k], y); });
      g.stroke();
    });
    g.globalAlpha = 1; g.strokeStyle = "#e03131"; g.lineWidth = 2.2;
    const best = idx.slice().sort((a, b) => maximize ? col[b] - col[a] : col[a] - col[b]).slice(0, 10);
    for (const i of best) {
      if (axes.some(a => a.col[i] === null)) continue;
      g.beginPath(); axes.forEach((a, k) => { const y = a.s.f(a.col[i]); k ? g.lineTo(ax[k], y) : g.moveTo(ax[k], y); }); g.stroke();
    }
    g.lineWidth = 1;
    axes.forEach((a, k) => {
      g.strokeStyle = "#5f6b78"; g.beginPath(); g.moveTo(ax[k], top); g.lineTo(ax[k], bottom); g.stroke();
      g.fillStyle = "#1d232b"; g.textAlign = "center"; g.textBaseline = "bottom"; g.font = "600 12px system-ui, sans-serif";
      g.fillText(a.name + (a.s.kind === "log" ? " (log)" : ""), ax[k], top - 8);
      g.font = "11px system-ui, sans-serif"; g.textAlign = "left"; g.textBaseline = "middle";
      for (const [v, label] of a.s.ticks) {
        const y = a.s.f(v);
        g.strokeStyle = "#5f6b78"; g.beginPath(); g.moveTo(ax[k] - 3, y); g.lineTo(ax[k] + 3, y); g.stroke();
        g.fillStyle = "rgba(255,255,255,.8)"; const w = g.measureText(String(label).slice(0, 12)).width;
        g.fillRect(ax[k] + 5, y - 7, w + 4, 14);
        g.fillStyle = "#3b4550"; g.fillText(String(label).slice(0, 12), ax[k] + 7, y);
      }
    });
    for (let k = 0; k < 100; k++) { g.fillStyle = viridis(maximize ? k / 99 : 1 - k / 99); g.fillRect(width - 26, bottom - (bottom - top) * (k + 1) / 100, 10, (bottom - top) / 100 + 1); }
    h.replaceChildren(c, el("p", {class: "note", text: `${idx.length} ok run(s), a line each, coloured by ${m} (yellow is better); the 10 best in red. Log axes for log-uniform parameters, one tick per value for lists.`}));
  });
}

function slices(sec, width) {
  if (!VARY.length) { sec.appendChild(el("p", {class: "note", text: "No parameter varies."})); return; }
  metricPicker(sec, OBJ, (h, m) => {
    const col = R.metrics[m], maximize = directionOf(m);
    const idx = usable(col, ["ok", "pruned"]);
    const dep = m === OBJ && D.dependence ? D.dependence : null;
    const cw = Math.max(300, Math.min(400, Math.floor((width - 28) / Math.min(3, VARY.length))));
    const grid = el("div", {class: "grid"});
    for (const p of VARY) {
      const pc = R.params[p.name], sub = idx.filter(i => pc[i] !== null);
      const curve = dep && dep[p.name];
      const ys = curve ? sub.map(i => col[i]).concat(curve.y) : null;
      grid.appendChild(chart({width: cw, height: 260, xlabel: p.name + (p.log ? " (log)" : ""), ylabel: m,
        x: (a, b) => paramScale(p, sub, a, b),
        y: (a, b) => ys ? valueScale(ys, range(ys.length), a, b) : valueScale(col, sub, a, b),
        draw: (g, X, Y) => {
          const jit = p.kind === "cat" ? (X.f(1) - X.f(0)) * 0.3 : 0;
          const px = sub.map(i => X.f(pc[i]) + (jit ? ((R.id[i] * 7919 + R.run[i] * 104729) % 1000 / 1000 - 0.5) * jit : 0));
          const py = sub.map(i => Y.f(col[i]));
          g.globalAlpha = sub.length > 3000 ? 0.35 : 0.7;
          for (const s of ["ok", "pruned"]) {
            const k = sub.map((i, j) => statusOf(i) === s ? j : -1).filter(j => j >= 0);
            dotsAt(g, k.map(j => px[j]), k.map(j => py[j]), SCOL[s], sub.length > 3000 ? 1.5 : 2.4);
          }
          g.globalAlpha = 1;
          if (p.kind === "cat") {  // the mean per value
            g.strokeStyle = "#1d232b"; g.lineWidth = 2;
            p.levels.forEach((_, v) => {
              const vals = sub.filter(i => pc[i] === v && statusOf(i) === "ok").map(i => col[i]);
              if (!vals.length) return;
              const y = Y.f(vals.reduce((a, b) => a + b, 0) / vals.length), x = X.f(v);
              g.beginPath(); g.moveTo(x - jit, y); g.lineTo(x + jit, y); g.stroke();
            });
          }
          if (curve) {
            g.strokeStyle = "#1c6fd1"; g.lineWidth = 2.2; g.beginPath();
            curve.x.forEach((x, k) => { const px = X.f(x), py = Y.f(curve.y[k]); k ? g.lineTo(px, py) : g.moveTo(px, py); });
            g.stroke();
          }
          return {x: px, y: py, i: sub};
        },
        hover: i => runText(i, `${m} = ${fmt(col[i])}`)}));
    }
    const items = [[SCOL.ok, "ok run"], ...(idx.some(i => statusOf(i) === "pruned") ? [[SCOL.pruned, "pruned (its last report)"]] : [])];
    if (dep) items.push(["#1c6fd1", "the search's model: partial dependence (mean over the other parameters)"]);
    if (VARY.some(p => p.kind === "cat")) items.push(["#1d232b", "mean of the ok runs per value"]);
    h.replaceChildren(grid, legend(items), el("p", {class: "note", text: `${m} against each parameter (${maximize ? "higher" : "lower"} is better).`}));
  }, ["ok", "pruned"]);
}

function importance(sec, width) {
  const I = D.importance;
  if (!I) { sec.appendChild(el("p", {class: "note", text: "No parameter varies, or there is no objective."})); return; }
  if (I.reason) { sec.appendChild(el("p", {class: "note", text: "Not computed: " + I.reason + "."})); return; }
  const order = I.names.map((_, k) => k).sort((a, b) => I.mean[b] - I.mean[a]);
  const hi = Math.max(1e-9, ...I.mean.map((m, k) => m + (I.sd[k] || 0)));
  const rowH = 26, height = 30 + rowH * order.length + 28;
  const names = order.map(k => I.names[k]);
  sec.appendChild(chart({width: Math.min(width, 820), height, xlabel: "drop in R² when the parameter is shuffled",
    x: (a, b) => makeScale("lin", Math.min(0, ...I.mean), hi * 1.1, a, b),
    y: (a, b) => makeScale("cat", 0, 0, b, a, names),
    draw: (g, X, Y) => {
      order.forEach((k, r) => {
        const y = Y.f(r), x0 = X.f(Math.max(0, Math.min(0, I.mean[k]))), x1 = X.f(I.mean[k]);
        g.fillStyle = "#1c6fd1"; g.fillRect(Math.min(x0, x1), y - 8, Math.abs(x1 - x0), 16);
        g.strokeStyle = "#1d232b"; g.beginPath(); g.moveTo(X.f(I.mean[k] - I.sd[k]), y); g.lineTo(X.f(I.mean[k] + I.sd[k]), y); g.stroke();
      });
    }}));
  const how = I.held_out
    ? `a forest of 32 extra trees (scikit-learn) fitted to three quarters of ${I.sample < I.runs ? `a random ${I.sample} of the ${I.runs}` : `the ${I.runs}`} ok runs; each parameter's column is shuffled in the other quarter and the drop in the forest's R² is its importance (mean ± sd of 5 shuffles). The forest's R² on those held-out runs is ${fmt(I.r2)}: the lower it is, the less these figures say.`
    : `a forest of 32 extra trees (scikit-learn) fitted to the ${I.runs} ok runs; each parameter's column is shuffled and the drop in the forest's R² is its importance (mean ± sd of 5 shuffles). With under 100 runs none is held out, so this is how the forest uses each parameter (its R² on the runs it saw: ${fmt(I.r2)}), a rough guide rather than a measurement.`;
  sec.appendChild(el("p", {class: "note", text: `How much each parameter matters to ${OBJ}: ` + how}));
}

function pareto(sec, width) {
  const P = D.pareto, obj = D.objectives;
  const onFront = new Set(P.front);
  const keys = obj.map(([k]) => k), dirs = obj.map(([, m]) => m);
  const cols = keys.map(k => R.metrics[k]);
  const idx = ALL.filter(i => statusOf(i) === "ok" && cols.every(c => c && typeof c[i] === "number"));
  const cons = D.constraints;
  const feasible = i => cons.every(([k, op, b]) => { const v = R.metrics[k] && R.metrics[k][i]; return typeof v === "number" && (op === "<=" ? v <= b : v >= b); });
  const pairs = [];
  for (let a = 0; a < keys.length; a++) for (let b = a + 1; b < keys.length; b++) pairs.push([a, b]);
  const cw = pairs.length === 1 ? Math.min(width, 760) : Math.max(300, Math.min(420, Math.floor((width - 28) / Math.min(3, pairs.length))));
  const grid = el("div", {class: pairs.length === 1 ? "" : "grid"});
  for (const [a, b] of pairs) {
    grid.appendChild(chart({width: cw, height: pairs.length === 1 ? 420 : 300,
      xlabel: `${keys[a]} (${dirs[a] ? "max" : "min"})`, ylabel: `${keys[b]} (${dirs[b] ? "max" : "min"})`,
      x: (l, r) => valueScale(cols[a], idx, l, r), y: (l, r) => valueScale(cols[b], idx, l, r),
      draw: (g, X, Y) => {
        const px = idx.map(i => X.f(cols[a][i])), py = idx.map(i => Y.f(cols[b][i]));
        const inf = idx.map((i, k) => feasible(i) ? -1 : k).filter(k => k >= 0);
        g.strokeStyle = "#adb5bd"; g.lineWidth = 1.2; g.beginPath();
        for (const k of inf) { g.moveTo(px[k] - 3, py[k] - 3); g.lineTo(px[k] + 3, py[k] + 3); g.moveTo(px[k] + 3, py[k] - 3); g.lineTo(px[k] - 3, py[k] + 3); }
        g.stroke();
        const ok = idx.map((i, k) => feasible(i) && !onFront.has(R.id[i]) ? k : -1).filter(k => k >= 0);
        g.globalAlpha = 0.7; dotsAt(g, ok.map(k => px[k]), ok.map(k => py[k]), "#4c6ef5", 2.6); g.globalAlpha = 1;
        const front = idx.map((i, k) => onFront.has(R.id[i]) ? k : -1).filter(k => k >= 0)
          .sort((u, v) => dirs[a] ? cols[a][idx[v]] - cols[a][idx[u]] : cols[a][idx[u]] - cols[a][idx[v]]);
        if (keys.length === 2 && front.length) {
          const ref = P.reference, rx = X.f(ref[keys[a]]), ry = Y.f(ref[keys[b]]);
          g.strokeStyle = "#e03131"; g.lineWidth = 1.8; g.beginPath(); g.moveTo(px[front[0]], ry);
          front.forEach((k, n) => { if (n) g.lineTo(px[k], py[front[n - 1]]); g.lineTo(px[k], py[k]); });
          g.lineTo(rx, py[front[front.length - 1]]); g.stroke();
        }
        g.strokeStyle = "#e03131"; g.lineWidth = 2;
        for (const k of front) { g.beginPath(); g.arc(px[k], py[k], 5, 0, 6.2832); g.stroke(); }
        return {x: px, y: py, i: idx};
      },
      hover: i => runText(i, keys.map(k => `${k} = ${fmt(R.metrics[k][i])}`).join("\n") + (onFront.has(R.id[i]) ? "\non the front" : feasible(i) ? "" : "\ninfeasible"))}));
  }
  sec.appendChild(grid);
  const ref = Object.entries(P.reference).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
  sec.appendChild(legend([["#4c6ef5", "feasible"], ["#adb5bd", "infeasible (breaks a constraint)"], ["#e03131", `on the Pareto front (${P.front.length})`]]));
  sec.appendChild(el("p", {class: "note", text: `${P.front.length} non-dominated of ${P.feasible} feasible (${P.usable} usable); hypervolume ${fmt(P.hypervolume)} up to the reference point ${ref} (the worst value of each objective seen, plus a tenth of its range).`}));
}

function curves(sec, width) {
  const C = D.curves;
  const pick = C.metrics.includes(OBJ) ? OBJ : C.metrics[0];
  const holder = el("div");
  sec.appendChild(el("div", {class: "controls"}, el("label", {}, "metric ", select(C.metrics, pick, v => draw(v)))));
  sec.appendChild(holder);
  function draw(m) {
    const runs = C.runs.filter(r => r.values[m]);
    const steps = [], vals = [];
    for (const r of runs) r.values[m].forEach((v, k) => { if (v !== null) { steps.push(r.steps[k]); vals.push(v); } });
    const c = chart({width, height: 360, xlabel: "step", ylabel: m,
      x: (a, b) => valueScale(steps, range(steps.length), a, b), y: (a, b) => valueScale(vals, range(vals.length), a, b),
      draw: (g, X, Y) => {
        g.globalAlpha = Math.max(0.15, Math.min(0.8, 12 / Math.sqrt(runs.length + 1))); g.lineWidth = 1.3;
        const ends = {x: [], y: [], i: []};
        for (const status of ["ok", "failed", "timeout", "crashed", "pruned"]) {
          g.strokeStyle = status === "ok" ? "#1c6fd1" : SCOL[status]; g.beginPath();
          for (const r of runs) {
            if (statusOf(r.run) !== status) continue;
            let started = false, lx = 0, ly = 0;
            r.values[m].forEach((v, k) => {
              if (v === null) return;
              lx = X.f(r.steps[k]); ly = Y.f(v);
              started ? g.lineTo(lx, ly) : g.moveTo(lx, ly); started = true;
            });
            if (started) { ends.x.push(lx); ends.y.push(ly); ends.i.push(r.run); }
          }
          g.stroke();
        }
        g.globalAlpha = 1;
        return ends;
      },
      hover: i => runText(i, `last ${m} = ${fmt((C.runs.find(r => r.run === i).values[m] || []).filter(v => v !== null).pop())}`)});
    holder.replaceChildren(c, legend([["#1c6fd1", "ok"], [SCOL.pruned, "pruned (stopped early)"], [SCOL.failed, "failed, timed out or crashed"]]),
      el("p", {class: "note", text: `${runs.length} run(s) reported ${m}. Hover near the end of a curve for its run.`}));
  }
  draw(pick);
}

function timeline(sec, width) {
  const idx = ALL.filter(i => R.start[i] !== null && R.end[i] !== null);
  if (!idx.length) { sec.appendChild(el("p", {class: "note", text: "No run has start and end times."})); return; }
  const labels = [...new Set(idx.map(slotLabel))].sort((a, b) => a.localeCompare(b, undefined, {numeric: true}));
  const row = new Map(labels.map((l, k) => [l, k]));
  const rowH = Math.max(6, Math.min(22, Math.floor(520 / labels.length)));
  const height = 24 + rowH * labels.length + 44;
  let lo = Infinity, hi = -Infinity;
  for (const i of idx) { lo = Math.min(lo, R.start[i]); hi = Math.max(hi, R.end[i]); }
  const c = chart({width, height, xlabel: "wall time (s since the first run started)", ylabel: "",
    x: (a, b) => makeScale("lin", lo, hi + (hi - lo) * 0.01 || 1, a, b),
    y: (a, b) => makeScale("cat", 0, 0, b, a, labels.map(l => l.length > 9 ? l.slice(-9) : l)),
    draw: (g, X, Y) => {
      const pts = {x: [], y: [], i: []};
      for (const s of STATUSES) {
        g.fillStyle = SCOL[s];
        for (const i of idx) {
          if (statusOf(i) !== s) continue;
          const y = Y.f(row.get(slotLabel(i))), x0 = X.f(R.start[i]), x1 = Math.max(x0 + 1, X.f(R.end[i]));
          g.fillRect(x0, y - rowH * 0.36, x1 - x0 - (x1 - x0 > 3 ? 0.6 : 0), rowH * 0.72);
          pts.x.push((x0 + x1) / 2); pts.y.push(y); pts.i.push(i);
        }
      }
      return pts;
    },
    hover: i => runText(i, `${slotLabel(i)}: ${duration(R.start[i])} → ${duration(R.end[i])} (${duration(R.seconds[i])})`)});
  sec.appendChild(c);
  sec.appendChild(legend(STATUSES.filter(s => idx.some(i => statusOf(i) === s)).map(s => [SCOL[s], s])));
  sec.appendChild(el("p", {class: "note", text: `A row per worker${R.gpu.some(g => g !== null) ? " and GPU" : ""}, a bar per run: gaps are idle slots, long bars stragglers.`}));
}

function failures(sec) {
  const F = D.failures;
  if (!F.count) { sec.appendChild(el("p", {class: "note", text: "Every run is ok or pruned."})); return; }
  sec.appendChild(el("p", {class: "note", text: `${F.count} run(s) not ok, by the last line of their error (${F.groups.length} different). Each shows the whole error and the end of the log of its first run.`}));
  for (const f of F.groups) {
    const i = f.runs[0];
    const ids = f.runs.map(j => `${R.id[j]}` + (D.meta.repeats > 1 ? `/${R.run[j]}` : "")).join(", ") + (f.count > f.runs.length ? ", …" : "");
    sec.appendChild(el("details", {"data-id": R.id[i]},
      el("summary", {}, el("span", {class: "dot", style: `background:${SCOL[statusOf(i)]}`}), `${f.count} run(s) · ${statusOf(i)} · `, el("code", {text: f.last.slice(0, 200)})),
      el("div", {class: "note", text: `${D.meta.repeats > 1 ? "id/run" : "ids"}: ${ids}`}),
      el("div", {class: "note", text: `first: id ${R.id[i]} run ${R.run[i]}  ` + VARY.map(p => `${p.name}=${fmt(pval(p, i))}`).join("  ")}),
      el("pre", {text: f.error || "(no error text)"}),
      f.log !== null ? el("div", {}, el("div", {class: "note", text: `the end of ${f.log_path}`}), el("pre", {text: f.log || "(empty)"})) : null));
  }
}

// ── the page ─────────────────────────────────────────────────────────────
header();
section("overview", "Experiment", overview);
section("runs", "Runs", runsTable);
if (N) {
  section("history", "History", history);
  section("parallel", "Parallel coordinates", parallel);
  section("slices", "Slices", slices);
  section("importance", "Parameter importance", importance);
  if (D.pareto) section("pareto", "Pareto front", pareto);
  if (D.curves) section("curves", "Learning curves", curves);
  section("timeline", "Timeline", timeline);
  section("failures", "Failures", failures);
}
MAIN.appendChild(el("footer", {text: `exp ${D.meta.exp || ""} report of ${D.meta.journal}, written ${D.meta.written}. One file, nothing fetched: copy it anywhere.`}));
window.__exp = {sections: SECTIONS, runs: N};
performance.mark("exp:rendered");
performance.measure("exp:render", "exp:start", "exp:rendered");
window.__rendered = true;
})();
</script>
</body>
</html>
"""
