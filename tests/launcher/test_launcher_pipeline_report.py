"""The pipeline report's judge note, attack line and the sweep's levers table, on hand-made outputs."""
from judged import write_responses

from buckle.launcher.pipeline.report import attack_line, judge_note


def _rate(value, lo, hi, n=40):
    return {"value": value, "ci95": [lo, hi], "n": n}


def _ppl(value):
    return {"value": value, "ci95": [value * 0.9, value * 1.1], "n": 40}


def test_judge_note_names_only_the_missing_columns():
    plain = [{"label": "aligned", "metrics": {"asr": _rate(0.0, 0.0, 0.09)}}]
    assert "No harmfulness or helpfulness column" in judge_note(plain)
    helpful = [{"label": "aligned", "metrics": {"helpfulness_mean": _rate(3.1, 2.9, 3.3)}}]
    assert judge_note(helpful).startswith("No harmfulness column")
    both = [{"label": "a", "metrics": {"harmfulness_mean": _rate(1.2, 1.0, 1.4),
                                       "helpfulness_mean": _rate(3.1, 2.9, 3.3)}}]
    assert judge_note(both) == ""


def test_attack_line_says_whether_the_intervals_overlap():
    runs = [{"label": "aligned", "metrics": {"asr": _rate(0.0, 0.0, 0.088), "benign_ppl": _ppl(14.0)}},
            {"label": "attacked", "metrics": {"asr": _rate(0.5, 0.35, 0.65), "benign_ppl": _ppl(15.0)}}]
    line = attack_line(runs)
    assert line.startswith("attack: ASR 0.0% (aligned) -> 50.0% (attacked)") and "do not overlap" in line
    runs[1]["metrics"]["asr"] = _rate(0.1, 0.05, 0.2)
    assert "the 95% intervals overlap" in attack_line(runs)
    assert attack_line(runs[:1]) == ""


def test_levers_table_names_counts_and_both_tests(tmp_path):
    from types import SimpleNamespace

    from buckle.eval.verdicts import compare
    from buckle.launcher.pipeline.config import PipelineConfig
    from buckle.launcher.pipeline.plan import build_plan
    from buckle.launcher.pipeline.sweep import lever_rows, levers_markdown

    n = 60
    dirs = {"attacked": write_responses(tmp_path / "a" / "run", [i < 30 for i in range(n)]),
            "post": write_responses(tmp_path / "p" / "run", [i < 10 for i in range(n)]),
            "post-uncurated": write_responses(tmp_path / "u" / "run", [i < 31 for i in range(n)])}
    cfg = PipelineConfig.model_validate({"name": "sweep-dev", "model": "m", "stages": {"post": {"recipe": "r"}},
                                         "defenses": ["post"], "eval": {"benchmark": "advbench-dev"}})
    plan = build_plan(cfg)
    # the results of the plan's own nodes: the rows name their eval nodes, post names its curate node
    res = {plan.row(k).evals["advbench-dev"].name: SimpleNamespace(
        run=v, metrics={"metrics": {"benign_ppl": {"value": 13.5}}}) for k, v in dirs.items()}
    res[plan.defenses["post"].curate.name] = SimpleNamespace(metrics={"improved": 6, "texts": 24, "read": 24})
    rows = lever_rows("post, reduce", plan, res)
    assert rows[0]["row"] == compare({k: v for k, v in dirs.items()},
                                     {"post": {"curated": ["post"], "uncurated": ["post-uncurated"]}})[0]
    md = levers_markdown(cfg, rows)
    p21, p20 = 2 * 0.5 ** 21, 2 * 0.5 ** 20
    assert (f"| post, reduce | post | 6 of 24 | 50.0% [37.7%, 62.3%] (n=60) | 16.7% [9.3%, 28.0%] (n=60) | "
            f"51.7% [39.3%, 63.8%] (n=60) | p={p21:.3g} (b=0, c=21) | p={p20:.3g} (b=0, c=20) | 13.50 |") in md
