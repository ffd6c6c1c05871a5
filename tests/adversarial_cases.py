"""The adversarial cases of issue 13, shared by tests/test_adversarial.py and
benchmarks/reliability.py: malformed observation and mixture files, bad option values, and the
deterministic option cases of classes 8, 10 and 11.

The generators take a :class:`Pick` (``one(seq)``, ``integer(lo, hi)``): hypothesis draws in the
tests (shrinking, reproducible with ``derandomize``), a seeded numpy generator in the benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "bimix_bayes" / "data" / "example"
OBS, MIX = EXAMPLE / "observations.csv", EXAMPLE / "mixtures.csv"


class Pick(Protocol):
    """Where a generator's choices come from."""

    def one(self, options): ...  # noqa: ANN001, ANN201, D102

    def integer(self, lo: int, hi: int) -> int: ...  # noqa: D102


BAD_CELLS = ["", "abc", "-1", "0", "nan", "inf", "-inf", "1e300", "1e20", " ", "1,5", '"', "0x10"]
COLUMNS = ["run", "domain", "proportion", "step", "loss"]


def malformed_observations(pick: Pick) -> tuple[str, int | None]:
    """The example observations with one defect; the 1-based line it is on (None: the header)."""
    lines = OBS.read_text().splitlines()
    kind = pick.one(["cell", "drop-column", "repeat-column", "repeat-row", "short-row",
                     "header-only"])
    if kind == "cell":
        i = pick.integer(1, len(lines) - 1)
        j = pick.one((2, 3, 4))  # proportion, step or loss
        cells = lines[i].split(",")
        cells[j] = pick.one(BAD_CELLS)
        lines[i] = ",".join(cells)
        return "\n".join(lines) + "\n", i + 1
    if kind == "drop-column":
        j = pick.one((0, 1, 2, 3, 4))
        return "\n".join(",".join(c for k, c in enumerate(line.split(",")) if k != j)
                         for line in lines) + "\n", None
    if kind == "repeat-column":
        j = pick.one((0, 1, 2, 3, 4))
        return "\n".join(line + "," + line.split(",")[j] for line in lines) + "\n", None
    if kind == "repeat-row":
        i = pick.integer(1, len(lines) - 1)
        return "\n".join([*lines[:i + 1], lines[i], *lines[i + 1:]]) + "\n", i + 2
    if kind == "short-row":
        i = pick.integer(1, len(lines) - 1)
        lines[i] = lines[i].rsplit(",", 1)[0]
        return "\n".join(lines) + "\n", i + 1
    return lines[0] + "\n", None


def malformed_mixtures(pick: Pick) -> str:
    """The example mixtures with one defect."""
    lines = MIX.read_text().splitlines()
    kind = pick.one(["cell", "drop-column", "unknown-column", "repeat-column", "repeat-row",
                     "empty-name", "no-rows"])
    if kind == "cell":
        i = pick.integer(1, len(lines) - 1)
        cells = lines[i].split(",")
        cells[pick.integer(1, len(cells) - 1)] = pick.one(BAD_CELLS)
        lines[i] = ",".join(cells)
    elif kind == "drop-column":
        j = pick.integer(0, 4)
        lines = [",".join(c for k, c in enumerate(line.split(",")) if k != j) for line in lines]
    elif kind == "unknown-column":
        lines = [lines[0] + ",law"] + [line + ",0" for line in lines[1:]]
    elif kind == "repeat-column":
        lines = [line + "," + line.split(",")[1] for line in lines]
    elif kind == "repeat-row":
        lines.append(lines[1])
    elif kind == "empty-name":
        lines[1] = "," + lines[1].split(",", 1)[1]
    else:
        lines = lines[:1]
    return "\n".join(lines) + "\n"


BAD_VALUES = {
    "predict": {"--prob": ["0", "1", "-0.5", "2", "nan"], "--steps": ["0", "-5", "a", ",", "1.5"]},
    "optimize": {"--step": ["0", "-1", "nan", "inf"], "--prob": ["0", "1.5", "nan"],
                 "--quantile": ["0", "1", "-1"], "--max-draws": ["0", "-3"],
                 "--bounds": ["web", "web=", "web=a:b", "nope=0:1", "web=0.9:0.1", "web=-1:2"],
                 "--max-epochs": ["0", "-1", "nan"], "--weight": ["web", "nope=1", "web=x"]},
    "suggest": {"--n": ["0", "-1", "100000"], "--min-distance": ["-0.1", "1.5", "nan"],
                "--max-draws": ["0"], "--step": ["0", "inf"]},
}


def bad_option(pick: Pick) -> tuple[str, str, str]:
    """A command, one of its options and a value it must refuse."""
    command = pick.one(sorted(BAD_VALUES))
    option = pick.one(sorted(BAD_VALUES[command]))
    return command, option, pick.one(BAD_VALUES[command][option])


