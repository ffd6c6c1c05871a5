"""Time per step of the CPU size ladder (``tiny`` -> ``tiny-wide``) on the embedded corpus.

Each preset trains the same run end to end through :func:`bimix_bayes.trainer.train` (the uniform
mixture over the embedded corpus's domains, seed 0, ``--n-evals`` evaluations ending at
``--steps``), one torch thread, presets interleaved over ``--repeats`` rounds so that machine load
hits them alike. The table reports each preset's size (``params``, non-embedding, as the trainer
records it), the CPU seconds of the process per step (robust to other jobs on a shared machine:
the wall time is reported beside it), the whole run's time, and the final validation loss averaged
over the domains (the wider model should be lower at equal steps, or the ladder has no size axis).

Usage::

    .venv/bin/python benchmarks/preset_ladder.py --steps 300 --repeats 1   # -> results/preset_ladder.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from reporting import Clock, write_result

from bimix_bayes.corpus import Corpus, build_embedded_corpus
from bimix_bayes.trainer import Preset, train

PRESETS = ("tiny", "tiny-wide")
HEADER = ("| preset | layers x width (heads) | params (non-embedding) | tokens / step | "
          "CPU ms / step | wall ms / step | CPU s / run | wall s / run | final mean loss |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def run_once(corpus: Corpus, preset: Preset, steps: int, n_evals: int, out: Path) -> dict:
    """Train the uniform mixture once; its CPU and wall seconds and final mean loss."""
    mixture = pd.DataFrame({d: [1 / len(corpus.domains)] for d in corpus.domains},
                           index=pd.Index(["uniform"], name="mixture"))
    cpu, wall = time.process_time(), time.perf_counter()
    obs = train(corpus, mixture, preset, out, steps=steps, n_evals=n_evals, device="cpu",
                threads=1, progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    final = obs.frame[obs.frame["step"] == steps]
    return {"cpu": cpu, "wall": wall, "loss": float(final["loss"].mean()),
            "params": float(obs.distinct_sizes[0])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n-evals", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / "preset_ladder.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    clock = Clock()
    names = args.presets.split(",")
    presets = {n: Preset.load(n) for n in names}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        clock.say("building the embedded corpus")
        corpus = Corpus.open(build_embedded_corpus(Path(tmp) / "corpus"))
        for r in range(args.repeats):
            for n in names:
                result = run_once(corpus, presets[n], args.steps, args.n_evals,
                                  Path(tmp) / f"{n}-{r}.csv")
                runs[n].append(result)
                clock.say(f"{n} round {r + 1}: {result['cpu']:.1f} s CPU, {result['wall']:.1f} s "
                          f"wall, final mean loss {result['loss']:.3f}")
        vocab = corpus.vocab_size
        domains = len(corpus.domains)
    rows = []
    base = presets[names[0]].model.n_params
    for n in names:
        p, rs = presets[n], runs[n]
        cpu = statistics.median(x["cpu"] for x in rs)
        wall = statistics.median(x["wall"] for x in rs)
        m, t = p.model, p.train
        rows.append(f"| `{n}` | {m.n_layer} x {m.n_embd} ({m.n_head}) | {m.n_params / 1e6:.2f}M "
                    f"({m.n_params / base:.1f}x) | {t.batch_size * m.block_size:,} | "
                    f"{1e3 * cpu / args.steps:.0f} | {1e3 * wall / args.steps:.0f} | {cpu:.0f} | "
                    f"{wall:.0f} | {statistics.median(x['loss'] for x in rs):.3f} |")
    text = f"""# CPU preset ladder: time per step

{clock.header('')}
- torch {torch.__version__}, 1 thread, fp32, CPU; the embedded corpus ({domains} domains,
  vocabulary {vocab}); one run per preset and round: the uniform mixture, seed 0, {args.steps}
  steps, {args.n_evals} evaluations; {args.repeats} round(s), presets interleaved; medians.

{HEADER}
{chr(10).join(rows)}

CPU ms / step counts this process's CPU time over the whole run (steps, evaluations, checkpoints)
divided by the steps; wall time includes waiting for the CPU on the shared machine.
"""
    write_result(args.results, text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
