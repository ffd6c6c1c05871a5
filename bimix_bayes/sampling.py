"""The one sampler path: every Bayesian fit, refit, cross-validation fold and SBC replicate.

:func:`sample` draws from a PyMC model built by :func:`bimix_bayes.model.build_model` with the
settings of a :class:`~bimix_bayes.spec.SamplerConfig`. For NUTS (nutpie) it keeps compiled models in
one cache keyed by the model spec and the design (shapes, steps, mixtures; the mask of observed
cells too where the noise model fixes it): the observed losses and the mask are shared variables,
so a refit of the same design with new losses (SBC) or with some runs masked out (cross-validation
folds) swaps data instead of compiling again (compilation is most of a fit's wall time). The
mixtures stay constants: with them as shared variables (and no static shapes) one profiled fit of
the reference workload compiled about 1.6x and sampled about 2x slower. A NUTS fit that diverges is
resampled once at the retry target acceptance rate and the attempt with fewer divergences is kept.

Examples
--------
>>> trace, extra = sample(model, design, spec, SamplerConfig(draws=200, tune=200))  # doctest: +SKIP
>>> extra["target_accept"]                                                           # doctest: +SKIP
0.95
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bimix_bayes.spec import ModelSpec, SamplerConfig

#: Compiled nutpie models by (spec, design structure).
_COMPILED: OrderedDict[str, Any] = OrderedDict()
_COMPILED_MAX = 4


def structure_key(design: Any, spec: ModelSpec) -> str:
    """Everything a compiled graph depends on besides its data (the observed losses and, where
    the noise model allows, the mask): the spec, the shapes, the steps, the mixtures, the model
    sizes and whether curves have several points (the noise model's reduced form)."""
    digest = hashlib.sha256(repr((spec.id, design.log_loss.shape, design.s_ref,
                                  design.coords["domain"], design.coords["source"],
                                  design.has_curves)).encode())
    for name in ("steps", "own", "mixture", "centre", "size"):
        value = getattr(design, name)
        digest.update(b"none" if value is None else np.ascontiguousarray(value).tobytes())
    if not spec.noise_component.mask_is_data:
        digest.update(np.ascontiguousarray(design.mask).tobytes())
    return digest.hexdigest()


def sample(model: pm.Model, design: Any, spec: ModelSpec, config: SamplerConfig
           ) -> tuple[xr.DataTree, dict[str, Any]]:
    """Sample ``model`` (built from ``design`` and ``spec``) as ``config`` says.

    Returns
    -------
    trace : xarray.DataTree
        ``posterior`` (every sampled and deterministic variable) and, for MCMC, ``sample_stats``.
    extra : dict
        What the diagnostics record besides the trace: ``target_accept`` (and ``attempts`` after
        a retry) for NUTS; convergence of the optimisation for the approximations.
    """
    if config.method == "laplace":
        return _laplace(model, config)
    if config.method in ("advi", "fullrank_advi"):
        return _advi(model, config)

    def nuts(target_accept: float) -> xr.DataTree:
        if config.method == "pymc":
            with model:
                return pm.sample(draws=config.draws, tune=config.tune, chains=config.chains,
                                 random_seed=config.seed, target_accept=target_accept,
                                 progressbar=config.progressbar, compute_convergence_checks=False,
                                 nuts_sampler="pymc")
        import nutpie

        return nutpie.sample(_compiled(model, design, spec), draws=config.draws,
                             tune=config.tune, chains=config.chains, seed=config.seed,
                             adaptation=config.adaptation, target_accept=target_accept,
                             progress_bar=config.progressbar, save_warmup=False)

    trace = nuts(config.target_accept)
    n_divergent = int(trace["sample_stats"]["diverging"].sum())
    retry = config.retry_target_accept
    if not n_divergent or retry is None or retry <= config.target_accept:
        return trace, {"target_accept": config.target_accept}
    second = nuts(retry)
    attempts = [{"target_accept": config.target_accept, "n_divergent": n_divergent},
                {"target_accept": retry,
                 "n_divergent": int(second["sample_stats"]["diverging"].sum())}]
    # On a design the data barely identify, smaller steps can diverge more: keep the better.
    kept = second if attempts[1]["n_divergent"] <= n_divergent else trace
    return kept, {"target_accept": retry if kept is second else config.target_accept,
                  "attempts": attempts}


def _compiled(model: pm.Model, design: Any, spec: ModelSpec) -> Any:
    """The cached compiled model of this structure, with ``model``'s data swapped in."""
    import nutpie

    key = structure_key(design, spec)
    if key not in _COMPILED:
        _COMPILED[key] = nutpie.compile_pymc_model(model)
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
        return _COMPILED[key]
    _COMPILED.move_to_end(key)
    compiled = _COMPILED[key]
    # A law that does not use an array (plain BiMix ignores the whole mixture) has no such
    # shared variable in its compiled graph.
    used = {var.name for var in compiled.shared_var_keys}
    return compiled.with_data(**{var.name: var.get_value() for var in model.data_vars
                                 if var.name in used})


def _laplace(model: pm.Model, config: SamplerConfig) -> tuple[xr.DataTree, dict[str, Any]]:
    """Normal approximation at the mode of the unconstrained posterior (Jacobian included).

    The boundary-avoiding Gamma priors of the pooling scales give that mode a finite location; the
    Hessian comes from central differences of the exact gradient.
    """
    import pytensor
    from pymc.pytensorf import join_nonshared_inputs
    from scipy import optimize

    start = model.initial_point()
    values = model.value_vars
    point = {v.name: start[v.name] for v in values}
    logp = model.logp()
    (lp, *grads), flat = join_nonshared_inputs(point, [logp, *pt.grad(logp, values)], values)
    logp_dlogp = pytensor.function([flat], [lp, pt.concatenate([g.ravel() for g in grads])])
    names = [v.name for v in (*model.free_RVs, *model.deterministics)]
    outs, flat_out = join_nonshared_inputs(
        point, model.replace_rvs_by_values([model[n] for n in names]), values)
    expand = pytensor.function([flat_out], outs)

    def neg(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = logp_dlogp(x)
        return -float(value), -grad

    x0 = np.concatenate([np.ravel(point[v.name]) for v in values])
    res = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B",
                            options={"maxiter": 5000, "maxfun": 20000})
    h = 1e-5 * np.maximum(1.0, np.abs(res.x))
    hess = np.empty((x0.size, x0.size))
    for i in range(x0.size):
        step = np.zeros(x0.size)
        step[i] = h[i]
        hess[i] = (neg(res.x + step)[1] - neg(res.x - step)[1]) / (2 * h[i])
    hess = (hess + hess.T) / 2
    extra: dict[str, Any] = {"map_converged": bool(res.success), "map_message": str(res.message),
                             "map_logp": -float(res.fun)}
    try:
        chol = np.linalg.cholesky(np.linalg.inv(hess))
        extra["hessian_positive_definite"] = True
    except np.linalg.LinAlgError:
        chol = np.diag(1 / np.sqrt(np.maximum(np.abs(np.diag(hess)), 1e-12)))
        extra["hessian_positive_definite"] = False
    rng = np.random.default_rng(config.seed)
    draws = res.x + rng.standard_normal((config.draws, x0.size)) @ chol.T
    samples = [expand(x) for x in draws]
    dims = model.named_vars_to_dims

    def labelled(name: str, value: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        # A variable without dims (transfer_z: one entry per off-diagonal weight) gets ArviZ's
        # default dim names, as the MCMC path's trace has.
        names_ = dims.get(name) or tuple(f"{name}_dim_{j}" for j in range(value.ndim - 2))
        return ("chain", "draw", *names_), value

    posterior = xr.Dataset(
        {n: labelled(n, np.stack([s[i] for s in samples])[None]) for i, n in enumerate(names)},
        coords={k: list(v) for k, v in model.coords.items() if k != "obs"})
    return xr.DataTree.from_dict({"posterior": posterior}), extra


def _advi(model: pm.Model, config: SamplerConfig) -> tuple[xr.DataTree, dict[str, Any]]:
    with model:
        approx = pm.fit(n=max(10 * config.tune, 1), method=config.method, random_seed=config.seed,
                        progressbar=config.progressbar)
        trace = approx.sample(config.draws, random_seed=config.seed)
    hist = np.asarray(approx.hist)
    tail = hist[-max(len(hist) // 10, 1):]
    return trace, {"final_elbo_loss": float(np.mean(tail)), "elbo_loss_sd": float(np.std(tail)),
                   "iterations": len(hist)}
