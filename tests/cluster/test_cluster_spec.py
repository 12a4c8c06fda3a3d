"""JobSpec validation, time limits, launchers, and profile loading (shipped and user)."""
import pytest

from buckle.cluster.profiles import list_profiles, load_profile
from buckle.cluster.spec import JobSpec, slurm_time, time_seconds


@pytest.mark.parametrize("text,secs", [("90", 5400), ("90m", 5400), ("2h", 7200), ("30s", 30),
                                       ("1:30:00", 5400), ("05:30", 330), ("1-00:00:00", 86400),
                                       ("2-12", 2 * 86400 + 12 * 3600)])
def test_time_limits_parse(text, secs):
    assert time_seconds(text) == secs


def test_slurm_time_format():
    assert slurm_time("90m") == "0-01:30:00"
    assert slurm_time("1-2:03:04") == "1-02:03:04"


@pytest.mark.parametrize("kwargs,field", [({"nodes": 0}, "nodes"), ({"gpus_per_node": -1}, "gpus_per_node"),
                                          ({"time": "soon"}, "time"), ({"launcher": "mpirun"}, "launcher"),
                                          ({"name": "a b"}, "name"), ({"env": ["1X"]}, "env")])
def test_bad_spec_fields_are_named(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        JobSpec(command=["buckle", "data", "list"], **kwargs)


def test_env_value_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="by name only"):
        JobSpec(command=["buckle", "x"], env=["API_KEY=sk-123"])


def test_auto_launcher_is_torchrun_only_for_several_processes():
    assert JobSpec(command=["buckle"]).resolved_launcher() == "none"
    assert JobSpec(command=["buckle"], gpus_per_node=4).resolved_launcher() == "torchrun"
    assert JobSpec(command=["buckle"], nodes=2).resolved_launcher() == "torchrun"
    assert JobSpec(command=["buckle"], gpus_per_node=4, launcher="srun").procs_per_node == 4


def test_every_shipped_profile_loads(buckle_home):
    names = list_profiles()
    assert {"local", "ray-local", "slurm-example", "kuberay-example"} <= set(names)
    for name in names:
        prof = load_profile(name)
        assert prof.name == name
        if prof.backend != "local":
            assert getattr(prof, prof.backend) is not None  # its section, filled with defaults


def test_unknown_profile_lists_known_ones(buckle_home):
    with pytest.raises(ValueError, match="profile 'nope' not found; known: .*ray-local"):
        load_profile("nope")


def test_user_profile_shadows_shipped_and_bad_field_is_named(buckle_home, make_profile):
    make_profile("local", {"backend": "local", "description": "mine"})
    assert load_profile("local").description == "mine"
    make_profile("broken", {"backend": "slurm", "slurm": {"partiton": "gpu"}})
    with pytest.raises(ValueError, match=r"config error in .*broken.yaml: slurm.partiton: unknown key"):
        load_profile("broken")
    make_profile("mixed", {"backend": "ray", "slurm": {}})
    with pytest.raises(ValueError, match="section 'slurm' does not apply to backend 'ray'"):
        load_profile("mixed")
