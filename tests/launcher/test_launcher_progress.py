"""`buckle pipeline` shows a running step's progress (step count, percent, ETA) from its log."""
import io
import sys

import pytest

from buckle.launcher.pipeline.runner import run_command, run_local
from buckle.launcher.pipeline.progress import StepProgress, parse
from buckle.launcher.pipeline.steps import Step, run_steps

# a fake step: real tqdm into a file (as a step's log is), and lines of its own around it
FAKE = ("import sys, time\n"
        "from tqdm import tqdm\n"
        "print('model loaded')\n"
        "for _ in tqdm(range(5), desc='train', mininterval=0):\n"
        "    time.sleep(0.25)\n"
        "print('saved the model')\n")


@pytest.mark.parametrize("line, desc, n, total, eta", [
    ("generate:  45%|####5     | 45/100 [00:10<00:12,  4.50it/s]", "generate", 45, 100, "00:12"),
    (" 50%|\u2588\u2588\u2588\u2588\u2588     | 1/2 [00:01<00:01,  1.2s/it]", "", 1, 2, "00:01"),  # HF Trainer
    ("curate: 12/24 rows (50.0%), 1.2 rows/s, ETA 0:00:10", "curate", 12, 24, "0:00:10"),  # curation
    ("score (ray): 3/10 rows (30.0%)", "score (ray)", 3, 10, None),
    ("  0%|          | 0/4 [00:00<?, ?it/s]", "", 0, 4, None),
])
def test_progress_lines_are_read(line, desc, n, total, eta):
    r = parse(line)
    assert (r.desc, r.n, r.total, r.eta) == (desc, n, total, eta)


def test_other_lines_are_not_progress():
    for line in ("{'loss': 1.25, 'epoch': 0.5}", "read 24 = curated 20 + quarantined 4", "12it [00:01, 9.5it/s]"):
        assert parse(line) is None


def test_pipeline_step_shows_count_and_percent_and_keeps_the_full_log(tmp_path, capsys):
    def fake(ctx):
        code = run_command([sys.executable, "-c", FAKE], ctx.out / "log.txt", ctx.label, header="$ fake",
                           every_s=0, poll_s=0.1)
        assert code == 0
        return {}

    steps = [Step("curate", lambda ctx: {}), Step("align", fake, deps=["curate"]),
             Step("report", lambda ctx: {}, deps=["align"])]
    res = run_steps(steps, tmp_path)
    out = capsys.readouterr().out
    assert "[1/3] curate" in out and "[3/3] report" in out
    progress = [line for line in out.splitlines() if line.startswith("[2/3] align") and "%" in line]
    assert progress and "100% |####################| 5/5" in progress[-1]
    assert len(progress) >= 2 and all("train" in line and "ETA" in line for line in progress)
    log = (res["align"].dir / "log.txt").read_text()
    assert log.startswith("$ fake\nmodel loaded\n") and log.rstrip().endswith("saved the model")
    assert "train: 100%" in log and "5/5" in log


def test_off_a_terminal_progress_is_printed_now_and_then():
    out = io.StringIO()
    view = StepProgress("[1/1] x", out, every_s=3600)
    for i in range(1, 11):
        view.feed(f"\rx: {i * 10}%|#| {i}/10 [00:01<00:09, 1.0it/s]".encode())
    view.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "10%" in lines[0] and "100%" in lines[1]  # the first reading and the last


def test_on_a_terminal_the_line_is_redrawn():
    out = io.StringIO()
    view = StepProgress("[1/1] x", out, tty=True)
    view.feed("x: 50%|#| 5/10 [00:05<00:05, 1.0it/s]\r".encode())
    view.feed("x: 60%|#| 6/10 [00:06<00:04, 1.0it/s]\r".encode())
    view.close()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 3 and "60%" in text and "ETA 00:04" in text


def test_a_failed_step_names_its_log_and_quotes_its_end(tmp_path):
    log = tmp_path / "log.txt"
    with pytest.raises(RuntimeError, match=r"step `buckle no-such-command` failed \(exit 2\); log: .*log\.txt"):
        run_local(["no-such-command"], log, "[1/1] x")
    assert "invalid choice" in log.read_text()
