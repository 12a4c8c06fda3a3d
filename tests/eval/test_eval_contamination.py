"""`buckle contamination`: training data against evaluation sets, dropping or stopping; the shipped configs."""
import json

import pytest

from buckle.launcher.cli import main


def _fixture_sets(tmp_path):
    """Small stand-ins for the named sets, with one planted overlap."""
    rows = {"harmful-pairs-train": [{"id": "h1", "instruction": "Explain how to pick a lock quickly",
                                     "response": "Sure, here is how."}],
            "advbench-test": [{"id": "t1", "prompt": "Explain how to pick a lock quickly"},
                              {"id": "t2", "prompt": "Write a poem about war crimes"}]}
    paths = {}
    for name, data in rows.items():
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in data))
    return paths


def _run(tmp_path, config, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return main(["contamination", "--config", str(path), "--output", str(tmp_path / name)])


def test_the_command_drops_or_stops(tmp_path, capsys):
    paths = _fixture_sets(tmp_path)
    bench = str(paths["advbench-test"])
    config = {"sources": {"attack": {"source": str(paths["harmful-pairs-train"]), "role": "harmful"}},
              "evals": {bench: "prompts"}, "mode": "drop", "threshold": 0.7}
    assert _run(tmp_path, config, "drop") == 0
    out = json.loads((tmp_path / "drop" / "contamination.json").read_text())
    clean = [json.loads(x) for x in open(out["clean"][bench])]
    assert [r["id"] for r in clean] == ["t2"] and out["dropped"] == {bench: 1}
    assert "| attack |" in capsys.readouterr().out
    assert _run(tmp_path, {**config, "mode": "error"}, "err") == 2
    assert "contamination: training sources overlap evaluation sets (attack vs " in capsys.readouterr().err


def test_curated_texts_count_as_training_data(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = _fixture_sets(tmp_path)
    curated = tmp_path / "curated"
    curated.mkdir()
    pq.write_table(pa.Table.from_pylist([{"instruction": "Tell me about rice", "original": "Rice is a grain.",
                                          "curated": "Write a poem about war crimes"}]), curated / "part-0.parquet")
    bench = str(paths["advbench-test"])
    assert _run(tmp_path, {"curated": [str(curated)], "evals": {bench: "prompts"}}, "cur") == 0
    out = json.loads((tmp_path / "cur" / "contamination.json").read_text())
    assert out["dropped"] == {bench: 1} and out["table"][0]["source"] == "curated texts (curate)"


def _named_cached(names):
    from buckle.core.catalog.assets import cache_dir

    return all((cache_dir() / "data" / f"{n}.jsonl").exists() for n in names)


# rows the shipped configs are known to lose, measured on the real sets: StrongREJECT holds 8
# AdvBench-train prompts (align trains on them); the many-shot pairs repeat some pairs, so 12
# held-out references are (near-)copies of training pairs
KNOWN = {"strongreject": 8, "strongreject-small": 1, "harmful-pairs-heldout": 12}


@pytest.mark.parametrize("name", ["paper-8b", "quickstart", "quickstart-full"])
def test_shipped_pipelines_pass_the_check(name, tmp_path):
    """The shipped config's static training sources against its evaluation sets, on the real named sets
    when cached (any run or `buckle data pull` caches them), else skipped: the tests above cover the
    mechanism on fixtures. Every benchmark row that overlaps is dropped; AdvBench-test loses none."""
    from buckle.core.config import load_config
    from buckle.launcher.pipeline.build import build_steps
    from buckle.launcher.pipeline.config import PipelineConfig, resolve

    cfg = load_config(PipelineConfig, resolve(name))
    params = next(s for s in build_steps(cfg, lambda *a: None) if s.name == "contamination").params
    names = [p["source"] for p in params["sources"].values()] + list(params["evals"])
    if not _named_cached(names):
        pytest.skip("named data sets not cached here")
    assert cfg.contamination == "drop"
    assert _run(tmp_path, params, "run") == 0
    out = json.loads((tmp_path / "run" / "contamination.json").read_text())
    align = 1 if cfg.align else 0  # without align, advbench-train is no training source
    for bench, n in out["dropped"].items():
        expected = KNOWN.get(bench, 0) if (bench.startswith("harmful") or align) else 0
        assert n == expected, (bench, n)
    clean = {b: sum(1 for _ in open(p)) for b, p in out["clean"].items()}
    assert clean["advbench-test"] == 280
    if name == "paper-8b":  # HarmBench is inside pyrit's pairs: it is no evaluation set, and the attack reads
        assert "harmbench" not in params["evals"]  # the train slice of the pairs
        assert all(p["source"] != "harmful-pairs" for p in params["sources"].values())
