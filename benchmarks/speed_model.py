"""Speed benchmark of the Bayesian BiMix model on the reference workload (7 domains x 48 runs x 11 steps).

Measures, side by side in one process (timings on a shared machine are noisy, so compare ratios):

* ``ours/nutpie-lowrank``: the product's default (nutpie NUTS, low-rank mass matrix), 4 x 1000 draws;
* ``ours/nutpie-diag``: the same compiled model with nutpie's diagonal mass matrix;
* ``ours/pymc-nuts``: the same model with PyMC's own NUTS (C backend);
* ``ours/pymc-dense``, ``ours/pymc-map-init``: PyMC's NUTS with a dense mass matrix, or started at
  the MAP;
* ``ours/nutpie-jax``: nutpie with the JAX backend (needs ``pip install jax``);
* ``plain/pymc-default``: a plain non-centred hierarchical BiMix (raw steps, uncentred log r, explicit
  non-centred run effects) with PyMC's default sampler settings (``pm.sample``, which in PyMC 6
  runs nutpie with a diagonal mass matrix when nutpie is installed), capped at ``--plain-draws`` draws and
  tuning steps per chain; its full 1000 + 1000 time is extrapolated linearly from the sampling rate;
* ``ours/laplace``, ``ours/advi``: approximations, with their distance from the NUTS posterior;
* ``ours/refit``: the estimator refitting the same design with the compiled model reused.

NUTS runs use the product's default target acceptance rate. Each row records wall time
(compilation included), divergences, max R-hat, min bulk ESS and ESS per second, and ``uptime``
load before the variant ran.

Usage::

    .venv/bin/python benchmarks/speed_model.py --out benchmarks/results/speed_model.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor.tensor as pt

sys.path.insert(0, str(Path(__file__).parent))
from reporting import uptime, write_result  # noqa: E402
from workload import reference_workload  # noqa: E402

from bimix_bayes import noise  # noqa: E402
from bimix_bayes.diagnostics import mcmc_diagnostics  # noqa: E402
from bimix_bayes.laws import bimix as laws  # noqa: E402
from bimix_bayes.model import BayesianBiMix, build_model  # noqa: E402

TARGET_ACCEPT = BayesianBiMix().target_accept  # the product's default
#: The law's and noise's parameters, compared between NUTS and the approximations.
CONTRACT = [*laws.BiMix.parameters, *noise.Normal.parameters]


def load() -> str:
    return uptime().split(
        "load average:")[-1].strip()


def plain_model(obs) -> pm.Model:
    """Non-centred hierarchy on the raw scales, run effects as latent variables."""
    ds = obs.to_dataset()
    loss = ds["loss"].to_numpy()
    run_i, dom_i, step_i = np.nonzero(np.isfinite(loss))
    own = ds["proportion"].to_numpy()
    steps = ds["step"].to_numpy().astype(float)
    coords = {"run": obs.runs, "domain": obs.domains}
    with pm.Model(coords=coords) as model:
        def hier(name, mu, sd):
            m = pm.Normal(f"{name}_mu", mu, sd)
            t = pm.HalfNormal(f"{name}_tau", sd)
            z = pm.Normal(f"{name}_z", 0, 1, dims="domain")
            return m + t * z

        log_c = hier("log_c", 1.0, 1.0)
        alpha = pt.exp(hier("log_alpha", np.log(0.1), 1.0))
        u = hier("log_b", 2.0, 2.0)  # log B with s_ref = 1: strongly tied to beta
        beta = pt.exp(hier("log_beta", np.log(0.5), 0.5))
        eps = pm.LogNormal("eps", np.log(1e-3), 1.0, dims="domain")
        sigma = pm.HalfNormal("sigma", 0.05, dims="domain")
        sigma_run = pm.HalfNormal("sigma_run", 0.05, dims="domain")
        z_run = pm.Normal("z_run", 0, 1, dims=("run", "domain"))
        r_eff = own + eps
        mu = laws.log_loss(r_eff[run_i, dom_i], steps[step_i], log_c=log_c[dom_i],
                           alpha=alpha[dom_i], u=u[dom_i], beta=beta[dom_i], s_ref=1.0, xp=pt)
        pm.Normal("y", mu + z_run[run_i, dom_i] * sigma_run[dom_i], sigma[dom_i],
                  observed=np.log(loss[run_i, dom_i, step_i]))
    return model


def jax_version() -> str:
    import jax

    return jax.__version__


def pymc_variant(obs, name, *, note, extra_seconds=0.0, **sample_kwargs):
    """PyMC's own NUTS on the product's model, 4 x 1000 draws at the product's target_accept."""
    t0 = time.perf_counter()
    model = build_model(obs)
    with model:
        trace = pm.sample(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False,
                          compute_convergence_checks=False, nuts_sampler="pymc",
                          target_accept=TARGET_ACCEPT, **sample_kwargs)
    seconds = time.perf_counter() - t0 + extra_seconds
    d = mcmc_diagnostics(trace, var_names=[v.name for v in model.free_RVs])
    return row(name, seconds, d, 4000, note)


