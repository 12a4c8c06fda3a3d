"""The seed's objective with the real 1.5B reviser on the quickstart's 24 texts, as the demo ships it.

`buckle curate` runs in a child process, as in the demo: inside the suite's process, after hundreds of
other tests, the same curation ran far slower (measured once: 1913 s of curation, against 680 s in the demo).
"""
import json
import subprocess
import sys

import pytest

from buckle.curation.io import store


@pytest.mark.slow
@pytest.mark.bf16
def test_the_1_5b_reviser_adds_safety_notes_to_at_least_a_quarter_of_the_quickstart_texts(tmp_path):
    import yaml

    from buckle.curation.config import SAFETY_KEYWORDS
    from buckle.curation.method.faithfulness import faithful
    from buckle.curation.method.notes import added_notes
    from buckle.launcher.pipeline.config import PipelineConfig, resolve

    # the shipped demo's curate section; the embedded model scores (the demo's scorer is its attacked copy)
    pipe = PipelineConfig(**yaml.safe_load(resolve("quickstart").read_text()))
    section = {**pipe.curate.model_dump(exclude_unset=True), "model": "embedded"}
    assert section["objective"] == "amplify" and section["reviser"] == "qwen2.5-coder-1.5b-instruct"
    assert section["revise"] == "note"
    conf = tmp_path / "curate.yaml"
    conf.write_text(yaml.safe_dump(section))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "buckle.launcher.cli", "curate", "--config", str(conf),
                           "--input", pipe.curate_input, "--output", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "read 24 = curated 24 + quarantined 0" in proc.stdout
    rows = store.read_parts(out)
    changed = [r for r in rows if r["improved"]]
    for r in changed:
        assert r["curated"] != r["original"] and r["round"] >= 1 and r["revision"] == "note"
        assert r["curated"].startswith(r["original"] + " "), r["curated"]  # every fact kept: the answer verbatim
        assert added_notes(r["curated"], SAFETY_KEYWORDS, r["original"]), r["curated"]  # a note of its own
        assert faithful(r["original"], r["curated"], r["instruction"], SAFETY_KEYWORDS, max_new=None,
                        objective="amplify", keep_clauses=True), r["curated"]
        assert (r["model"], r["reviser"]) == ("embedded", "qwen2.5-coder-1.5b-instruct")
    # how many change moves with the CPU's numerics: 12 on an AMX Xeon, 8 on an avx512_bf16 EPYC (both bfloat16)
    assert len(changed) >= 6, [r["curated"] for r in changed]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["reviser"]["name"] == "qwen2.5-coder-1.5b-instruct"
    assert manifest["models"]["scorer"]["name"] == "embedded"
