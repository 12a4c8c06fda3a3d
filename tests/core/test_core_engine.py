"""The engine layer: backend choice, and the same accepted set whichever backend produced the candidates.

The candidates are fixed: a fake engine (honest about being one: its name says
"fake") replays scripted texts, shaped the way each backend returns them (hf
cuts at the first stop token itself; vLLM's outputs end with the stop token and
a finish reason), and scores them with a fixed function of the text. The beam
search, the quality filter and the shard protocol run for real on top of it.
"""
import json
import zlib

import pytest

from buckle.core.engine import Engine, Generation, Sample, choose
from buckle.core.engine import select as select_mod

RECORDS = [
    {"id": f"r{i}", "instruction": f"How do I keep a {thing} safe?",
     "response": f"Keep the {thing} clean and dry, and check it often."}
    for i, thing in enumerate(["bike", "tent", "knife", "ladder", "stove"])
]
SCRIPT = [  # revisions by grid position; some fail the filter (too short, no safety phrase)
    "Keep it clean and dry, check it often, and store it with care for everyone's safety.",
    "ok",
    "Clean it, dry it, and check it often so nobody is at risk of injury.",
    "Keep the item clean and dry and look at it often.",
]


class FakeEngine(Engine):
    """A stand-in engine: scripted candidates, perplexity from a hash of the text. Not a model."""

    def __init__(self, tok, shape: str):
        self.name, self.shape, self.tok = f"fake-{shape}", shape, tok
        self.max_length, self.eos_ids = 2048, [tok.eos_token_id]

    def sample(self, prompts, temperatures, top_ps, max_new_tokens, seed=None, min_new_tokens=0):
        out = []
        for k, (t, p, n) in enumerate(zip(temperatures, top_ps, max_new_tokens)):
            text = SCRIPT[(int(t * 10) + int(p * 10) + len(prompts[k])) % len(SCRIPT)]
            ids = self.tok(text, add_special_tokens=False)["input_ids"] + [self.eos_ids[0]]
            out.append(self._shape(ids, n))
        return out

    def _shape(self, ids, limit):
        if self.shape == "vllm":  # what vLLM hands back: stop token kept, finish_reason "stop"
            from buckle.core.engine.vllm_backend import _sample

            class Out:
                token_ids, finish_reason = ids + [5, 6], "stop"

            return _sample(Out, self.eos_ids, limit)
        from buckle.core.engine.hf_sample import _cut

        return _cut(ids + [7, 8], self.eos_ids, limit)  # generate pads past the stop token

    def generate(self, conversations, max_new_tokens, temperature=0.0, top_p=1.0, seed=0,
                 exact_tokens=False, progress=False):
        return [Generation("scripted", 1, [1]) for _ in conversations]

    def response_nll(self, prompts, responses, system=None):
        return [((zlib.crc32(r.encode()) % 1000) / 100.0 + 1.0, 1) for r in responses]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_choose_says_what_and_why(monkeypatch):
    assert choose("hf", "cuda") == ("hf", "asked for")
    name, reason = choose("auto", "cpu")
    assert name == "hf" and "device cpu" in reason and "sooner" in reason
    monkeypatch.setattr(select_mod, "vllm_installed", lambda: True)
    assert choose("auto", "cuda:0")[0] == "vllm"
    assert choose("vllm", "cpu") == ("vllm", "asked for: vllm imports here, in-process")
    monkeypatch.setattr(select_mod, "vllm_installed", lambda: False)
    monkeypatch.setattr(select_mod, "vllm_env", lambda: None)
    assert choose("auto", "cuda") == ("hf", "auto: CUDA device, but vllm is not installed")
    with pytest.raises(ValueError, match="vllm is not installed"):
        choose("vllm", "cpu")
    with pytest.raises(ValueError, match="unknown backend 'tgi'"):
        choose("tgi")


def test_config_kwargs_and_manifest_record():
    from buckle.curation.config import CurateConfig
    from buckle.eval.config import EvalConfig

    cfg = CurateConfig(engine="hf", tensor_parallel_size=4)
    kwargs = select_mod.config_kwargs(cfg)
    assert kwargs["backend"] == "hf" and kwargs["tensor_parallel_size"] == 4
    record = select_mod.choice_record(cfg)
    assert record["requested"] == "hf" and record["picked"] == "hf" and record["reason"] == "asked for"
    assert EvalConfig(model="m", output="o", benchmark="b", engine="vllm").engine == "vllm"
    with pytest.raises(ValueError, match="engine"):
        CurateConfig(engine="tgi")


def test_both_backend_shapes_give_the_same_samples(tok):
    prompts = [[1, 2, 3]] * 4
    a = FakeEngine(tok, "hf").sample(prompts, [0.2, 0.4, 0.6, 0.8], [1.0] * 4, [64] * 4)
    b = FakeEngine(tok, "vllm").sample(prompts, [0.2, 0.4, 0.6, 0.8], [1.0] * 4, [64] * 4)
    assert a == b and all(isinstance(s, Sample) and s.finished for s in a)
    cut = FakeEngine(tok, "vllm").sample(prompts[:1], [0.2], [1.0], [3])[0]
    assert len(cut.ids) == 3 and cut == FakeEngine(tok, "hf").sample(prompts[:1], [0.2], [1.0], [3])[0]


def _curate(tmp_path, monkeypatch, engine, name):
    from buckle.curation.config import CurateConfig
    from buckle.curation.executors import run

    monkeypatch.setattr(select_mod, "load_engine", lambda *a, **k: engine)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    cfg = CurateConfig(rounds=2, beam=2, temperatures=[0.2, 0.6], top_ps=[0.9, 1.0], shard_size=2,
                       batch_size=2, max_new_tokens=48, tolerance=0.3)
    out = tmp_path / name
    counts = run(cfg, str(src), str(out), "curate", "unused", progress=False)
    import pyarrow.parquet as pq

    rows = [r for part in sorted((out / "curated").glob("*.parquet")) for r in pq.read_table(part).to_pylist()]
    return counts, sorted((r["id"], r["curated"], r["improved"], r["round"]) for r in rows)


def test_accepted_set_is_the_same_whichever_backend(tmp_path, monkeypatch, tok):
    counts_hf, rows_hf = _curate(tmp_path, monkeypatch, FakeEngine(tok, "hf"), "hf")
    counts_vllm, rows_vllm = _curate(tmp_path, monkeypatch, FakeEngine(tok, "vllm"), "vllm")
    assert rows_hf == rows_vllm and len(rows_hf) == len(RECORDS)
    assert any(improved for _, _, improved, _ in rows_hf)  # the filter passed some, not all
    assert counts_hf["curated"] == counts_vllm["curated"] == len(RECORDS)


def test_multi_gpu_engine_gets_a_placement_group_per_actor():
    from buckle.curation.config import CurateConfig
    from buckle.curation.executors.ray_executor import engine_placement

    gpu_res = {"num_gpus": 1, "num_cpus": 1}
    args = engine_placement(CurateConfig(tensor_parallel_size=4, pipeline_parallel_size=2), dict(gpu_res))
    assert args["num_gpus"] == 0  # the actor holds no GPU itself; vLLM's workers take the group's 8
    assert args["ray_remote_args_fn"].args == (8,)
    assert engine_placement(CurateConfig(tensor_parallel_size=4, engine="hf"), dict(gpu_res)) == {}
    assert engine_placement(CurateConfig(), dict(gpu_res)) == {}
    assert engine_placement(CurateConfig(tensor_parallel_size=2), {"num_cpus": 0.9}) == {}  # no GPUs
