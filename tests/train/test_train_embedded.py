"""The real embedded model: a few steps on curated-like texts, saved and reloaded."""
import json
from pathlib import Path

import pytest

from buckle.train.config import TrainConfig
from buckle.train.run import train

ROOT = Path(__file__).resolve().parents[2]


def _curated(tmp_path, n=8):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = (ROOT / "curation" / "data" / "commonsense.jsonl").read_text().splitlines()[:n]
    rows = []
    for line in lines:
        rec = json.loads(line)
        rows.append({"id": rec["id"], "instruction": rec["instruction"], "input": "",
                     "original": rec["response"], "improved": True,
                     "curated": rec["response"] + " Stay safe and check with a trusted source when unsure."})
    out = tmp_path / "curate" / "curated"
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "part-00000.parquet")
    return str(out.parent)


@pytest.mark.slow
def test_embedded_model_fine_tunes_on_curated_texts_and_reloads(embedded_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    seen = {}
    ids = torch.arange(100, 140)[None]

    class Probe(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kw):
            with torch.no_grad():
                seen["logits"] = model(input_ids=ids).logits

    cfg = TrainConfig(stage="post", model=str(embedded_model_dir), output_dir=str(tmp_path / "out"),
                      data={"curated": _curated(tmp_path)}, max_steps=3, batch_size=2, max_length=128,
                      learning_rate=2e-5, bf16=False)  # float32: the reload is compared to 1e-4
    m = train(cfg, callbacks=[Probe()])
    assert m["steps"] == 3 and m["examples"] == 8 and m["counts"]["curated"] == 8
    assert 0 < m["final_loss"] < 10
    model_dir = tmp_path / "out" / "model"
    reloaded = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(embedded_model_dir).eval()
    with torch.no_grad():
        got, before = reloaded(input_ids=ids).logits, base(input_ids=ids).logits
    assert (got - seen["logits"]).abs().max().item() < 1e-4
    assert (got - before).abs().max().item() > 1e-4
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True).endswith("<|im_start|>assistant\n")
