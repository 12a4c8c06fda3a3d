"""`buckle pipeline --dry-run [--json]`: the paper pipelines' job plans on the example profiles, and the job
a step is submitted as (one process unless it is a distributed training)."""
import json

import pytest

from buckle.cluster import jobs
from buckle.cluster.profiles import load_profile
from buckle.cluster.spec import JobSpec
from buckle.launcher.cli import main

ENGINE_STEPS = ("curate-", "eval-")


@pytest.fixture(autouse=True)
def shipped_profiles_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CONFIG_DIR", str(tmp_path / "config"))  # no user profile shadows a shipped one
    monkeypatch.chdir(tmp_path)


def _plan(capsys, config, profile):
    assert main(["pipeline", "--config", config, "--profile", profile, "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("profile", ["slurm-example", "kuberay-example"])
@pytest.mark.parametrize("config", ["paper-8b", "paper-70b"])
def test_paper_plans_run_one_process_per_step_but_trainings_and_every_verdict_fits(capsys, config, profile):
    plan = _plan(capsys, config, profile)
    steps = plan["steps"]
    assert plan["profile"] == profile and len(steps) == 100 and plan["fits"] is True
    assert plan["verdicts"] == {"fit": 97, "do_not_fit": 0, "not_planned": 0}
    trains = [s for s in steps if s["kind"] == "train"]
    others = [s for s in steps if s["kind"] != "train"]
    assert len(trains) == 37  # attack + 3 defenses x 3 runs x 3 seeds + pre's follow-up attacks
    for s in trains:  # nodes x 8 GPUs, one rank each, and the job says so (no launcher inside a launcher)
        assert s["gpus_per_node"] == 8 and s["processes"] == s["nodes"] * 8
        assert JobSpec(**s["job"]).processes == s["processes"] and "--nproc" not in s["command"]
    for s in others:
        assert s["processes"] == 1 and JobSpec(**s["job"]).processes == 1, s["name"]
    curates = [s for s in others if s["name"].startswith("curate-")]
    assert len(curates) == 2 and all(s["kind"] == "ray" and s["ray_cluster"] and s["job"]["ray_cluster"]
                                     for s in curates)
    assert all(s["nodes"] * s["gpus_per_node"] >= s["memory"]["gpus_per_engine"] * (16 if config == "paper-8b" else 8)
               for s in curates)  # the cluster holds num_workers engines
    checked = [s for s in steps if s["kind"] == "train" or s["name"].startswith(ENGINE_STEPS)]
    assert all(s["memory"] is not None and s["memory"]["fits"] is True for s in checked), \
        [(s["name"], s["memory"]) for s in checked if not (s["memory"] or {}).get("fits")]
    assert all(s["memory"] is None for s in steps if s not in checked)  # CPU tasks: nothing to plan


def test_the_70b_plan_curates_at_tp_4_and_counts_the_lora_merge(capsys):
    steps = {s["name"]: s for s in _plan(capsys, "paper-70b", "slurm-example")["steps"]}
    assert steps["curate-aligned"]["memory"]["gpus_per_engine"] == 4 and steps["curate-aligned"]["nodes"] == 4
    train = steps["post-s0"]["memory"]
    assert (train["row"]["method"], train["row"]["zero"], train["row"]["offload"]) == ("lora", 3, "optimizer")
    # shard by shard, the merge holds a few GiB per rank, not a second copy of the 131 GiB base
    assert train["merge"]["fits"] is True and train["merge"]["with_training_cpu_gib"] > train["merge"]["cpu_gib"] > 8
    assert train["merge"]["cpu_gib"] < 64
    assert steps["eval-attacked"]["gpus_per_node"] == 4 and steps["eval-attacked"]["processes"] == 1


def test_the_text_plan_names_every_step_with_its_command(capsys):
    assert main(["pipeline", "--config", "paper-8b", "--profile", "slurm-example", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "memory verdicts: 97 fit, 0 do not fit, 0 not planned" in out.splitlines()[0]  # 37 trainings, 60 engines
    assert "8 process(es), launcher deepspeed" in out and "2 node(s) x 8 GPU(s), 1 process(es), launcher none, Ray " \
        "cluster" in out and "$ buckle report " in out


def test_a_plan_that_does_not_fit_says_so(capsys, tmp_path):
    from buckle.core.config import read_yaml
    from buckle.launcher.pipeline.config import resolve

    cfg = read_yaml(resolve("paper-70b"))
    for stage in cfg["stages"].values():  # full fine-tuning, everything offloaded: ~1 TiB of host states
        stage["overrides"].update(deepspeed="zero3-offload", lora=None)
    path = tmp_path / "full.yaml"
    path.write_text(json.dumps(cfg))
    plan = _plan(capsys, str(path), "kuberay-example")
    attack = next(s for s in plan["steps"] if s["name"] == "attack")["memory"]
    assert plan["fits"] is False and attack["fits"] is False and attack["row"]["cpu_gib_per_node"] > 256
    assert "> 256.0 GiB" in attack["row"]["why"] and "merge" not in attack


def _submitted(monkeypatch, tmp_path, profile, argv, placement):
    from types import SimpleNamespace

    from buckle.launcher.pipeline import runner

    seen = []

    def fake_run_job(spec, prof, poll_s, on_submit=None):  # the job is built, rendered, never sent
        seen.append(spec)
        return SimpleNamespace(id="bk-test"), "COMPLETED", ""
    monkeypatch.setattr(runner, "run_job", fake_run_job)
    if placement is None:  # what any caller without a step's placement gets
        runner.run_on_profile(profile, argv, tmp_path / "log.txt")
    else:
        runner.JobRunner(profile)(argv, tmp_path / "log.txt", "[1/1] step", placement=placement)
    return seen[-1], jobs.render(seen[-1], load_profile(profile))


def _steps(profile):
    from buckle.core.config import load_config
    from buckle.launcher.pipeline.build import build_steps
    from buckle.launcher.pipeline.config import PipelineConfig, resolve

    cfg = load_config(PipelineConfig, resolve("paper-8b"), {"profile": profile})
    return {s.name: s for s in build_steps(cfg, lambda *a: None)}


def test_run_on_profile_submits_a_non_training_step_as_one_process(monkeypatch, tmp_path):
    spec, script = _submitted(monkeypatch, tmp_path, "slurm-example", ["report", "a", "--output", "b"], None)
    assert spec.processes == 1 and spec.resolved_launcher() == "none" and spec.gpus_per_node == 0
    assert "torchrun" not in script and "#SBATCH --ntasks-per-node=1" in script and "srun" not in script
    steps = _steps("slurm-example")
    spec, script = _submitted(monkeypatch, tmp_path, "slurm-example", ["eval", "--config", "e.yaml"],
                              steps["eval-attacked"].placement)
    assert (spec.processes, spec.gpus_per_node, spec.resolved_launcher()) == (1, 1, "none")
    assert "torchrun" not in script and "#SBATCH --gpus-per-node=1" in script
    spec, script = _submitted(monkeypatch, tmp_path, "slurm-example", ["curate", "--config", "c.yaml"],
                              steps["curate-aligned"].placement)
    assert (spec.nodes, spec.processes, spec.ray_cluster) == (2, 1, True) and "torchrun" not in script
    spec, script = _submitted(monkeypatch, tmp_path, "slurm-example", ["train", "--config", "r.yaml"],
                              steps["attack"].placement)
    assert spec.processes == 8 and "--ntasks-per-node=8" in script and "--nproc" not in script  # srun's 8 ranks


def test_run_here_a_training_starts_its_own_ranks_and_every_other_step_runs_once(capsys):
    assert main(["pipeline", "--config", "paper-8b", "--dry-run", "--json"]) == 0
    steps = {s["name"]: s for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["attack"]["command"].endswith("--nproc 8 --launcher deepspeed") and steps["attack"]["job"] is None
    assert all(s["processes"] == 1 and "--nproc" not in s["command"] for s in steps.values() if s["kind"] != "train")
    assert steps["eval-attacked"]["gpus_per_node"] == 0 and steps["eval-attacked"]["memory"] is None  # no GPUs here


def test_a_ray_step_on_a_ray_profile_asks_the_existing_cluster_for_no_gpu(monkeypatch, tmp_path):
    from buckle.launcher.pipeline.resources import RAY, Placement

    spec, sub = _submitted(monkeypatch, tmp_path, "ray-local", ["curate", "--config", "c.yaml"],
                           Placement(RAY, nodes=2, gpus_per_node=8, ray_cluster=True))
    assert spec.gpus_per_node == 0 and "entrypoint_num_gpus" not in json.loads(sub)


@pytest.mark.parametrize("section, resources, parts", [
    ("eval", {"nodes": 2}, ("eval.resources", "an evaluation runs on one node")),
    ("curate", {"launcher": "torchrun"}, ("curate.resources", "launcher: only training stages")),
    ("curate", {"time": "soon"}, ("curate.resources.time", "'soon' is not a time limit")),
    ("curate", {"gpus": 8}, ("curate.resources.gpus: unknown key",)),
])
def test_bad_resources_are_named_at_load(tmp_path, section, resources, parts):
    from buckle.core.config import ConfigError, load_config, read_yaml
    from buckle.launcher.pipeline.config import PipelineConfig, resolve

    cfg = read_yaml(resolve("paper-8b"))
    cfg[section]["resources"] = resources
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="p.yaml") as exc:
        load_config(PipelineConfig, path)
    assert all(part in str(exc.value) for part in parts), str(exc.value)


def test_too_few_nodes_for_the_engines_or_several_nodes_here_are_named(capsys, tmp_path):
    from buckle.core.config import read_yaml
    from buckle.launcher.pipeline.config import resolve

    cfg = read_yaml(resolve("paper-8b"))
    cfg["curate"]["resources"] = {"nodes": 1}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(cfg))
    assert main(["pipeline", "--config", str(path), "--profile", "slurm-example", "--dry-run"]) == 2
    assert "curate.resources.nodes: 1 node(s) x 8 GPUs hold fewer than num_workers 16" in capsys.readouterr().err
    cfg["curate"].update(executor="local", resources={"nodes": 2})
    path.write_text(json.dumps(cfg))
    assert main(["pipeline", "--config", str(path), "--profile", "slurm-example", "--dry-run"]) == 2
    assert "curate.resources.nodes: this step runs once on one node" in capsys.readouterr().err
    cfg = read_yaml(resolve("paper-70b"))
    cfg["stages"]["attack"]["resources"]["nodes"] = 2
    path.write_text(json.dumps(cfg))
    assert main(["pipeline", "--config", str(path), "--dry-run"]) == 2  # 2-node trainings need a profile
    assert "stages.attack.resources.nodes: 2 nodes need a cluster profile" in capsys.readouterr().err
