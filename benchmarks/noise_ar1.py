"""Normal vs AR(1) residual noise on the Data Mixing Laws Pile runs: Pareto k, bands, error, speed.

For each setting (3Mix 160M and 2Mix 160M by default) and each noise model, with the bimix law:

* a fit on every run and checkpoint (from ``MIN_STEP``), saved to a posterior file; PSIS-LOO over
  whole curves (``az.loo`` on that file, ``pointwise=True``): the share of curves with Pareto
  k > 0.7 and elpd_loo; wall time (compilation included), divergences, R-hat, ESS;
* leave-one-mixture-out folds (benchmarks/mixinglaws_split.py; ``--max-folds`` of them per
  setting): the held-out mixture's MRE (posterior-mean loss) and the coverage of the 50 % / 90 %
  new-run bands at every checkpoint.

    .venv/bin/python benchmarks/noise_ar1.py --data /work/shared/data/mixinglaws

Writes benchmarks/results/noise_ar1.md. Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_mixinglaws import sampler_options  # noqa: E402
from leastsq_mixinglaws import markdown  # noqa: E402
from mixinglaws_split import MAX_FIT_STEP, MIN_STEP, folds, has_data, load_setting  # noqa: E402
from reporting import Clock, write_result  # noqa: E402

from bimix_bayes.calibration import band_rows  # noqa: E402
from bimix_bayes.metrics import mean_relative_error, predicted_rows  # noqa: E402
from bimix_bayes.model import BayesianBiMix  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "noise_ar1.md"
NOISES = ("normal", "ar1")


def full_fit(obs, noise: str, args, seed: int) -> dict:
    """Fit every run, save the file, and score PSIS-LOO on the file as ArviZ reads it."""
    import arviz as az
    import xarray as xr

    t = time.perf_counter()
    est = BayesianBiMix(law="bimix", noise=noise, draws=args.draws, tune=args.tune, chains=args.chains,
                        seed=seed).fit(obs)
    seconds = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fit.nc"
        est.posterior_.save(path)
        with xr.open_datatree(path) as tree:
            loo = az.loo(tree.load(), pointwise=True)
    k = np.asarray(loo.pareto_k).ravel()
    d = est.diagnostics_
    row = {"curves": k.size, "share k > 0.7": round(float((k > 0.7).mean()), 3),
           "max k": round(float(k.max()), 2), "elpd_loo": round(float(loo.elpd), 1),
           "p_loo": round(float(loo.p), 1), "fit s (incl. compile)": round(seconds, 1),
           "divergent": d["n_divergent"], "max R-hat": round(d["max_rhat"], 3),
           "min ESS bulk": round(d["min_ess_bulk"]), "min ESS tail": round(d["min_ess_tail"])}
    if "rho" in est.posterior_.draws:
        row["rho (per doubling)"] = round(float(est.posterior_.draws["rho"].mean()), 3)
    row["sigma (mean over domains)"] = round(float(est.posterior_.draws["sigma"].mean()), 4)
    row["sigma_run (mean)"] = round(float(est.posterior_.draws["sigma_run"].mean()), 4)
    return row


def heldout(data_dir: Path, setting: str, noise: str, args, say) -> tuple[pd.DataFrame, list]:
    """Scored rows of the held-out mixture of each fold, and per-fold timings."""
    rows, times = [], []
    fold_list = [f for f in folds(data_dir) if f[0] == setting][:args.max_folds]
    for k, (_, run, split) in enumerate(fold_list):
        t = time.perf_counter()
        post = BayesianBiMix(law="bimix", noise=noise, draws=args.draws, tune=args.tune, chains=args.chains,
                             seed=k).fit(split.fit).posterior_
        times.append(time.perf_counter() - t)
        r = predicted_rows(post, split.heldout_runs)
        for prob in (0.5, 0.9):
            r[f"in{int(prob * 100)}"] = band_rows(post, split.heldout_runs, prob)["inside"].to_numpy()
        r["heldout"] = run
        rows.append(r)
        say(f"{setting} {noise} hold out {run}: {times[-1]:.0f} s, "
            f"{post.diagnostics['n_divergent']} divergent")
    return pd.concat(rows, ignore_index=True), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the mixinglaws folder")
    parser.add_argument("--settings", nargs="+", default=["3Mix-160M", "2Mix-160M"])
    parser.add_argument("--max-folds", type=int, default=3)
    sampler_options(parser, draws=400, tune=400, chains=2)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results markdown file")
    args = parser.parse_args()
    if not has_data(args.data):
        return
    warnings.filterwarnings("ignore")
    clock = Clock()
    loo_rows, held_rows = [], []
    for setting in args.settings:
        obs = load_setting(args.data, setting)
        for noise in NOISES:
            row = full_fit(obs, noise, args, seed=1)
            loo_rows.append({"setting": setting, "noise": noise, **row})
            clock.say(f"{setting} {noise} full fit: {row}")
            scored, times = heldout(args.data, setting, noise, args, clock.say)
            held_rows.append({
                "setting": setting, "noise": noise, "folds": len(times), "n": len(scored),
                "MRE %": round(100 * mean_relative_error(scored["loss"], scored["predicted"]), 2),
                "50% band coverage": round(float(scored["in50"].mean()), 3),
                "90% band coverage": round(float(scored["in90"].mean()), 3),
                "mean fold fit s": round(float(np.mean(times)), 1)})
    loo_table, held_table = pd.DataFrame(loo_rows), pd.DataFrame(held_rows)
    print(loo_table.to_string(index=False))
    print(held_table.to_string(index=False))
    text = f"""# Normal vs AR(1) residual noise on the Data Mixing Laws Pile runs

{clock.header(f" ({', '.join(args.settings)}; both noise models)")}
- law `bimix`, default priors, nutpie {args.chains} chains x {args.draws} draws (tune
  {args.tune}), the estimator's target_accept 0.95 with one retry at 0.99

## PSIS-LOO over whole curves (fit on every run and checkpoint >= {MIN_STEP})

`az.loo` on the saved posterior file (`pointwise=True`); one LOO unit per (run, domain) curve,
the run offset integrated out by the noise model. Pareto k > 0.7: that curve's PSIS estimate is
unreliable.

{markdown(loo_table)}

## Held-out mixtures

Leave one mixture out (benchmarks/mixinglaws_split.py, the first {args.max_folds} folds of each
setting), fit checkpoints {MIN_STEP}-{MAX_FIT_STEP} of the other mixtures, predict the held-out
mixture at every checkpoint: MRE of the posterior-mean loss and the share of observed losses
inside the central new-run band (`Posterior.predict(band="new-run")`). Fold fit times include
one compilation each (each fold is a new design).

{markdown(held_table)}
"""
    write_result(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
