"""Resume at another world size, the parts that need no training: the global batch and the record."""
import json

import pytest

from buckle.train.resize import keep_global_batch, saved_world


def test_accumulation_keeps_the_global_batch_or_names_the_fields():
    saved = {"world_size": 2, "batch_size": 2, "grad_accum": 1, "global_batch": 4}
    assert keep_global_batch(saved, 2, 1) == 2 and keep_global_batch(saved, 1, 4) == 1
    with pytest.raises(ValueError, match=r"global batch 4 \(batch_size 2 x grad_accum 1 x 2 ranks\) at 3 ranks"):
        keep_global_batch(saved, 2, 3)


def test_saved_world_reads_the_record_else_zero_partitions(tmp_path):
    record = tmp_path / "a"
    record.mkdir()
    (record / "world.json").write_text(json.dumps({"world_size": 4, "global_batch": 32}))
    assert saved_world(record)["world_size"] == 4
    old = tmp_path / "b" / "global_step6"
    old.mkdir(parents=True)
    for r in range(3):
        (old / f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt").write_bytes(b"")
    assert saved_world(tmp_path / "b") == {"world_size": 3}
    assert saved_world(tmp_path) is None
