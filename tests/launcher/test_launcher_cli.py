"""The command registry and the flags built from config models."""
import argparse
from typing import Literal, Optional

import pytest
from pydantic import BaseModel, Field

from buckle.launcher.cli import COMMANDS, Command, CommandError, build_parser, main
from buckle.launcher.flags import add_model_flags, overrides_from


def test_every_registered_command_loads():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)


def test_a_registered_module_that_is_missing_is_an_error_naming_it(capsys):
    broken = {"curate": COMMANDS["curate"], "ghost": Command("ghost", "buckle.launcher.cmd_ghost")}
    with pytest.raises(CommandError, match=r"command 'ghost': module buckle\.launcher\.cmd_ghost failed to import"):
        build_parser(broken)
    assert main(["curate", "--help"], commands=broken) == 1
    assert "buckle.launcher.cmd_ghost" in capsys.readouterr().err


def test_a_registered_function_that_is_missing_is_an_error_naming_it():
    with pytest.raises(CommandError, match="cmd_jobs has no run_ghost"):
        build_parser({"ghost": Command("ghost", "buckle.launcher.cmd_jobs", "add_jobs_arguments", "run_ghost")})


class _Demo(BaseModel):
    """Demo keys."""

    rounds: int = Field(5, ge=1, description="rounds")
    grid: list[float] = Field(default_factory=lambda: [0.5, 1.0], description="a grid")
    mode: Literal["fast", "slow"] = Field("fast", description="how")
    address: Optional[str] = Field(None, description="where (default: nowhere)")
    share: float = Field(0.5, description="100% means all")
    verbose: bool = Field(False, description="talk more")
    judge_backend: Optional[str] = Field(None, description="renamed")


def _parser(**kw):
    p = argparse.ArgumentParser()
    add_model_flags(p, _Demo, **kw)
    return p


def test_flags_come_from_the_fields():
    p = _parser(rename={"judge_backend": "--judge"})
    args = p.parse_args(["--rounds", "3", "--grid", "0.2, 0.4", "--mode", "slow", "--no-verbose",
                         "--judge", "openai"])
    assert overrides_from(args, _Demo) == {"rounds": 3, "grid": [0.2, 0.4], "mode": "slow", "verbose": False,
                                           "judge_backend": "openai"}
    assert overrides_from(p.parse_args([]), _Demo) == {}  # absent flags leave the config alone
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "medium"])  # Literal: choices
    with pytest.raises(ValueError, match="grid: expected comma-separated numbers, got '1,x'"):
        overrides_from(p.parse_args(["--grid", "1,x"]), _Demo)


def test_help_shows_the_descriptions_and_the_models_defaults():
    text = _parser(exclude=["address"]).format_help()
    assert "rounds (default: 5)" in text and "a grid (default: 0.5,1.0)" in text
    assert "{fast,slow}" in text and "100% means all (default: 0.5)" in text
    assert "--address" not in text and "_Demo" in text and "Demo keys." in text


def test_score_takes_only_scoring_keys(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--model", "--batch-size", "--max-length", "--shard-size", "--executor", "--ray-address",
                 "--num-workers", "--cpus-per-worker", "--limit", "--response-column", "--dtype"):
        assert flag in text
    assert "rows per output part, the unit of resume (default: 1024)" in text
    for flag in ("--objective", "--rounds", "--beam", "--temperatures", "--judge"):
        assert flag not in text


def test_score_config_rejects_a_curate_key_naming_it(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("score:\n  batch_size: 4\n  objective: reduce\n")
    code = main(["score", "--config", str(tmp_path / "s.yaml"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "objective: unknown key" in err and "s.yaml" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["score", "--output", str(tmp_path / "out"), "--rounds", "2"])  # not a score flag


def test_curate_help_defaults_come_from_the_model(capsys):
    from buckle.curation.config import CurateConfig

    with pytest.raises(SystemExit):
        main(["curate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    cfg = CurateConfig()
    assert f"beam width k: candidates kept per round (default: {cfg.beam})" in text
    assert "--gen-batch-size N rows per generate call (default: 64)" in text
    assert "curated rows per output part, the unit of resume (default: 64)" in text


def test_eval_flags_keep_their_names(tmp_path):
    from buckle.eval.config import EvalConfig

    parser = build_parser()
    args = parser.parse_args(["eval", "--output", "o", "--judge", "openai", "--judge-retries", "2",
                              "--judge-backoff", "0.5", "--judge-timeout", "9", "--classifier", "c",
                              "--judges", "keyword,policy", "--no-progress", "--limit", "3"])
    assert overrides_from(args, EvalConfig) == {
        "output": "o", "judge_backend": "openai", "judge_max_retries": 2, "judge_backoff_s": 0.5,
        "judge_timeout_s": 9.0, "classifier_model": "c", "judges": ["keyword", "policy"], "progress": False,
        "limit": 3}
