"""Exports: each training-configuration writer on its own (rounding, zero shares, odd names)."""

from __future__ import annotations

import json
import runpy

import numpy as np
import pandas as pd
import pytest
import yaml

from bimix_bayes import exports
from bimix_bayes.errors import BimixInputError

MIX = pd.Series({"web": 1 / 3, "code": 1 / 3, "math": 1 / 3})


def test_rounded_shares_sum_to_one_and_stay_plain_decimals(tmp_path):
    shares = exports.rounded_shares(MIX)
    assert shares.tolist() == [0.333334, 0.333333, 0.333333]
    assert abs(shares.sum() - 1.0) < 1e-12
    tiny = pd.Series({"web": 0.999998, "code": 2e-6})
    text = exports.write_megatron(tiny, tmp_path / "m.txt").read_text()
    assert text == "0.999998 web_text_document\n0.000002 code_text_document\n"  # never 2e-06


def test_zero_shares_are_left_out_of_olmo_and_megatron_but_kept_elsewhere(tmp_path):
    mix = pd.Series({"web": 0.75, "code": 0.25, "math": 0.0})
    olmo = yaml.safe_load(exports.write_olmo(mix, tmp_path / "o.yaml").read_text())
    assert [s["source_name"] for s in olmo["sources"]] == ["web", "code"]
    assert olmo["sources"][0]["paths"] == ["web/*.npy"]
    assert "math" not in exports.write_megatron(mix, tmp_path / "m.txt").read_text()
    hf = runpy.run_path(str(exports.write_hf(mix, tmp_path / "h.py", note="two\nlines")))
    assert hf["domains"] == ["web", "code", "math"] and hf["probabilities"][2] == 0.0
    assert json.loads(exports.write_json(mix, tmp_path / "j.json").read_text())["mixture"] == {
        "web": 0.75, "code": 0.25, "math": 0.0}


def test_yaml_names_that_look_like_other_types_stay_strings(tmp_path):
    mix = pd.Series({"yes": 0.25, "1.5": 0.25, "a: b": 0.25, "null": 0.25})
    olmo = yaml.safe_load(exports.write_olmo(mix, tmp_path / "o.yaml", note="# odd").read_text())
    assert [s["source_name"] for s in olmo["sources"]] == ["yes", "1.5", "a: b", "null"]
    assert all(isinstance(s["target_ratio"], float) for s in olmo["sources"])


def test_bad_inputs(tmp_path):
    with pytest.raises(BimixInputError, match="must contain {domain}"):
        exports.write_olmo(MIX, tmp_path / "o.yaml", paths="data/*.npy")
    with pytest.raises(BimixInputError, match="placeholder other than"):
        exports.write_megatron(MIX, tmp_path / "m.txt", paths="{domain}/{split}")
    with pytest.raises(BimixInputError, match="without spaces"):
        exports.write_megatron(MIX, tmp_path / "m.txt", paths="my data/{domain}")
    with pytest.raises(BimixInputError, match="sum to 0.9"):
        exports.rounded_shares(pd.Series({"a": 0.5, "b": 0.4}))
    with pytest.raises(BimixInputError, match="unknown export format"):
        exports.export(MIX, "toml", tmp_path / "p")
    assert not list(tmp_path.iterdir())
    np.testing.assert_allclose(exports.mixture_frame(MIX).to_numpy(), [[1 / 3] * 3])
