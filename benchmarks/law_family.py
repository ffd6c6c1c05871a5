"""The law family on the Data Mixing Laws 3Mix Pile runs: sampling health and held-out accuracy.

One fold per setting (the first held-out mixture of benchmarks/mixinglaws_split.py: leave one
mixture out, fit checkpoints 1000-30000, predict the held-out mixture at every checkpoint), every
law fitted once with the estimator's default sampler (nutpie, 4 chains x 1000 draws, tune 1000,
target_accept 0.95 with one retry at 0.99). Reports divergences, R-hat, bulk and tail ESS, wall time
(compilation included: each law and setting compiles once) and the held-out MRE of the
posterior-mean loss with the 90 % new-run band coverage, beside the paper's least squares on the
same fold. A small check, not the accuracy table: one fold cannot rank laws.

    .venv/bin/python benchmarks/law_family.py --data /work/shared/data/mixinglaws

Writes benchmarks/results/law_family_3Mix.md. Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_mixinglaws import run, sampler_options  # noqa: E402
from leastsq_mixinglaws import markdown  # noqa: E402
from mixinglaws_split import has_data  # noqa: E402
from reporting import Clock, uptime, write_result  # noqa: E402

from bimix_bayes import laws  # noqa: E402
from bimix_bayes.metrics import mean_relative_error  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "law_family_3Mix.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the mixinglaws folder")
    parser.add_argument("--laws", nargs="+", default=laws.names(), choices=laws.names())
    parser.add_argument("--settings", nargs="+", default=["3Mix-70M", "3Mix-160M"])
    sampler_options(parser, draws=1000, tune=1000, chains=4)  # the estimator's defaults
    parser.add_argument("--out", type=Path, default=RESULTS, help="results markdown file")
    args = parser.parse_args()
    if not has_data(args.data):
        return
    warnings.filterwarnings("ignore")
    clock = Clock()
    load_at_start = uptime()
    out = []
    for setting in args.settings:
        for law in args.laws:
            rows, folds = run(args.data, law, args.draws, args.tune, args.chains, clock.say,
                              [setting], max_folds=1)
            held = rows[rows["target"] == "held-out mixture"]
            fold = folds.iloc[0]
            for method in ("leastsq", "bayes"):
                if method == "leastsq" and law != args.laws[0]:
                    continue  # the same least-squares fit for every law
                g = held[held["method"] == method]
                out.append({
                    "setting": setting, "held out": fold["heldout"],
                    "law": "least squares (bimix)" if method == "leastsq" else law,
                    "s (incl. compile)": (fold["leastsq s"] if method == "leastsq"
                                          else fold["bayes s (incl. compile)"]),
                    "divergent": "" if method == "leastsq" else fold["divergent"],
                    "max R-hat": "" if method == "leastsq" else fold["max R-hat"],
                    "min ESS bulk": "" if method == "leastsq" else fold["min ESS bulk"],
                    "min ESS tail": "" if method == "leastsq" else fold["min ESS tail"],
                    "held-out MRE %": round(100 * mean_relative_error(g["loss"],
                                                                       g["predicted"]), 2),
                    "90% band coverage": "" if method == "leastsq" else round(
                        float(g["in90"].mean()), 3)})
    table = pd.DataFrame(out)
    print(table.to_string(index=False))
    text = f"""# The law family on the mixinglaws 3Mix runs: sampling and held-out accuracy (one fold)

{clock.header(f" for {len(args.settings) * len(args.laws)} Bayesian fits")}
- `uptime` at start: `{load_at_start}`; at end: `{uptime()}`
- each law fitted once per setting with the estimator's default sampler: nutpie
  {args.chains} chains x {args.draws} draws (tune {args.tune}), target_accept 0.95 with one retry
  at 0.99 when it diverges; seconds include the model's compilation

Fold: the first held-out mixture of benchmarks/mixinglaws_split.py per setting (fit on the other
mixtures' checkpoints 1000-30000; score the held-out mixture at every checkpoint). MRE of the
posterior-mean loss (least squares: of its point prediction); coverage of the 90 % new-run band.
One fold: these numbers say whether a law samples and is in the right range, not which law wins
(benchmarks/accuracy_mixinglaws.py scores every fold).

{markdown(table)}
"""
    write_result(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
