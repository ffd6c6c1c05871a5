"""Plots: each function returns a figure with the expected panels and artists and writes the file."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from bimix_bayes import metrics, mixtures, plots, simplex
from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix as laws
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec

DOMAINS = ["web", "code", "math", "books"]
TRUE = pd.DataFrame({"log_c": [1.0, 0.5, 0.7, 0.9], "alpha": [0.05, 0.12, 0.1, 0.08],
                     "u": [-0.5, 0.0, -0.3, -0.8], "beta": [0.5, 0.6, 0.4, 0.5],
                     "eps": [1e-3, 2e-3, 1e-3, 5e-3]}, index=DOMAINS)
STEPS = [250, 500, 1000, 2000]
S_REF = 1000.0
PNG = b"\x89PNG"


def _observations(coef: pd.DataFrame, n_runs: int, seed: int, prefix: str = "run",
                  noise: bool = True) -> Observations:
    """Runs of random mixtures evaluated with the law, plus run effect and residual noise."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(len(coef)), n_runs)
    r_eff = mix[:, None, :] + coef["eps"].to_numpy()
    log_l = laws.log_loss(r_eff, np.array(STEPS, float)[None, :, None], s_ref=S_REF,
                          **{k: coef[k].to_numpy() for k in ("log_c", "alpha", "u", "beta")})
    if noise:
        log_l = (log_l + 0.02 * rng.standard_normal((n_runs, 1, len(coef)))
                 + 0.01 * rng.standard_normal(log_l.shape))
    rows = [dict(run=f"{prefix}{i}", domain=d, proportion=mix[i, j], step=s,
                 loss=float(np.exp(log_l[i, k, j])))
            for i in range(n_runs) for k, s in enumerate(STEPS) for j, d in enumerate(coef.index)]
    return Observations.from_frame(pd.DataFrame(rows))


