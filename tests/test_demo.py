"""The README's main job: `taucoffea demo` end to end on toy data (slow: several minutes)."""

from __future__ import annotations

import json
import re

import pytest

from taucoffea.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    wd = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--workdir", str(wd), "--quiet"]) == 0
    return wd


def test_model_between_reference_and_bayes_limit(demo):
    summary = json.loads((demo / "summary.json").read_text())
    for pt in ("20-100", "100-1000"):
        auc = summary["auc"][f"vs jet, pT {pt}"]
        model, deeptau, ideal = auc["taucoffea model"], auc["DeepTau v2p1"], auc["Bayes optimal (toy truth)"]
        assert deeptau < model < ideal, f"pT {pt}: model {model}, DeepTau-like {deeptau}, Bayes {ideal}"


def test_outputs_and_gallery(demo):
    assert len(list((demo / "shuffle_merge").glob("ShuffleMergeSpectral_*.parquet"))) == 4
    assert (demo / "working_points" / "working_points.json").exists()
    assert (demo / "runs" / "adversarial" / "model.keras").exists()
    agreement = json.loads((demo / "plots" / "adversarial" / "adversarial_agreement.json").read_text())
    assert set(agreement["results"]) == {"before", "after"}
    page = (demo / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) > 20 and all((demo / src).exists() for src in images)


def test_rerun_resumes(demo, capsys):
    assert main(["demo", "--workdir", str(demo), "--quiet", "--until", "shuffle-merge"]) == 0
    out = capsys.readouterr().out
    assert "toy: done before, skipped" in out and "shuffle-merge: done before, skipped" in out
