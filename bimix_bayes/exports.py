"""A chosen mixture written as the files people train with.

One function per format, each taking the mixture as a :class:`pandas.Series` of shares indexed by
source (domain), as :attr:`bimix_bayes.optimizer.OptimizationResult.mixture` holds it:

- :func:`mixture_frame` / :func:`write_mixture`: the package's own wide mixture CSV (a ``mixture``
  column plus one column per domain), which ``bimix predict --mixtures``, ``bimix train
  --mixtures`` and ``bimix suggest --candidates`` read;
- :func:`write_hf`: Hugging Face ``datasets.interleave_datasets`` probabilities, as a Python snippet
  (``domains = [...]``, ``probabilities = [...]`` in that stated order);
- :func:`write_olmo`: an OLMo-core source-mixture YAML (``sources:`` with ``source_name``,
  ``target_ratio``, ``paths``: the fields of ``olmo_core.data.source_mixture.SourceMixtureConfig``);
- :func:`write_megatron`: Megatron-LM's ``weight prefix`` pairs, the file ``--data-args-path`` reads
  (or the value of ``--data-path``);
- :func:`write_json`: plain JSON ``{"mixture": {domain: share}, ...}``.

Shares are written rounded to :data:`DIGITS` decimals with the rounding residue put on the largest
share, so every file's shares sum to 1 to float precision (numpy's ``choice``, which
``interleave_datasets`` uses, and OLMo-core both check the sum). :data:`FORMATS` maps each
``--export`` name to its writer and file suffix.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> mix = pd.Series({"web": 0.6, "code": 0.3, "math": 0.1})
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> print(write_megatron(mix, folder / "blend.txt").read_text(), end="")
0.6 web_text_document
0.3 code_text_document
0.1 math_text_document
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bimix_bayes._io import atomic_path
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import validate_mixtures, write_mixtures

#: Decimals of the exported shares (a millionth of a training run is below any loader's resolution).
DIGITS = 6
#: Default location of each domain's data in the OLMo and Megatron files; ``{domain}`` is replaced.
#: Megatron's preprocess_data.py writes ``PREFIX_text_document.bin/.idx``; OLMo reads token ``.npy``.
DEFAULT_PATHS = {"olmo": "{domain}/*.npy", "megatron": "{domain}_text_document"}


def rounded_shares(mixture: pd.Series, digits: int = DIGITS) -> pd.Series:
    """The shares rounded to ``digits`` decimals, still summing to 1 (residue on the largest).

    Raises
    ------
    BimixInputError
        Shares that are negative, not finite or do not sum to 1 (within the package's tolerance).

    Examples
    --------
    >>> rounded_shares(pd.Series({"a": 1 / 3, "b": 2 / 3})).tolist()
    [0.333333, 0.666667]
    """
    frame = mixture.rename("x").to_frame().T.rename_axis("mixture").reset_index()
    shares = validate_mixtures(frame, source="<mixture>").iloc[0]
    rounded = shares.round(digits)
    big = int(np.argmax(rounded.to_numpy()))
    rounded.iloc[big] = round(rounded.iloc[big] + (1.0 - rounded.sum()), digits)
    rounded.name = None
    return rounded


def mixture_frame(mixture: pd.Series, name: str = "optimum") -> pd.DataFrame:
    """One mixture as the wide table :func:`bimix_bayes.mixtures.write_mixtures` writes.

    Examples
    --------
    >>> mixture_frame(pd.Series({"web": 0.75, "code": 0.25})).to_dict("index")
    {'optimum': {'web': 0.75, 'code': 0.25}}
    """
    return pd.DataFrame([mixture.to_numpy(dtype=float)], columns=list(mixture.index),
                        index=pd.Index([name], name="mixture"))


def write_mixture(mixture: pd.Series, path: str | os.PathLike[str], name: str = "optimum") -> Path:
    """Write the wide mixture CSV (``mixture,<domain>,...``) that ``predict``/``train`` read."""
    write_mixtures(mixture_frame(mixture, name), path)
    return Path(path)


def _write(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _header(comment: str, note: str) -> str:
    return "".join(f"{comment} {line}\n" for line in note.splitlines()) if note else ""


def write_hf(mixture: pd.Series, path: str | os.PathLike[str], note: str = "") -> Path:
    """Hugging Face ``datasets.interleave_datasets`` probabilities as a runnable Python snippet.

    The file assigns ``domains`` (the dataset order) and ``probabilities``; pass your datasets in
    that order. A comment shows the call.

    Examples
    --------
    >>> import tempfile, pathlib, runpy
    >>> path = write_hf(pd.Series({"web": 0.7, "code": 0.3}),
    ...                 pathlib.Path(tempfile.mkdtemp()) / "mix.py")
    >>> runpy.run_path(str(path))["probabilities"]
    [0.7, 0.3]
    """
    shares = rounded_shares(mixture)
    text = (
        _header("#", note)
        + "# Hugging Face datasets: pass one dataset per domain, in the order of `domains`:\n"
        "#   from datasets import interleave_datasets\n"
        "#   mixed = interleave_datasets([by_domain[d] for d in domains],\n"
        "#                               probabilities=probabilities, seed=0,\n"
        "#                               stopping_strategy=\"all_exhausted\")\n"
        f"domains = {json.dumps(list(shares.index))}\n"
        f"probabilities = {json.dumps([float(v) for v in shares])}\n"
    )
    return _write(path, text)


def write_olmo(mixture: pd.Series, path: str | os.PathLike[str], note: str = "",
               paths: str = DEFAULT_PATHS["olmo"]) -> Path:
    """An OLMo-core source-mixture YAML: ``sources:`` entries of ``SourceMixtureConfig``.

    ``paths`` is a template with ``{domain}``. Domains with a zero share are left out (OLMo-core
    would still count their tokens).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = write_olmo(pd.Series({"web": 0.7, "code": 0.3}),
    ...                   pathlib.Path(tempfile.mkdtemp()) / "mix.yaml", paths="s3://b/{domain}/*.npy")
    >>> print(path.read_text(), end="")
    sources:
      - source_name: "web"
        target_ratio: 0.7
        paths:
          - "s3://b/web/*.npy"
        max_repetition_ratio: 1.0
      - source_name: "code"
        target_ratio: 0.3
        paths:
          - "s3://b/code/*.npy"
        max_repetition_ratio: 1.0
    """
    shares = rounded_shares(mixture)
    _check_template(paths)
    lines = [_header("#", note) + "sources:"]
    for domain, share in shares.items():
        if share <= 0:
            continue
        lines += [f"  - source_name: {json.dumps(str(domain))}",
                  f"    target_ratio: {_decimal(share)}",
                  "    paths:",
                  f"      - {json.dumps(paths.format(domain=domain))}",
                  "    max_repetition_ratio: 1.0"]
    return _write(path, "\n".join(lines) + "\n")


def write_megatron(mixture: pd.Series, path: str | os.PathLike[str], note: str = "",
                   paths: str = DEFAULT_PATHS["megatron"]) -> Path:
    """Megatron-LM's blend: one ``weight prefix`` pair per line, for ``--data-args-path FILE``.

    Megatron splits that file on whitespace into the ``--data-path`` list, so it holds no comment
    (``note`` is accepted for a uniform signature and ignored); ``--data-path $(cat FILE)`` works
    too. Domains with a zero share are left out.
    """
    del note  # a comment would become part of --data-path
    shares = rounded_shares(mixture)
    _check_template(paths)
    pairs = [f"{_decimal(share)} {paths.format(domain=domain)}" for domain, share in shares.items()
             if share > 0]
    if any(len(p.split()) != 2 for p in pairs):
        raise BimixInputError("Megatron prefixes must not contain whitespace; give --export-paths "
                              "a template without spaces")
    return _write(path, "\n".join(pairs) + "\n")


def write_json(mixture: pd.Series, path: str | os.PathLike[str], note: str = "",
               extra: Mapping[str, Any] | None = None) -> Path:
    """Plain JSON: ``{"mixture": {domain: share, ...}, "note": ..., **extra}`` (file order kept)."""
    shares = rounded_shares(mixture)
    body: dict[str, Any] = {"mixture": {str(d): float(v) for d, v in shares.items()}}
    if note:
        body["note"] = note
    body.update(extra or {})
    return _write(path, json.dumps(body, indent=2) + "\n")


def _check_template(template: str) -> None:
    if "{domain}" not in template:
        raise BimixInputError(f"the path template must contain {{domain}}, got {template!r}")
    try:
        template.format(domain="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise BimixInputError(f"the path template {template!r} has a placeholder other than "
                              f"{{domain}} ({exc})") from None


def _decimal(share: float) -> str:
    """A share as a plain decimal (``0.000001``, never ``1e-06``, which YAML 1.1 reads as text)."""
    text = f"{float(share):.{DIGITS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


#: ``--export`` name -> (writer, file suffix). Writers taking ``paths`` get ``--export-paths``.
FORMATS: dict[str, tuple[Callable[..., Path], str]] = {
    "hf": (write_hf, ".hf.py"),
    "olmo": (write_olmo, ".olmo.yaml"),
    "megatron": (write_megatron, ".megatron.txt"),
    "json": (write_json, ".weights.json"),
}


def export(mixture: pd.Series, fmt: str, stem: str | os.PathLike[str], note: str = "",
           paths: str | None = None) -> Path:
    """Write ``mixture`` in format ``fmt`` (a :data:`FORMATS` key) to ``STEM + suffix``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> export(pd.Series({"a": 0.5, "b": 0.5}), "json", pathlib.Path(tempfile.mkdtemp()) / "p").name
    'p.weights.json'
    """
    if fmt not in FORMATS:
        raise BimixInputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    writer, suffix = FORMATS[fmt]
    path = Path(f"{os.fspath(stem)}{suffix}")
    if fmt in DEFAULT_PATHS:
        return writer(mixture, path, note=note, paths=paths or DEFAULT_PATHS[fmt])
    return writer(mixture, path, note=note)
