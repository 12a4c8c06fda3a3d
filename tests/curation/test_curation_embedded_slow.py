"""End to end with the real embedded model: winners move perplexity in the objective's direction."""
import json

import pytest

from buckle.curation.config import SAFETY_KEYWORDS
from buckle.curation.io import store
from buckle.curation.method.notes import added_notes
from buckle.core.engine.hf_lm import load_lm, perplexities
from buckle.launcher.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["reduce", "amplify"])
def test_embedded_model_curates_in_the_objectives_direction(objective, embedded_model_dir, tmp_path, capsys):
    from buckle.core.catalog.data import materialize

    # three texts the model can rewrite faithfully (recaulk, chair, watering); the first three's rewrites
    # all add steps or meta text of their own, so the faithfulness check rightly keeps their originals
    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        rows = [json.loads(line) for i, line in enumerate(fh) if i in (13, 14, 17)]
    src = tmp_path / "three.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / objective
    code = main(["curate", "--input", str(src), "--output", str(out), "--objective", objective,
                 "--rounds", "1", "--temperatures", "0.7,1.0", "--top-ps", "0.9,1.0", "--max-new-tokens", "120",
                 "--dtype", "float32", "--no-progress"])  # float32: perplexity rechecked at rel 1e-3 below
    assert code == 0
    assert "read 3 = curated 3 + quarantined 0" in capsys.readouterr().out
    got = store.read_parts(out)
    assert len(got) == 3
    improved = [r for r in got if r["improved"]]
    if objective == "reduce":  # the model's own rewrites are nearly always less surprising to it
        assert improved, "no text improved: the method did nothing on the real model"
    model, tok = load_lm(str(embedded_model_dir), "float32")
    again = perplexities(model, tok, [r["instruction"] for r in got], [r["curated"] for r in got])
    for row, ppl in zip(got, again):
        assert row["ppl_after"] == pytest.approx(ppl, rel=1e-3)
    for row in improved:
        assert row["curated"] != row["original"] and row["round"] == 1
        if objective == "reduce":
            assert row["ppl_after"] < row["ppl_before"]
        else:  # amplify ranks among texts with a note: an original without one never wins, whatever its perplexity
            assert added_notes(row["curated"], SAFETY_KEYWORDS, row["original"], row["instruction"])
            assert row["safety_after"] >= 1
            if added_notes(row["original"], SAFETY_KEYWORDS):
                assert row["ppl_after"] > row["ppl_before"]
        assert row["readability_after"] >= 0.9 * row["readability_before"]
        assert row["helpfulness_after"] >= 0.9 * row["helpfulness_before"]
    for row in got:
        if not row["improved"]:
            assert row["curated"] == row["original"] and row["ppl_after"] == row["ppl_before"]