def write_bad_files(ws: Path) -> None:
    """The files :data:`BAD_OPTIONS` names, beside the example data copied into ``ws``."""
    from test_trainer import MICRO

    text = OBS.read_text().splitlines()
    (ws / "steps.csv").write_text("\n".join([text[0], text[1].replace(",500,", ",1e20,")]) + "\n")
    (ws / "huge.csv").write_text("\n".join([text[0], text[1].rsplit(",", 1)[0] + ",1e300"]) + "\n")
    (ws / "dupcol.csv").write_text("\n".join([text[0] + ",loss"] +
                                             [t + ",1.0" for t in text[1:]]) + "\n")
    (ws / "inf.toml").write_text(MICRO.replace("lr = 1e-2", "lr = inf"))
    (ws / "nan.toml").write_text(MICRO.replace("lr = 1e-2", "lr = nan"))
    (ws / "tmix.csv").write_text("mixture,prose,digits,code\na,0.5,0.3,0.2\n")


#: ``(argv, needles)``: each must be refused with a line holding every needle; ``{ws}`` is a
#: folder made by :func:`write_bad_files`, ``{corpus}`` the trainer tests' corpus and ``{micro}``
#: their micro preset.
BAD_OPTIONS = [
    (["validate", "{ws}/steps.csv"], ("steps.csv", "line 2", "step must be at most")),
    (["validate", "{ws}/huge.csv"], ("huge.csv", "line 2", "at most 100")),
    (["validate", "{ws}/dupcol.csv"], ("dupcol.csv", "line 1", "'loss' appears more than once")),
    (["fit", "{ws}/obs.csv", "--tune", "0", "--out", "{ws}/f.nc"], ("tune must be a positive integer",)),
    (["optimize", "{ws}/fit.nc", "--step", "100", "--max-draws", "0", "--out", "{ws}/p.csv"],
     ("max_draws must be >= 1",)),
    (["optimize", "{ws}/fit.nc", "--step", "100", "--max-draws", "-1", "--out", "{ws}/p.csv"],
     ("max_draws must be >= 1",)),
    (["optimize", "{ws}/fit.nc", "--step", "inf", "--out", "{ws}/p.csv"],
     ("step must be a positive finite number",)),
    (["optimize", "{ws}/fit.nc", "--step", "100", "--max-epochs", "0", "--out", "{ws}/p.csv"],
     ("max_epochs must be a positive finite number",)),
    (["optimize", "{ws}/fit.nc", "--step", "100", "--bounds", "web=0.6:0.2", "--out",
      "{ws}/p.csv"], ("0 <= min <= max <= 1",)),
    (["suggest", "{ws}/fit.nc", "--step", "100", "--max-draws", "0", "--out", "{ws}/n.csv"],
     ("max_draws must be >= 1",)),
    (["suggest", "{ws}/fit.nc", "--step", "100", "--min-distance", "-1", "--out", "{ws}/n.csv"],
     ("total-variation distance in [0, 1]",)),
    (["suggest", "{ws}/fit.nc", "--step", "100", "--min-distance", "2", "--out", "{ws}/n.csv"],
     ("total-variation distance in [0, 1]",)),
    (["suggest", "{ws}/fit.nc", "--step", "100", "--n", "100000", "--out", "{ws}/n.csv"],
     ("at most 256 mixtures",)),
    (["predict", "{ws}/fit.nc", "--mixtures", "{ws}/mix.csv", "--steps", "100,100", "--out",
      "{ws}/p.csv"], ("--steps lists step 100 more than once",)),
    (["plot", "{ws}/fit.nc", "--out", "{ws}/fig.xyz"], ("fig.xyz", "unknown figure format")),
    (["loop", "--corpus", "{corpus}", "--model", "{micro}", "--steps", "4", "--rounds", "-1",
      "--out", "{ws}/study"], ("rounds must be a non-negative integer",)),
    (["loop", "--corpus", "{corpus}", "--model", "{micro}", "--steps", "4", "--device", "foo",
      "--out", "{ws}/study"], ("is not one of 'cpu', 'cuda', 'auto'",)),
    (["loop", "--corpus", "{corpus}", "--model", "{ws}/inf.toml", "--steps", "4", "--out",
      "{ws}/study"], ("inf.toml", "train.lr must be a finite number")),
    (["train", "--mixtures", "{ws}/tmix.csv", "--model", "{ws}/nan.toml", "--steps", "4",
      "--corpus", "{corpus}", "--out", "{ws}/o.csv"], ("nan.toml", "must be a finite number")),
    (["demo", "--steps", "0", "--out", "{ws}/demo"], ("steps must be a positive integer",)),
    (["demo", "--draws", "0", "--out", "{ws}/demo"], ("draws must be a positive integer",)),
    (["demo", "--batch", "0", "--out", "{ws}/demo"], ("batch must be a positive integer",)),
]
