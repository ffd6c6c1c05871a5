"""Plain BiMix against the cross-domain transfer law on the Data Mixing Laws 3-domain Pile runs.

Two pieces of evidence per setting (3Mix at 70M and 160M, checkpoints from 1000 on):

1. PSIS-LOO on all mixtures (``bimix_bayes.comparison.compare_laws``): elpd of leaving one
   (run, domain) curve out, its difference between the laws with standard error, Pareto k.
2. Held-out mixtures: the leave-one-mixture-out split of benchmarks/mixinglaws_split.py, fitted
   with each law (MRE of the posterior-mean loss, 90 % band coverage of a new run).

    .venv/bin/python benchmarks/transfer_vs_bimix.py --data /work/shared/data/mixinglaws

Writes benchmarks/results/transfer_vs_bimix.md (``--setting S``: transfer_vs_bimix_S.md).
Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_mixinglaws import run  # noqa: E402
from leastsq_mixinglaws import markdown  # noqa: E402
from mixinglaws_split import MAX_FIT_STEP, SETTINGS, has_data, load_setting  # noqa: E402
from reporting import Clock, write_result  # noqa: E402

from bimix_bayes.comparison import compare_laws  # noqa: E402
from bimix_bayes.metrics import mean_relative_error  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_vs_bimix.md"
LAWS = ("bimix", "transfer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the mixinglaws folder")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--setting", choices=list(SETTINGS), default=None,
                        help="one setting only (each costs four model compilations: run them "
                             "separately to keep a run under 15 minutes on 2 cores)")
    parser.add_argument("--skip-heldout", action="store_true",
                        help="PSIS-LOO only (the held-out folds compile one model per law)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results markdown file (default: results/transfer_vs_bimix[_SETTING].md)")
    args = parser.parse_args()
    settings = [args.setting] if args.setting else list(SETTINGS)
    out = args.out or RESULTS.with_name(
        f"transfer_vs_bimix{'_' + args.setting if args.setting else ''}.md")
    if not has_data(args.data):
        return
    warnings.filterwarnings("ignore")
    clock = Clock()
    say = clock.say

    loo_rows, summaries = [], []
    for setting in settings:
        obs = load_setting(args.data, setting)
        cmp = compare_laws(obs, laws=LAWS, draws=args.draws, tune=args.tune,
                           chains=args.chains, seed=0)
        say(f"{setting}: {cmp.summary()}")
        summaries.append(f"**{setting}** ({len(obs.runs)} mixtures):\n\n```\n{cmp.summary()}\n```")
        for law in LAWS:
            elpd, k = cmp.loo[law], np.asarray(cmp.loo[law].pareto_k).ravel()
            row = cmp.table.loc[law]
            d = cmp.posteriors[law].diagnostics
            loo_rows.append({"setting": setting, "law": law, "curves": k.size,
                             "elpd_loo": round(float(elpd.elpd), 1), "SE": round(float(elpd.se), 1),
                             "p_loo": round(float(elpd.p), 1),
                             "elpd_diff": round(float(row["elpd_diff"]), 1),
                             "diff SE": round(float(row["dse"]), 1),
                             "weight": round(float(row["weight"]), 2),
                             "Pareto k > 0.7": int((k > 0.7).sum()),
                             "divergent": d["n_divergent"], "max R-hat": round(d["max_rhat"], 3)})
    loo_table = pd.DataFrame(loo_rows)

    held_table = None
    if not args.skip_heldout:
        parts = []
        for law in LAWS:
            rows, _ = run(args.data, law, args.draws, args.tune, args.chains, say, settings)
            parts.append(rows[rows["method"] == "bayes"].assign(law=law))
        rows = pd.concat(parts, ignore_index=True)
        held = []
        for (setting, target, law), g in rows.groupby(["setting", "target", "law"], sort=False):
            held.append({"setting": setting, "target": target, "law": law, "n": len(g),
                         "MRE %": round(100 * mean_relative_error(g["loss"], g["predicted"]), 2),
                         "90% band coverage": round(float(g["in90"].mean()), 3)})
        held_table = pd.DataFrame(held)
    nl = "\n\n"
    text = f"""# Transfer law vs plain BiMix on the Data Mixing Laws 3-domain Pile runs

{clock.header("")}
- fits: normal noise, default priors, nutpie {args.chains} chains x {args.draws} draws
  (tune {args.tune}), checkpoints from 1000 on

## PSIS-LOO, leaving one (run, domain) curve out (all mixtures fitted)

`elpd_diff` and `diff SE` are relative to the best law of the setting (ArviZ 1.x `compare`:
negative `elpd_diff` = worse). Few curves (9 at 70M, 18 at 160M), so the SEs are rough; Pareto
k > 0.7 marks curves whose PSIS-LOO estimate is unreliable (with 2-5 other mixtures per domain,
leaving out a whole curve changes the posterior a lot): where most curves are flagged, the
held-out section below (exact refits without the mixture) is the evidence to go by.

{markdown(loo_table)}

{nl.join(summaries)}
"""
    if held_table is not None:
        text += f"""
## Held-out mixtures (leave one mixture out, fit checkpoints up to {MAX_FIT_STEP})

{markdown(held_table)}
"""
    write_result(out, text)
    print(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
