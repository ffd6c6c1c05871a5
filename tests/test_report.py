"""The HTML report: self-contained, the decision in words, and rendered by a real browser."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_plots import S_REF, TRUE, _draws, _observations

from bimix_bayes import diagnostics as diag
from bimix_bayes import report
from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix as bimix_law
from bimix_bayes.optimizer import NO_CONFIDENT_IMPROVEMENT, optimize
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
#: The flags the browser runs with: no sandbox (root in CI), nothing fetched, a throw-away profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def posterior() -> Posterior:
    """A 4-domain posterior whose diagnostics come from the real check on its draws."""
    draws = _draws(TRUE, 100, 0.03, seed=1)
    trace = xr.DataTree.from_dict({"posterior": draws})
    d = diag.mcmc_diagnostics(trace) | {"method": "nuts", "seconds": 1.5}
    return Posterior.from_draws(draws, _observations(TRUE, n_runs=10, seed=0),
                                spec=ModelSpec(law="bimix"), method="nuts", s_ref=S_REF,
                                diagnostics=d)


@pytest.fixture(scope="module")
def plan(posterior) -> dict:
    return optimize(posterior, 4000, seed=0).summary()


@pytest.fixture(scope="module")
def unsure(plan) -> dict:
    """A plan whose gain interval spans zero, without its stored verdict (an older plan file)."""
    return {k: v for k, v in plan.items() if k not in ("verdict", "confident")} | {
        "gain_mean": 0.002, "gain_lower": -0.004, "gain_upper": 0.008, "prob_improvement": 0.49}


@pytest.fixture(scope="module")
def page(posterior, unsure, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    report.write_report(posterior, path, plan=unsure, vocab_size=257, prior=False)
    return path


def test_paper_coefficients_summarise_to_paper_of_each_draw(posterior):
    table = report.paper_coefficients(posterior, prob=0.8)
    assert list(table.index.get_level_values("domain").unique()) == posterior.domains
    stacked = posterior.draws.stack(sample=("chain", "draw")).transpose("sample", "domain")
    paper = bimix_law.to_paper(**{k: stacked[k].to_numpy() for k in ("log_c", "alpha", "u", "beta")},
                               s_ref=S_REF)
    b = paper["B"][:, 1]  # code
    row = table.loc[("code", "B")]
    np.testing.assert_allclose([row["mean"], row["sd"]], [b.mean(), b.std(ddof=1)])
    np.testing.assert_allclose([row["lower"], row["upper"]], np.quantile(b, [0.1, 0.9]))
    text = report.paper_table(table)
    assert list(text.columns) == ["A", "alpha", "B", "beta"]
    assert text.loc["code", "B"].startswith(f"{b.mean():.4g} ± ")
    assert "geometric mean of the evaluated steps" in report.s_ref_note(posterior)


def test_report_is_self_contained_and_says_when_there_is_no_confident_gain(page, unsure):
    html = page.read_text(encoding="utf-8")
    # Nothing is fetched: every image is an embedded PNG, no scripts, no external links.
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "<script" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5  # curves, calibration, residuals, coefficients, plan vs reference
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert NO_CONFIDENT_IMPROVEMENT in html
    assert 'id="prob-improvement">0.490<' in html
    assert 'id="gain-lower">-0.004<' in html and 'id="gain-upper">0.008<' in html
    assert "R-hat" in html and "what it means" in html
    assert "Law comparison" not in html  # the posterior holds none


def test_a_confident_plan_and_a_law_comparison_are_reported(posterior, plan):
    assert plan["confident"] and plan["verdict"].startswith("confident improvement")
    tree = posterior.tree.copy()
    tree.attrs["law_comparison"] = json.dumps([{"law": "bimix", "elpd": -12.5, "mre": 0.011},
                                               {"law": "transfer", "elpd": -10.25, "mre": 0.009}])
    html = report.report_html(type(posterior)(tree), plan, prior=False)
    assert "Law comparison" in html and "transfer" in html and "-10.25" in html
    assert NO_CONFIDENT_IMPROVEMENT not in html
    assert 'class="verdict good"' in html
    # The plan's mixture beside the reference.
    assert f"{plan['mixture']['web']:.3f}" in html


def test_read_plan_refuses_what_is_not_a_plan(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    with pytest.raises(BimixInputError, match="plan.json: not a plan JSON file"):
        report.read_plan(bad)
    bad.write_text(json.dumps({"step": 10}))
    with pytest.raises(BimixInputError, match="lacks prob, gain_mean"):
        report.read_plan(bad)
    with pytest.raises(BimixInputError, match="file not found"):
        report.read_plan(tmp_path / "none.json")


def _chromium() -> str:
    """The browser, installed by the project's set-up script where it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        subprocess.run([str(ROOT / "scripts" / "install-chromium")], check=False,
                       capture_output=True, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is absent and scripts/install-chromium could not install it "
                    "(needs root and apt-get): the report is not checked in a browser")
    return found


def _browse(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess:
    profile.mkdir()
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action,
                           page.as_uri()], capture_output=True, text=True, timeout=180,
                          check=False, cwd=profile)


def test_report_renders_in_a_real_browser(page, unsure, tmp_path):
    from matplotlib.image import imread

    dom = _browse(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The DOM the browser built holds the decision and its numbers.
    assert NO_CONFIDENT_IMPROVEMENT in dom.stdout
    for key, text in (("prob-improvement", "0.490"), ("gain-mean", "0.002"), ("n-runs", "10")):
        assert re.search(rf'id="{key}"[^>]*>{re.escape(text)}<', dom.stdout), key
    assert dom.stdout.count("<img") == 5

    shot = tmp_path / "shot.png"
    done = _browse(page, tmp_path / "profile-shot", f"--screenshot={shot}",
                   "--window-size=1200,4000", "--hide-scrollbars")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    colours = np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    # Not blank: text, tables and the embedded figures give the page many colours...
    assert len(colours) > 200
    # ...and the figures (the lower part of the page) are drawn, not broken-image boxes.
    lower = pixels[2000:]
    assert lower.std() > 0.05


def test_cli_report_writes_the_page_and_refuses_a_bad_plan(posterior, plan, tmp_path, cli):
    fit, plan_path, out = tmp_path / "fit.nc", tmp_path / "plan.json", tmp_path / "report.html"
    posterior.save(fit)
    plan_path.write_text(json.dumps(plan))
    done = cli("report", fit, "--plan", plan_path, "--out", out, "--no-prior",
               "--title", "My mixtures")
    assert done.code == 0, done.err
    html = out.read_text(encoding="utf-8")
    assert "<title>My mixtures</title>" in html and 'id="prob-improvement"' in html
    plan_path.write_text("[]")
    cli("report", fit, "--plan", plan_path, "--out", tmp_path / "again.html").assert_user_error(
        "plan.json: not a plan JSON file")
    assert not (tmp_path / "again.html").exists()


def test_paper_coefficients_of_a_transfer_fit(posterior):
    draws = posterior.draws.copy()
    w = np.abs(0.02 * np.random.default_rng(3).standard_normal((2, 100, 4, 4)))
    draws["transfer"] = xr.DataArray(w, dims=("chain", "draw", "domain", "source"),
                                     coords={"source": posterior.domains})
    post = Posterior.from_draws(draws, posterior.observations, spec=ModelSpec(law="transfer"),
                                method="nuts", s_ref=S_REF)
    table = report.paper_coefficients(post)
    np.testing.assert_allclose(table.loc[("web", "alpha"), "mean"],
                               float(draws["alpha"].sel(domain="web").mean()))
