"""SIGKILL after a checkpoint, resume, and end with the uninterrupted run's weights."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KILLER = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    from buckle.train.run import load_recipe, train

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):  # called once the checkpoint is complete
            if state.global_step == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    train(load_recipe(sys.argv[1]), callbacks=[KillAfterSave()])
""")


def _recipe(tmp_path, model_dir, name, data, resume=False):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"stage: attack\nmodel: {model_dir}\noutput_dir: {tmp_path / name}\n"
                    f"data: {{harmful: {data}}}\nmax_steps: 8\nlearning_rate: 1.0e-2\nbatch_size: 2\n"
                    f"lr_scheduler: cosine\nwarmup_ratio: 0.2\nweight_decay: 0.01\nsave_steps: 4\n"
                    f"deepspeed: zero2\nresume: {str(resume).lower()}\n")
    return str(path)


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


def test_killed_run_resumes_to_the_uninterrupted_weights(tiny_model_dir, tmp_path):
    from tiny import _TEXT

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Q{i}?", "response": t}) + "\n"
                            for i, t in enumerate(_TEXT[:10])))
    (tmp_path / "killer.py").write_text(KILLER)
    full = subprocess.Popen([sys.executable, "-m", "buckle.train.run", _recipe(tmp_path, tiny_model_dir, "full", data)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "full.log", "w"))
    killed = subprocess.run([sys.executable, str(tmp_path / "killer.py"),
                                       _recipe(tmp_path, tiny_model_dir, "part", data), "4"],
                            cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    part = tmp_path / "part"
    assert (part / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists()
    assert not (part / "model").exists()

    resumed = subprocess.run([sys.executable, "-m", "buckle.train.run", _recipe(tmp_path, tiny_model_dir, "part", data, True)],
                             cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert full.wait() == 0, (tmp_path / "full.log").read_text()[-3000:]
    metrics = json.loads((part / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("checkpoint-4") and metrics["steps"] == 8

    a, b = _weights(tmp_path / "full" / "model"), _weights(part / "model")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    base = _weights(tiny_model_dir)
    assert max((a[k] - base[k]).abs().max().item() for k in a if k in base) > 1e-3
