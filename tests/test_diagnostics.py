"""Remedies are spelt for whoever reads them: Python keywords, or the options of the command."""

from __future__ import annotations

import re

import pytest

from bimix_bayes import diagnostics as diag
from bimix_bayes.cli import app

#: A fit that fails every check.
BAD = {"chains": 4, "draws": 1000, "n_divergent": 7, "max_rhat": 1.08, "max_rhat_var": "alpha[web]",
       "min_ess_bulk": 120.0, "min_ess_bulk_var": "u[code]", "min_ess_tail": 90.0,
       "min_ess_tail_var": "u[code]", "min_bfmi": 0.2, "n_max_treedepth": 400, "method": "nuts"}


def _options(command: str) -> set[str]:
    """Every --option of ``bimix COMMAND``, read from the CLI itself."""
    import typer.main

    click_command = typer.main.get_command(app).commands[command]
    return {name for p in click_command.params for name in p.opts if name.startswith("--")}


@pytest.mark.parametrize("command", ["fit", "demo", "loop"])
def test_remedies_name_only_options_the_command_has(command):
    found = diag.problems(BAD, command)
    assert len(found) == 6
    text = " ".join(found)
    assert "=" not in re.sub(r"\[[^]]*\]", "", text)  # no Python keyword syntax
    named = set(re.findall(r"--[a-z][a-z-]*", text))
    own = named - {"--noise"} if command == "loop" else named  # loop points at `bimix fit`
    assert own <= _options(command), own - _options(command)
    if command == "loop":
        assert "`bimix fit OUT/observations.csv --noise student`" in text


def test_python_remedies_are_keywords_of_the_estimator():
    text = " ".join(diag.problems(BAD))
    assert "noise='student'" in text and "tune=2000" in text and "--" not in text


def test_summary_text_respells_stored_remedies_and_keeps_approximate_ones():
    stored = BAD | {"problems": diag.problems(BAD), "trustworthy": False}
    assert "noise='student'" in diag.summary_text(stored)
    fit = diag.summary_text(stored, options="fit")
    assert "--noise student" in fit and "noise='student'" not in fit
    approx = {"approximate": True, "problems": ["the Hessian is not positive definite"],
              "trustworthy": False, "method": "laplace"}
    assert diag.remedied_problems(approx, "fit") == approx["problems"]
    few = {"chains": 2, "draws": 2, "problems": []}
    assert diag.remedied_problems(few, "loop") == [
        "only 2 draws per chain: convergence cannot be checked; use --draws 1000"]
