"""Config errors name the key and come before any model loads; shipped defaults are the paper's."""
import pytest

from buckle.curation.config import CurateConfig
from buckle.launcher.cli import main


@pytest.fixture
def no_model(monkeypatch):
    """Fail loudly if anything tries to load a model."""
    import buckle.core.engine.hf_lm
    import buckle.core.catalog.models

    def boom(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(buckle.core.engine.hf_lm, "load_lm", boom)
    monkeypatch.setattr(buckle.core.catalog.models, "resolve_model", boom)


def _run(tmp_path, capsys, *argv, yaml_text=None):
    args = ["curate", "--output", str(tmp_path / "out"), *argv]
    if yaml_text is not None:
        (tmp_path / "c.yaml").write_text(yaml_text)
        args += ["--config", str(tmp_path / "c.yaml")]
    code = main(args)
    return code, capsys.readouterr().err.strip()


def test_unknown_key_is_named(tmp_path, capsys, no_model):
    code, err = _run(tmp_path, capsys, yaml_text="rounds: 2\nbeam_width: 3\n")
    assert code == 2 and "beam_width: unknown key" in err and "c.yaml" in err
    assert not (tmp_path / "out").exists()  # failed before the run directory or the model


def test_invalid_values_are_named(tmp_path, capsys, no_model):
    code, err = _run(tmp_path, capsys, "--temperatures", "0.5,3")
    assert code == 2 and "temperatures" in err and "(0, 2]" in err
    code, err = _run(tmp_path, capsys, "--tolerance", "1.5")
    assert code == 2 and "tolerance" in err
    code, err = _run(tmp_path, capsys, yaml_text="curate:\n  objective: maximise\n")
    assert code == 2 and "objective" in err and "reduce" in err
    code, err = _run(tmp_path, capsys, "--top-ps", "0.5,x")
    assert code == 2 and "comma-separated numbers" in err
    code, err = _run(tmp_path, capsys, "--judge", "openai")
    assert code == 2 and "judge_url" in err


def test_flags_override_the_file_and_defaults_are_the_papers(tmp_path):
    from buckle.core.config import load_config

    (tmp_path / "c.yaml").write_text("curate:\n  rounds: 2\n  beam: 4\n")
    cfg = load_config(CurateConfig, tmp_path / "c.yaml", {"rounds": 3, "beam": None}, section="curate")
    assert (cfg.rounds, cfg.beam) == (3, 4)
    paper = CurateConfig()
    assert paper.temperatures == paper.top_ps == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert (paper.beam, paper.rounds, paper.tolerance) == (3, 5, 0.10)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["curate", "--help"])
    text = capsys.readouterr().out
    for flag in ("--input", "--output", "--model", "--objective", "--rounds", "--beam", "--temperatures",
                 "--top-ps", "--limit", "--config", "--tolerance", "--judge-url", "--executor"):
        assert flag in text


def test_score_config_has_the_shared_keys_only():
    from buckle.curation.config import CorpusRunConfig, ScoreConfig
    from buckle.core.config import ConfigError, load_config

    assert set(CorpusRunConfig.model_fields) == set(ScoreConfig.model_fields) < set(CurateConfig.model_fields)
    assert (ScoreConfig().shard_size, CurateConfig().shard_size) == (1024, 64)
    with pytest.raises(ConfigError, match="rounds: unknown key"):
        load_config(ScoreConfig, None, {"rounds": 2})
    assert isinstance(ScoreConfig(), CorpusRunConfig) and isinstance(CurateConfig(), CorpusRunConfig)


def test_every_config_field_has_help():
    from buckle.curation.config import ScoreConfig

    for model in (CurateConfig, ScoreConfig):
        assert [n for n, f in model.model_fields.items() if not f.description] == []


def test_roles_and_model_checks_default_to_the_papers_setting(tmp_path, capsys, no_model):
    cfg = CurateConfig()
    assert cfg.reviser is None and cfg.check_model is None  # the scoring model writes; checks ask the reviser
    assert (cfg.safety_check, cfg.faithfulness_check, cfg.safety_weight) == ("keywords", "rules", 0.0)
    assert not cfg.uses_check_model and CurateConfig(faithfulness_check="model").uses_check_model
    code, err = _run(tmp_path, capsys, "--safety-weight", "0.5")
    assert code == 2 and "safety_weight" in err and "safety_check" in err
    code, err = _run(tmp_path, capsys, yaml_text="faithfulness_check: judge\n")
    assert code == 2 and "faithfulness_check" in err and "rules" in err
    assert CurateConfig(safety_check="model", safety_weight=0.5).safety_weight == 0.5
    from buckle.launcher.pipeline.config import CurateSection

    assert CurateSection().check_model is None  # the pipeline's section keeps the key (no name clash)


def test_help_names_the_roles(capsys):
    with pytest.raises(SystemExit):
        main(["curate", "--help"])
    text = capsys.readouterr().out
    for flag in ("--reviser", "--safety-check", "--safety-weight", "--faithfulness-check", "--check-model"):
        assert flag in text
