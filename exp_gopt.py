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

import itertools
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
                 plotter: _LivePlot | None = None, pruned_as: str = "last",
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


def _check_options(n: int, surrogate: str, acquisition: str, liar: str, initial: str,
                   n_initial: int | None, kappa: float, xi: float) -> None:
    def valid(name: str, value: str, choices: tuple[str, ...]) -> None:
        if value not in choices:
            raise exp.ExpError(f"unknown {name} {value!r} (valid {name}s are "
                               f"{', '.join(map(repr, choices))})")
    valid("surrogate", surrogate, SURROGATES)
    valid("acquisition", acquisition, ACQUISITIONS)
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
             initial: str = "sobol", sync: bool = False, liar: str = "cl_min",
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
             prune_grace: float = 60.0, pruned_as: str = "last", objectives: Any = None,
             constraints: Sequence[str] = (), ref: Any = None) -> GoptResult:
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
    its last reported value (``pruned_as="last"``) or not at all (``"skip"``).

    Several objectives: ``objectives={"acc": "max", "latency_ms": "min"}``
    (keys of the dict result), with ``constraints=["memory_mb <= 8000"]`` on
    other keys (a run that breaks one is ok but infeasible); the search is
    ParEGO with a model of each constraint, pruning watches the first
    objective, and ``ref`` ({key: value}) fixes the hypervolume's reference
    point. Resuming without naming a goal keeps the journal's.
    Raises ``ExpError`` for bad input before any run starts.
    """
    with exp._interruptible():  # SIGTERM and SIGHUP end it as Ctrl-C does, at any moment
        return _optimize(**locals())


def _optimize(space: Any, runnable: str, *, n: int, workers: int | None, surrogate: str,
              acquisition: str, kappa: float, xi: float, n_initial: int | None, initial: str,
              sync: bool, liar: str, objective: str | None, maximize: bool,
              warm_start: Sequence[str | os.PathLike], plot: bool, gpus: Any, per_gpu: int,
              gpus_per_run: int, timeout: float | None, out: str | os.PathLike,
              name: str | None, seed: int | None, fresh: bool, retry_failed: bool, cancel: bool,
              quiet: bool, cluster: str | None, scheduler_file: str | None,
              cluster_security: str | None, load_timeout: float, gpu_max_util: float,
              gpu_max_mem: float, kuma: bool, progress_every: float | None, prune: str | None,
              min_step: float, max_step: float | None, eta: int, prune_grace: float,
              pruned_as: str, objectives: Any, constraints: Sequence[str],
              ref: Any) -> GoptResult:
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
        raise
    exp._finish(setup, journal, progress, None, quiet=quiet, objective=objective,
                maximize=maximize, rank=not goal.multi)
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


#: How a pruned run informs the optimiser: "last", told at its last reported
#: value (worse than what it would have reached, so its region looks worse than
#: it is, which is what stopping it said); "skip", not told, only not suggested
#: again. The benchmark (bench/bench_prune.py) chose the default.
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


def _new_optimizer(dims: list[Any], goal: exp.Goal, **kwargs: Any) -> _Optimizer:
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
