"""The dose-response sweep: its config checks, and a real two-size sweep on the tiny model (table, chart)."""
import json
import math
import subprocess
import sys

import pytest
import yaml

from buckle.core.config import ConfigError, load_config
from buckle.launcher.pipeline.config import PipelineConfig, resolve
from buckle.launcher.pipeline.sweep import variants

# a high constant rate moves the tiny model enough that the runs' ASR differ (as in the profiles test)
STAGE = {"max_steps": 3, "batch_size": 4, "max_length": 64, "learning_rate": 3.0e-3, "lr_scheduler": "constant"}


def _config(model, limits=(2, 4)):
    return {
        "name": "tiny-dose", "model": str(model), "align": False, "defenses": ["post"],
        "eval_base": False, "judge_agreement": False, "report_pairs": 0, "dose": True,
        "curate": {"rounds": 1, "beam": 1, "temperatures": [1.0], "top_ps": [1.0], "max_new_tokens": 8,
                   "batch_size": 4, "faithful": False},  # the tiny model writes noise
        "stages": {"attack": {"recipe": "embedded-attack", "overrides": {**STAGE, "data": {
                       "harmful": {"source": "harmful-pairs-train", "limit": 8}}}},
                   "post": {"recipe": "embedded-post", "overrides": STAGE}},
        "eval": {"benchmark": "advbench-dev", "limit": 8, "max_new_tokens": 4, "batch_size": 8},
        "sweep": [{"name": f"{n} texts", "curate": {"limit": n}} for n in limits],
    }


def test_the_shipped_dose_sweep_varies_only_the_number_of_texts():
    cfg = load_config(PipelineConfig, resolve("dose-1.5b"))
    got = variants(cfg)
    assert [v.curate.limit for _, v in got] == [24, 96, None]  # None: all of commonsense-train
    assert all(v.eval.benchmark == "advbench-dev" and v.defenses == ["post", "during"] for _, v in got)
    assert all(v.curate.objective == "amplify" and v.controls for _, v in got)


def test_a_dose_variant_that_changes_anything_else_is_named():
    raw = _config("m")
    raw["sweep"][1]["curate"]["objective"] = "reduce"
    with pytest.raises(ConfigError, match=r"sweep\[1\] \(4 texts\): changes curate.objective"):
        variants(PipelineConfig.model_validate(raw))
    raw = _config("m")
    raw["sweep"][1]["stages"] = {"post": {"overrides": {"epochs": 1}}}
    with pytest.raises(ConfigError, match=r"sweep\[1\] \(4 texts\): changes stages.post.overrides"):
        variants(PipelineConfig.model_validate(raw))
    with pytest.raises(ConfigError, match=r"sweep\[1\] \(again\): curate.limit 2 is also '2 texts's"):
        variants(PipelineConfig.model_validate({**_config("m"), "sweep": [
            {"name": "2 texts", "curate": {"limit": 2}}, {"name": "again", "curate": {"limit": 2}}]}))
    with pytest.raises(ValueError, match="dose: a dose-response sweep needs at least two"):
        PipelineConfig.model_validate({**_config("m"), "sweep": [{"curate": {"limit": 2}}]})


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def _cell(path):
    """An ASR cell computed here from an eval step's judged responses (keyword judge)."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    hits = [r["verdicts"]["keyword"]["label"] in ("complied", "unsafe") for r in rows]
    k, n = sum(hits), len(hits)
    lo, hi = _wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * lo:.1f}%, {100 * hi:.1f}%] (n={n})"


@pytest.mark.slow
def test_a_two_size_dose_sweep_on_the_tiny_model(tmp_path, tiny_model_dir):
    import matplotlib.image

    path = tmp_path / "dose.yaml"
    path.write_text(yaml.safe_dump(_config(tiny_model_dir)))
    root = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "buckle.launcher.cli", "pipeline", "--config", str(path),
                           "--output", str(root)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    md = (root / "levers.md").read_text()
    table = md[md.index("## Dose response"):]
    lines = [x for x in table.splitlines() if x.startswith("| post |")]
    assert [x.split(" | ")[1] for x in lines] == ["2", "4"]  # one line per size, by the texts trained on
    steps = {p.name for p in (root / "steps").iterdir()}
    assert sum(s.startswith("attack-") for s in steps) == 1  # the sizes share one attack
    assert sum(s.startswith("curate-attacked-") for s in steps) == 2
    # each line's cells are the eval steps' own verdicts, recomputed here; the attacked model is
    # evaluated once per size (its eval follows that size's contamination check of the texts)
    evals = {}
    for d in (root / "steps").iterdir():
        if d.name.startswith("eval-"):
            evals.setdefault(d.name.rsplit("-", 1)[0], []).append(d / "run" / "responses.jsonl")
    assert {k: len(v) for k, v in evals.items()} == {"eval-aligned": 2, "eval-attacked": 2, "eval-post": 2,
                                                     "eval-post-uncurated": 2}  # aligned: the model as given
    cells = {label: {_cell(p) for p in evals[label]} for label in evals}
    columns = {3: "eval-post", 4: "eval-post-uncurated", 5: "eval-attacked"}  # curated, twin, attacked
    for x in lines:
        got = x.split(" | ")
        assert all(got[i] in cells[label] for i, label in columns.items()), (x, cells)
    assert len({x.split(" | ")[i] for x in lines for i in columns}) > 1, cells  # a swapped column would show
    image = matplotlib.image.imread(root / "dose.png")
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # one panel, wider than tall
    assert "![ASR against the number of curated texts](dose.png)" in md