def _draws(coef: pd.DataFrame, n_draw: int, spread: float, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (2, n_draw, len(coef))
    dims = ("chain", "draw", "domain")

    def jitter(name: str) -> np.ndarray:
        value = coef[name].to_numpy()
        noise = spread * rng.standard_normal(shape)
        # Positive coefficients move on the log scale, the others additively.
        return value * np.exp(noise) if name in ("alpha", "beta", "eps") else value + noise

    ds = xr.Dataset({k: (dims, jitter(k)) for k in coef.columns}, coords={"domain": list(coef.index)})
    ds["sigma"] = (dims, np.full(shape, 0.01))
    ds["sigma_run"] = (dims, np.full(shape, 0.02))
    return ds


@pytest.fixture(scope="module")
def observations() -> Observations:
    return _observations(TRUE, n_runs=10, seed=0)


@pytest.fixture(scope="module")
def posterior(observations) -> Posterior:
    return Posterior.from_draws(_draws(TRUE, 100, 0.03, seed=1), observations,
                                spec=ModelSpec(law="bimix"),
                                method="test", s_ref=S_REF)


@pytest.fixture(scope="module")
def transfer_posterior(observations) -> Posterior:
    draws = _draws(TRUE, 100, 0.03, seed=2)
    w = np.abs(0.02 * np.random.default_rng(3).standard_normal((2, 100, 4, 4)))
    w[..., range(4), range(4)] = 0.0
    draws["transfer"] = xr.DataArray(w, dims=("chain", "draw", "domain", "source"),
                                     coords={"domain": DOMAINS, "source": DOMAINS})
    return Posterior.from_draws(draws, observations, spec=ModelSpec(law="transfer"),
                                method="test", s_ref=S_REF)


def _written(path) -> bool:
    return path.read_bytes()[:4] == PNG


@pytest.fixture(scope="module")
def point_posterior(observations) -> Posterior:
    """A least-squares-like fit: one draw, with the noise scales."""
    return Posterior.from_draws(_draws(TRUE, 1, 0.0, seed=0).isel(chain=[0]), observations,
                                spec=ModelSpec(law="bimix"), method="leastsq", s_ref=S_REF)


# ------------------------------------------------------------------------------ prediction
def test_predictive_gives_a_one_draw_fit_noise_bands_of_the_right_width(point_posterior):
    mix = pd.DataFrame([[0.25] * 4], columns=DOMAINS, index=["even"])
    pred = plots.predictive(point_posterior, mix, [1000], prob=0.9, band="new-run")
    assert pred.sizes["sample"] >= plots.PLOT_SAMPLES
    curve = point_posterior.predict(mix, [1000], band="mean")["median"]
    # Log-loss noise is normal with sd sqrt(0.01^2 + 0.02^2): the 90% band spans +-1.645 sd.
    sd = np.hypot(0.01, 0.02)
    np.testing.assert_allclose(np.log(pred["upper"] / curve), 1.645 * sd, rtol=0.1)
    np.testing.assert_allclose(np.log(curve / pred["lower"]), 1.645 * sd, rtol=0.1)
    same = plots.predictive(point_posterior, mix, [1000], band="mean")
    assert same.sizes["sample"] == 1


def test_subsample_keeps_the_draws_and_their_variables(posterior):
    small = plots.subsample(posterior, 50, seed=1)
    assert (small.draws.sizes["chain"], small.draws.sizes["draw"]) == (1, 50)
    assert set(small.draws.data_vars) == set(posterior.draws.data_vars)
    flat = posterior.draws["alpha"].stack(sample=("chain", "draw")).transpose("sample", ...)
    picked = small.draws["alpha"].isel(chain=0).to_numpy()
    # Every resampled draw is one of the original draws, all domains together.
    assert all((np.abs(flat.to_numpy() - row).max(axis=1) == 0).any() for row in picked)
    assert plots.subsample(posterior, 10**6) is posterior  # fewer draws than asked: all of them


# ------------------------------------------------------------------------------ loss curves
def _medians(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == "median"]


def test_loss_curves_default_shows_the_most_distinct_runs_from_the_first_step_on(posterior,
                                                                                 tmp_path):
    path = tmp_path / "sub" / "curves.png"
    fig = plots.plot_loss_curves(posterior, path=path)
    assert _written(path)
    assert [ax.get_title() for ax in fig.axes] == DOMAINS
    assert f"{plots.MAX_CURVES} most distinct of 10 runs shown" in fig.get_suptitle()
    shown = mixtures.most_distinct(posterior.observations.mixtures(), plots.MAX_CURVES)
    for ax in fig.axes:
        # More mixtures than MAX_FILLED: bands as edges only (stacked fills blur into one).
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
        curves = _medians(ax)
        assert [c.get_label() for c in curves] == list(shown.index)
        # Each band has two dashed edges in its mixture's colour, so overlapping bands stay apart.
        edges = [line for line in ax.get_lines() if line.get_gid() == "band-edge"]
        assert len(edges) == 2 * plots.MAX_CURVES
        assert edges[0].get_color() == curves[0].get_color() and edges[0].get_linestyle() == "--"
        x = curves[0].get_xdata()
        # Never extrapolated back before the first observed step; forward past the last one.
        assert min(x) == STEPS[0] and max(x) >= 3 * STEPS[-1]
        assert ax.get_xscale() == "log"
        assert "nats per token" in ax.get_ylabel()
        # Runs of different mixtures get different markers as well as colours.
        assert len({c.get_marker() for c in curves}) == plots.MAX_CURVES
    # Observed points of the shown runs sit on top: one per step and shown run.
    dots = [c for c in fig.axes[0].collections if not isinstance(c, PolyCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == plots.MAX_CURVES * len(STEPS)
    assert len(fig.legends[0].get_texts()) == plots.MAX_CURVES


def test_loss_curves_mark_the_uniform_guess_bound_of_the_vocabulary(posterior):
    fig = plots.plot_loss_curves(posterior, domains=["web"], vocab_size=257)
    (ax,) = fig.axes
    (bound,) = [line for line in ax.get_lines() if line.get_gid() == "uniform-bound"]
    np.testing.assert_allclose(bound.get_ydata(), np.log(257))
    assert "ln(257) = 5.55" in fig.get_suptitle()
    assert not [line for line in plots.plot_loss_curves(posterior, domains=["web"]).axes[0]
                .get_lines() if line.get_gid() == "uniform-bound"]


def test_most_distinct_skips_near_duplicates():
    mix = pd.DataFrame({"a": [0.5, 0.5001, 0.9, 0.1, 0.1001], "b": [0.5, 0.4999, 0.1, 0.9, 0.8999]},
                       index=["m1", "m1b", "m2", "m3", "m3b"])
    assert mixtures.most_distinct(mix, 3).index.tolist() == ["m1", "m2", "m3"]
    assert mixtures.most_distinct(mix, 10) is mix


def test_loss_curves_for_given_mixtures_steps_and_domains(posterior):
    mix = pd.DataFrame([[0.25] * 4, [0.7, 0.1, 0.1, 0.1]], columns=DOMAINS, index=["even", "web"])
    fig = plots.plot_loss_curves(posterior, mix, steps=[100, 1000, 10000], band="mean",
                                 domains=["code"])
    (ax,) = fig.axes
    curves = _medians(ax)
    assert [line.get_label() for line in curves] == ["even", "web"]
    fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(fills) == 2  # few mixtures: the bands are filled too
    expected = posterior.predict(mix, [100, 1000, 10000], band="mean")["median"].sel(domain="code")
    np.testing.assert_allclose(curves[1].get_ydata(), expected.sel(mixture="web"))
    assert "mean curve" in fig.get_suptitle()
    with pytest.raises(BimixInputError, match="unknown domain"):
        plots.plot_loss_curves(posterior, mix, domains=["law"])


# ------------------------------------------------------------------------ predicted vs observed
def test_predicted_vs_observed_in_sample_has_one_bar_set_per_domain(posterior, tmp_path):
    path = tmp_path / "pvo.png"
    fig = plots.plot_predicted_vs_observed(posterior, path=path)
    assert _written(path)
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(DOMAINS)
    assert sum(len(b.lines[0].get_xdata()) for b in bars) == 10 * len(STEPS) * len(DOMAINS)
    assert "in-sample" in ax.get_title() and "160" in ax.get_title()
    assert any(t.get_text() == "y = x" for t in ax.get_legend().get_texts())


def test_predicted_vs_observed_of_a_point_fit_covers_about_prob(point_posterior):
    title = plots.plot_predicted_vs_observed(point_posterior).axes[0].get_title()
    coverage = float(title.split(": ")[1].split("%")[0])
    assert 75 <= coverage <= 100


def test_predicted_vs_observed_of_an_exact_point_fit_lies_on_the_diagonal(observations):
    exact = _observations(TRUE, n_runs=4, seed=5, prefix="held", noise=False)
    draws = _draws(TRUE, 1, 0.0, seed=0).isel(chain=[0])
    noiseless = draws.assign(sigma=draws["sigma"] * 0 + 1e-12, sigma_run=draws["sigma_run"] * 0)
    point = Posterior.from_draws(noiseless, observations, spec=ModelSpec(law="bimix"),
                                 method="leastsq", s_ref=S_REF)
    fig = plots.plot_predicted_vs_observed(point, exact)
    (ax,) = fig.axes
    for bars in ax.containers:
        x, y = bars.lines[0].get_xdata(), bars.lines[0].get_ydata()
        np.testing.assert_allclose(y, x, rtol=1e-9)
    assert "held-out runs" in ax.get_title() and "100% of 64" in ax.get_title()
    some = observations.subset(observations.runs[:2])
    assert "given runs" in plots.plot_predicted_vs_observed(point, some).axes[0].get_title()


def test_predicted_vs_observed_refuses_domains_the_posterior_does_not_know(posterior):
    other = TRUE.rename(index={"books": "legal"})
    with pytest.raises(BimixInputError, match="legal"):
        plots.plot_predicted_vs_observed(posterior, _observations(other, n_runs=2, seed=1))


# ------------------------------------------------------------------------------ coefficients
def test_coefficients_one_panel_per_coefficient_at_the_posterior_median(posterior, tmp_path):
    path = tmp_path / "coef.png"
    fig = plots.plot_coefficients(posterior, path=path)
    assert _written(path)
    assert len(fig.axes) == 5
    for ax, name in zip(fig.axes, ["log_c", "alpha", "u", "beta", "eps"], strict=True):
        assert ax.get_xlabel().startswith(name)
        assert [t.get_text() for t in ax.get_yticklabels()] == DOMAINS
        (median,) = ax.get_lines()
        np.testing.assert_allclose(median.get_xdata(),
                                   posterior.draws[name].median(("chain", "draw")).to_numpy())
    assert fig.axes[4].get_xscale() == "log"  # eps
    assert "200 draws" in fig.get_suptitle()


def test_coefficients_of_a_point_fit_say_so(point_posterior):
    assert "point estimate" in plots.plot_coefficients(point_posterior).get_suptitle()


def test_coefficients_of_the_transfer_law_add_a_weight_map(transfer_posterior):
    fig = plots.plot_coefficients(transfer_posterior, var_names=["alpha", "sigma"])
    assert len(fig.axes) == 4  # alpha, sigma, transfer map, its colour bar
    image = fig.axes[2].get_images()[0].get_array()
    assert image.shape == (4, 4) and np.all(np.diag(image) == 0)
    with pytest.raises(BimixInputError, match="nu"):
        plots.plot_coefficients(transfer_posterior, var_names=["nu"])


# ---------------------------------------------------------------------------------- simplex
@pytest.fixture(scope="module")
def symmetric_posterior() -> Posterior:
    """Three interchangeable domains: the best mixture is the centre of the triangle."""
    coef = pd.DataFrame({"log_c": 1.0, "alpha": 0.1, "u": -0.5, "beta": 0.5, "eps": 1e-3},
                        index=["a", "b", "c"])
    obs = _observations(coef, n_runs=5, seed=4)
    return Posterior.from_draws(_draws(coef, 1, 0.0, seed=0).isel(chain=[0]), obs,
                                spec=ModelSpec(law="bimix"),
                                method="test", s_ref=S_REF)


def test_simplex_map_of_symmetric_domains_peaks_at_the_centre(symmetric_posterior):
    grid, ref = simplex.simplex_map(symmetric_posterior, ["a", "b", "c"], step=1000, resolution=12)
    assert len(grid) == 13 * 14 // 2
    np.testing.assert_allclose(grid[["a", "b", "c"]].sum(axis=1), 1.0)
    best = grid.loc[grid["expected_loss"].idxmin(), ["a", "b", "c"]]
    np.testing.assert_allclose(best, 1 / 3)
    assert ref.name in symmetric_posterior.observations.runs
    # One draw: every mixture better than the reference has probability 1, the rest 0.
    ref_loss = symmetric_posterior.predict(ref.to_frame().T, [1000], band="mean")["mean"].mean().item()
    np.testing.assert_array_equal(grid["prob_improvement"],
                                  (grid["expected_loss"] < ref_loss).astype(float))


def test_simplex_holds_other_domains_at_the_reference_share(posterior, tmp_path):
    ref = pd.DataFrame([[0.3, 0.3, 0.2, 0.2]], columns=DOMAINS, index=["mine"])
    grid, got = simplex.simplex_map(posterior, ["web", "code", "math"], step=4000, reference=ref,
                                  resolution=6)
    np.testing.assert_allclose(grid["books"], 0.2)
    np.testing.assert_allclose(grid[["web", "code", "math"]].sum(axis=1), 0.8)
    assert got.name == "mine"
    assert grid["prob_improvement"].between(0, 1).all()

    path = tmp_path / "simplex.png"
    fig = plots.plot_simplex(posterior, ["web", "code", "math"], step=4000, reference=ref,
                             quantity="prob_improvement", resolution=6, path=path)
    assert _written(path)
    assert len(fig.axes) == 2  # the triangle and its colour bar
    assert "P(average loss < reference" in fig.axes[1].get_ylabel()
    ax = fig.axes[0]
    # mpltern's ternary axes: a labelled corner per domain, ticks in true shares (sum 0.8).
    assert (ax.get_tlabel(), ax.get_llabel(), ax.get_rlabel()) == (
        "math share", "web share", "code share")
    assert ax.ternary_sum == pytest.approx(0.8)
    assert [t.get_text() for t in ax.taxis.get_ticklabels() if t.get_text()]
    assert "sum 0.20" in fig.get_suptitle()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0] == "reference 'mine'" and labels[1].startswith("best on grid")


def test_simplex_best_of_many_sure_winners_is_the_lowest_expected_loss(symmetric_posterior):
    ref = pd.DataFrame([[0.8, 0.1, 0.1]], columns=["a", "b", "c"], index=["lopsided"])
    fig = plots.plot_simplex(symmetric_posterior, None, step=1000, reference=ref,
                             quantity="prob_improvement", resolution=12)
    best = [t.get_text() for t in fig.legends[0].get_texts()][1]
    assert best == "best on grid: a 0.33, b 0.33, c 0.33"


def test_simplex_draws_observed_runs_of_a_three_domain_fit_above_the_star(symmetric_posterior):
    fig = plots.plot_simplex(symmetric_posterior, ["a", "b", "c"], step=1000, resolution=6)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-1] == "observed runs"
    assert "expected average loss (nats per token)" == fig.axes[1].get_ylabel()
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    star = next(v for k, v in lines.items() if k.startswith("reference"))
    # The reference is an observed run: its dot is drawn over the star, not hidden under it.
    assert lines["observed runs"].get_zorder() > star.get_zorder()
    assert len(lines["observed runs"].get_xdata()) == 5


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(domains=["web", "code"]), "three different domains"),
    (dict(domains=["web", "code", "law"]), "unknown domain"),
    (dict(quantity="regret"), "unknown quantity"),
    (dict(step=0), "step must be"),
])
def test_simplex_refuses_bad_requests(posterior, kwargs, match):
    args = dict(domains=["web", "code", "math"], step=1000) | kwargs
    with pytest.raises(BimixInputError, match=match):
        plots.plot_simplex(posterior, **args)