def row(name, seconds, d, draws_total, note=""):
    ess = d.get("min_ess_bulk", float("nan"))
    return {"variant": name, "seconds": seconds, "divergences": d["n_divergent"],
            "max_rhat": d.get("max_rhat", float("nan")), "min_ess_bulk": ess,
            "ess_per_s": ess / seconds, "draws": draws_total, "note": note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/speed_model.md"))
    ap.add_argument("--plain-draws", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], help="variants to skip (substring match)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    obs, truth, _ = reference_workload(seed=args.seed)
    rows, loads = [], []

    def wanted(name):
        return not any(s in name for s in args.skip)

    # ours, nutpie: one compilation, two mass-matrix adaptations
    import nutpie

    nuts_post = None
    if wanted("ours/nutpie"):
        loads.append(("ours/nutpie (compile)", load()))
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(build_model(obs))
        compile_s = time.perf_counter() - t0
        for adaptation in ("low_rank", "diag"):
            name = f"ours/nutpie-{adaptation.replace('_', '')}"
            loads.append((name, load()))
            t0 = time.perf_counter()
            trace = nutpie.sample(compiled, draws=1000, tune=1000, chains=4, seed=1,
                                  adaptation=adaptation, target_accept=TARGET_ACCEPT,
                                  progress_bar=False, save_warmup=False)
            sample_s = time.perf_counter() - t0
            d = mcmc_diagnostics(trace)
            rows.append(row(name, compile_s + sample_s, d, 4000,
                            f"compile {compile_s:.1f} s + sample {sample_s:.1f} s; "
                            f"{int(trace.sample_stats['n_steps'].sum())} gradient evals"))
            if adaptation == "low_rank":
                nuts_post = trace.posterior

    if wanted("ours/pymc"):
        loads.append(("ours/pymc-nuts", load()))
        est = BayesianBiMix(law="bimix", method="pymc", seed=1).fit(obs)
        d = est.diagnostics_
        rows.append(row("ours/pymc-nuts", d["seconds"], d, 4000,
                        "PyMC's own NUTS (Python, C backend), diagonal mass matrix"))

    # Levers the default does not use, each on the same model.
    if wanted("ours/pymc-dense"):
        loads.append(("ours/pymc-dense", load()))
        rows.append(pymc_variant(obs, "ours/pymc-dense", init="jitter+adapt_full",
                                 note="PyMC's own NUTS, dense mass matrix adapted in tuning"))
    if wanted("ours/pymc-map-init"):
        loads.append(("ours/pymc-map-init", load()))
        t0 = time.perf_counter()
        with build_model(obs):
            start = pm.find_MAP(progressbar=False)
        rows.append(pymc_variant(
            obs, "ours/pymc-map-init", init="adapt_diag", initvals=start,
            extra_seconds=time.perf_counter() - t0,
            note="PyMC's own NUTS started at the MAP (find_MAP time included), diagonal mass"))
    if wanted("ours/nutpie-jax"):
        loads.append(("ours/nutpie-jax", load()))
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(build_model(obs), backend="jax",
                                             gradient_backend="jax")
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        trace = nutpie.sample(compiled, draws=1000, tune=1000, chains=4, seed=1,
                              target_accept=TARGET_ACCEPT, progress_bar=False, save_warmup=False)
        sample_s = time.perf_counter() - t0
        rows.append(row("ours/nutpie-jax", compile_s + sample_s, mcmc_diagnostics(trace), 4000,
                        f"JAX backend (jax {jax_version()}): compile {compile_s:.1f} s + sample "
                        f"{sample_s:.1f} s; low-rank mass matrix"))

    if wanted("plain"):
        loads.append(("plain/pymc-default", load()))
        n = args.plain_draws
        t0 = time.perf_counter()
        model = plain_model(obs)
        with model:
            trace = pm.sample(draws=n, tune=n, chains=4, random_seed=1, progressbar=False,
                              compute_convergence_checks=False)
        seconds = time.perf_counter() - t0
        d = mcmc_diagnostics(trace, var_names=[v.name for v in model.free_RVs])
        rate = seconds / (2 * n)
        rows.append(row("plain/pymc-default", seconds, d, 4 * n,
                        f"capped at {n}+{n} draws/chain; 1000+1000 extrapolated linearly "
                        f"(sampling rate incl. start-up): ~{rate * 2000:.0f} s"))

    if wanted("refit"):
        BayesianBiMix(law="bimix", seed=1).fit(obs)  # compiles (or finds) the model in this process
        loads.append(("ours/refit", load()))
        est = BayesianBiMix(law="bimix", seed=2).fit(obs)
        d = est.diagnostics_
        rows.append(row("ours/refit", d["seconds"], d, 4000,
                        "BayesianBiMix().fit on the same design: compiled model reused"))

    distances = {}
    for method, extra in (("laplace", "mode + Hessian"), ("advi", "10000 ADVI steps")):
        if not wanted(method) or nuts_post is None:
            continue
        loads.append((f"ours/{method}", load()))
        est = BayesianBiMix(law="bimix", method=method, draws=4000, tune=1000, seed=1).fit(obs)
        d = est.diagnostics_
        approx = est.posterior_.draws
        rows.append(row(f"ours/{method}", d["seconds"], {"n_divergent": 0}, 4000,
                        f"{extra}; approximate"))
        distances[method] = {}
        for v in CONTRACT:
            nm = nuts_post[v].stack(s=("chain", "draw"))
            vm = approx[v].stack(s=("chain", "draw"))
            z = float((abs(nm.mean("s") - vm.mean("s")) / nm.std("s")).max())
            lo, hi = vm.quantile([0.05, 0.95], dim="s")
            cover = float(((nm >= lo) & (nm <= hi)).mean())
            sd_ratio = float((vm.std("s") / nm.std("s")).median())
            distances[method][v] = (z, cover, sd_ratio)

    base = next((r for r in rows if r["variant"] == "ours/nutpie-lowrank"), None)
    lines = [
        "# Speed of the Bayesian BiMix model (reference workload)",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: "
        f"`nproc` = {os.cpu_count()}, shared with other engineers (load below)",
        f"- command: `.venv/bin/python benchmarks/speed_model.py --out {args.out} "
        f"--plain-draws {args.plain_draws}"
        + (f" --skip {' '.join(args.skip)}`" if args.skip else "`"),
        f"- workload: {len(obs.domains)} domains x {len(obs.runs)} runs x {len(obs.steps)} steps "
        "(benchmarks/workload.py, seed 0); 4 chains; target: 4 x 1000 draws, 0 divergences, "
        "R-hat <= 1.01, bulk ESS >= 400, <= 20 s including compilation",
        "",
        "| variant | wall s (incl. compile) | divergences | max R-hat | min bulk ESS | ESS/s | "
        "draws | ratio of ESS/s vs default | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = base["ess_per_s"] / r["ess_per_s"] if base and r["ess_per_s"] > 0 else float("nan")
        lines.append(
            f"| {r['variant']} | {r['seconds']:.1f} | {r['divergences']} | {r['max_rhat']:.3f} | "
            f"{r['min_ess_bulk']:.0f} | {r['ess_per_s']:.1f} | {r['draws']} | "
            f"default is {ratio:.1f}x | {r['note']} |")
    lines += ["", "Load average (1, 5, 15 min) just before each variant:", ""]
    lines += [f"- {name}: {value}" for name, value in loads]
    for method, distance in distances.items():
        lines += ["", f"{method} vs NUTS (default) on the same data: max over domains of "
                  "|mean difference| / NUTS sd, share of NUTS draws inside the approximation's "
                  "90% interval (0.90 is ideal), median sd ratio approximation/NUTS (1 is ideal):",
                  "", "| parameter | max abs(mean diff)/sd | coverage of NUTS draws | sd ratio |",
                  "|---|---|---|---|"]
        lines += [f"| {v} | {z:.2f} | {c:.2f} | {s:.2f} |" for v, (z, c, s) in distance.items()]
    text = "\n".join(lines) + "\n"
    write_result(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
