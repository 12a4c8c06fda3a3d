"""Security and packaging at the edges: the Ray Jobs token, the judge's API key, the KubeRay image."""
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from buckle.cluster import jobs
from buckle.cluster.backends import ray_jobs
from buckle.cluster.jobdb import JobStore
from buckle.cluster.profiles import load_profile
from buckle.launcher.cli import main
from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + "7" * 40


def test_token_over_plain_http_to_a_remote_cluster_is_refused(buckle_home, make_profile, monkeypatch, capsys):
    monkeypatch.setenv("BUCKLE_EDGE_TOKEN", TOKEN)
    make_profile("remote", {"backend": "ray", "ray": {"address": "http://10.20.30.40:8265",
                                                       "token_env": "BUCKLE_EDGE_TOKEN"}})
    assert main(["submit", "--profile", "remote", "--", "buckle", "data", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and TOKEN not in err
    assert "refusing to send the Ray auth token over plain http to 10.20.30.40" in err
    assert "`insecure: true`" in err
    assert list(JobStore().all()) == []


@pytest.mark.parametrize("address,insecure", [("https://ray.example.org", False), ("http://127.0.0.1:8265", False),
                                              ("http://localhost:8265", False), ("http://10.20.30.40:8265", True)])
def test_token_goes_over_https_to_loopback_or_where_the_profile_says_insecure(address, insecure):
    ray_jobs.check_secure(address, TOKEN, insecure)


def test_insecure_profile_field_reaches_the_client_and_the_job_record(buckle_home, make_profile, monkeypatch):
    seen = []

    class Client:
        def submit_job(self, **kw):
            return kw["submission_id"]

    def fake_client(address, token_env, insecure=False):
        seen.append((address, token_env, insecure))
        return Client()

    monkeypatch.setattr(ray_jobs, "client", fake_client)
    make_profile("lab", {"backend": "ray", "ray": {"address": "http://10.20.30.40:8265", "insecure": True}})
    assert load_profile("lab").ray.insecure is True and load_profile("ray-local").ray.insecure is False
    assert main(["submit", "--profile", "lab", "--", "buckle", "data", "list"]) == 0
    rec = next(JobStore().all())
    assert rec.info["insecure"] is True and seen == [("http://10.20.30.40:8265", "RAY_AUTH_TOKEN", True)]


def _ask(url, **kw):
    from buckle.eval.judges.endpoint import OpenAIBackend

    OpenAIBackend(url, "judge-model", max_retries=0, **kw).complete([{"role": "user", "content": "hi"}])


def test_judge_key_is_sent_only_when_the_config_names_its_variable(monkeypatch):
    from buckle.eval.config import EvalConfig

    assert EvalConfig.model_fields["judge_api_key_env"].default is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient")
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-named")
    fake = FakeOpenAI().start()
    try:
        _ask(fake.url)  # nothing named: the ambient OPENAI_API_KEY stays home
        _ask(fake.url, api_key_env="MY_JUDGE_KEY")
        _ask(fake.url, api_key_env="OPENAI_API_KEY")
    finally:
        fake.stop()
    assert [h.get("Authorization") for h in fake.headers] == [None, "Bearer sk-named", "Bearer sk-ambient"]


def test_a_named_judge_key_travels_only_over_https_or_to_loopback(monkeypatch):
    from buckle.core.openai_client import named_api_key

    monkeypatch.setenv("MY_JUDGE_KEY", "sk-named")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient")
    assert named_api_key("https://api.example.com/v1", "MY_JUDGE_KEY") == "sk-named"
    assert named_api_key("http://127.0.0.1:8000/v1", "MY_JUDGE_KEY") == "sk-named"
    assert named_api_key("http://judge.example:8000/v1", None) is None
    for name in ("MY_JUDGE_KEY", "OPENAI_API_KEY"):
        with pytest.raises(ValueError, match=f"judge_api_key_env: refusing to send the key in '{name}' over "
                                             "plain http to judge.example"):
            _ask("http://judge.example:8000/v1", api_key_env=name)


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_kuberay_example_names_the_image_the_dockerfile_builds(buckle_home):
    prof = load_profile("kuberay-example")
    text = _dockerfile()
    build_tag = re.search(r"docker build -t (\S+) \.", text).group(1)
    assert prof.kuberay.image == build_tag and not prof.kuberay.image.startswith("rayproject/")
    base = re.search(r"^ARG RAY_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.search(r"^FROM \$\{RAY_IMAGE\}$", text, re.M)
    assert base == f"rayproject/ray:{prof.kuberay.ray_version}-py311-gpu"  # the Ray the RayJob asks for
    assert re.search(r"^ARG RAY_VERSION=(\S+)$", text, re.M).group(1) == prof.kuberay.ray_version
    assert prof.kuberay.ray_version in build_tag and "py311" in build_tag
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] in build_tag
    doc = yaml.safe_load(jobs.render(jobs.build_spec(prof, ["buckle", "train", "--config", "r.yaml"]), prof))
    cluster = doc["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert [c["image"] for p in pods for c in p["template"]["spec"]["containers"]] == [build_tag] * 2
    assert doc["spec"]["entrypoint"].startswith("buckle train ")  # `executable: buckle`, on the image's PATH


def test_the_dockerfile_installs_buckle_with_the_extras_a_rayjob_runs(buckle_home):
    text = _dockerfile()
    install = re.search(r'pip install "\.\[([a-z,]+)\]"', text)
    assert install, "the Dockerfile must pip install this repository"
    extras = set(install.group(1).split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"train", "eval", "ray"} <= extras <= set(declared)
    assert re.search(r'"ray\[data,default\]==\$\{RAY_VERSION\}"', text)  # the base's Ray stays put
    assert "COPY --chown=ray:users . ." in text and "buckle --help" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".venv-vllm", "runs", "build"} <= set(ignored)