# ----------------------------------------------------------------------------------- regret
def _regret_frame(zero: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [dict(strategy=s, runs=r, seed=k, regret=np.exp(-r / 8 * (1 + i)) * rng.uniform(0.5, 1.5))
            for i, s in enumerate(["random", "thompson"]) for r in (4, 8, 12) for k in range(3)]
    frame = pd.DataFrame(rows)
    if zero:
        frame.loc[frame["strategy"] == "thompson", "regret"] = 0.0
    return frame


def test_regret_curves_show_the_mean_over_seeds_on_a_log_axis(tmp_path):
    frame = _regret_frame()
    path = tmp_path / "regret.pdf"
    fig = plots.plot_regret(frame, path=path)
    assert path.read_bytes()[:4] == b"%PDF"
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["random", "thompson"]
    means = frame.groupby(["strategy", "runs"])["regret"].mean()
    np.testing.assert_allclose(lines[0].get_ydata(), means.loc["random"])
    # A curve on top of another stays visible: own marker and line style, shifted sideways.
    assert lines[0].get_marker() != lines[1].get_marker()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    shift = lines[1].get_xdata() - lines[0].get_xdata()
    assert (shift > 0).all() and (np.abs(shift) < 0.5).all()
    assert len(ax.collections) == 2  # one band per strategy
    assert "3 seed(s)" in ax.get_title()


def test_regret_of_zero_uses_a_symlog_axis_and_bad_tables_are_refused():
    ax = plots.plot_regret(_regret_frame(zero=True), target=0.01).axes[0]
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0
    assert ax.get_legend().get_texts()[-1].get_text() == "target 0.01"
    with pytest.raises(BimixInputError, match="missing column.*regret"):
        plots.plot_regret(pd.DataFrame({"strategy": ["a"], "runs": [1]}))
    with pytest.raises(BimixInputError, match="line 3: runs and regret must be numbers"):
        plots.plot_regret(pd.DataFrame({"strategy": ["a", "a"], "runs": [1, 2], "regret": [0.1, -1]}))


# -------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def posterior_file(posterior, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "fit.nc"
    posterior.save(path)
    return path


@pytest.mark.parametrize("args", [
    ["--kind", "curves", "--domains", "web,code", "--steps", "100,1000,8000", "--mean"],
    ["--kind", "predicted-vs-observed", "--prob", "0.5"],
    ["--kind", "coefficients", "--no-prior"],
    ["--kind", "residuals"],
    ["--kind", "curves", "--vocab-size", "257"],
    ["--kind", "simplex", "--domains", "web,code,math", "--step", "4000",
     "--quantity", "prob-improvement"],
])
def test_cli_plot_writes_each_kind(posterior_file, tmp_path, cli, args):
    out = tmp_path / "fig.png"
    done = cli("plot", posterior_file, "--out", out, *args)
    assert done.code == 0, done.err
    assert _written(out)
    assert f"wrote {out}" in done.out


def test_cli_plot_regret_from_a_csv(tmp_path, cli):
    table, out = tmp_path / "regret.csv", tmp_path / "regret.svg"
    _regret_frame().to_csv(table, index=False)
    done = cli("plot", table, "--kind", "regret", "--out", out)
    assert done.code == 0, done.err
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(("args", "match"), [
    (["--kind", "violin"], "'violin' is not one of 'curves'"),
    (["--kind", "simplex", "--domains", "web,code,math"], "needs --step"),
    (["--kind", "simplex", "--step", "100"], "name the three domains"),
    (["--kind", "curves", "--steps", "0"], "--steps takes"),
    (["--kind", "regret"], "this is a posterior file (netCDF); --kind regret draws"),
])
def test_cli_plot_bad_input_is_one_line_and_writes_nothing(posterior_file, tmp_path, cli, args,
                                                           match):
    out = tmp_path / "fig.png"
    cli("plot", posterior_file, "--out", out, *args).assert_user_error(match)
    assert not out.exists()


# -------------------------------------------------------------------------------- residuals
def test_residuals_of_an_exact_point_fit_are_zero_and_carry_the_share(observations):
    exact = _observations(TRUE, n_runs=3, seed=6, prefix="held", noise=False)
    draws = _draws(TRUE, 1, 0.0, seed=0).isel(chain=[0])
    point = Posterior.from_draws(draws, exact, spec=ModelSpec(law="bimix"), method="leastsq",
                                 s_ref=S_REF)
    rows = metrics.residuals(point)
    assert len(rows) == 3 * len(STEPS) * len(DOMAINS)
    np.testing.assert_allclose(rows["residual"], 0.0, atol=1e-9)
    np.testing.assert_allclose(rows["share"], rows["proportion"].astype(float))
    # Against other observations the residual is observed / predicted - 1, row by row.
    noisy = metrics.residuals(point, observations)
    np.testing.assert_allclose(noisy["residual"], noisy["loss"] / noisy["predicted"] - 1)


def test_residual_plot_has_a_step_and_a_share_panel(posterior, tmp_path):
    path = tmp_path / "residuals.png"
    fig = plots.plot_residuals(posterior, path=path)
    assert _written(path)
    by_step, by_share = fig.axes
    assert by_step.get_xscale() == "log" and "step" in by_step.get_xlabel()
    assert "share" in by_share.get_xlabel()
    points = sum(len(c.get_offsets()) for c in by_step.collections)
    assert points == 10 * len(STEPS) * len(DOMAINS)
    assert "mean relative error" in fig.get_suptitle()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == DOMAINS


# --------------------------------------------------------------------------- prior beside
def test_coefficients_draw_the_prior_beside_the_posterior(posterior):
    rng = np.random.default_rng(0)
    prior = xr.Dataset({name: (("sample", "domain"), rng.normal(i, 1.0, (400, 4)))
                        for i, name in enumerate(["log_c", "alpha"])},
                       coords={"domain": DOMAINS})
    fig = plots.plot_coefficients(posterior, var_names=["log_c", "alpha", "u"], prior=prior)
    for ax, name in zip(fig.axes[:2], ["log_c", "alpha"], strict=True):
        (grey,) = [line for line in ax.get_lines() if line.get_gid() == "prior-median"]
        np.testing.assert_allclose(grey.get_xdata(), prior[name].median("sample"))
        (median,) = [line for line in ax.get_lines() if line.get_gid() == "median"]
        # The posterior sits just above its prior on each domain's row.
        assert (median.get_ydata() > grey.get_ydata()).all()
    assert not [line for line in fig.axes[2].get_lines() if line.get_gid() == "prior-median"]
    assert "grey: the prior" in fig.get_suptitle()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["prior", "posterior"]


@pytest.mark.slow
def test_prior_of_draws_the_recorded_priors_and_none_for_least_squares(observations,
                                                                        point_posterior):
    from bimix_bayes.laws.bimix import Priors
    from bimix_bayes.model import BayesianBiMix, prior_of

    est = BayesianBiMix(law_priors=Priors(log_beta_mu=(np.log(0.2), 0.05)))
    post = Posterior.from_draws(_draws(TRUE, 20, 0.03, seed=1), observations, spec=est.spec(),
                                method="nuts", s_ref=S_REF,
                                sampler_config=est.sampler_config().to_dict())
    prior = prior_of(post, draws=400, seed=1)
    assert prior["beta"].dims == ("sample", "domain") and prior.sizes["sample"] == 400
    # The recorded prior, not the default one: beta's population median is near 0.2.
    assert 0.1 < float(prior["beta"].median()) < 0.3
    assert prior_of(point_posterior) is None


# ------------------------------------------------------------------------------ regret file
def test_read_regret_names_posterior_files_and_bad_lines(posterior_file, tmp_path):
    with pytest.raises(BimixInputError, match="this is a posterior file"):
        metrics.read_regret(posterior_file)
    table = tmp_path / "regret.csv"
    table.write_text("# units: regret in nats per token\nstrategy,runs,regret\na,1,0.1\na,2,x\n")
    with pytest.raises(BimixInputError, match="regret.csv: line 4: runs and regret"):
        metrics.read_regret(table)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00strategy")
    with pytest.raises(BimixInputError, match="not UTF-8 text"):
        metrics.read_regret(binary)
