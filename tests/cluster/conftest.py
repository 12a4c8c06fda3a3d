"""Cluster test fixtures: a private buckle home, a real Ray head, a real local Slurm."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml


@pytest.fixture
def buckle_home(tmp_path, monkeypatch) -> Path:
    """Private config dir (profiles), state dir (job records) and work dir for one test."""
    home = tmp_path / "home"
    for sub in ("config/profiles", "state", "work"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("BUCKLE_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("BUCKLE_STATE_DIR", str(home / "state"))
    monkeypatch.chdir(home / "work")
    return home


@pytest.fixture
def make_profile(buckle_home):
    """make_profile(name, data) writes a user profile into the private config dir; returns name."""
    def write(name: str, data: dict) -> str:
        (buckle_home / "config" / "profiles" / f"{name}.yaml").write_text(yaml.safe_dump(data))
        return name
    return write


@pytest.fixture
def canary(monkeypatch) -> tuple[str, str]:
    """(name, value) of a secret planted in the environment, to be found in no file."""
    value = "canary-" + secrets.token_hex(16)
    monkeypatch.setenv("BUCKLE_CANARY", value)
    return "BUCKLE_CANARY", value


@pytest.fixture
def leaks():
    """leaks(root, needle) -> files under root whose bytes contain needle."""
    def scan(root: Path, needle: str) -> list[str]:
        return [str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and needle.encode() in p.read_bytes()]
    return scan


@pytest.fixture(scope="module")
def ray_head():
    """A real local Ray head with token auth, stopped (by pid) after the module."""
    from buckle.core.devclusters.ray import LocalRayHead

    try:
        head = LocalRayHead(num_cpus=2).start()
    except RuntimeError:  # e.g. a port taken between choosing and binding it: once more
        head = LocalRayHead(num_cpus=2).start()
    try:
        yield head
    finally:
        head.stop()
        assert head.pids() == [], "Ray processes left behind"


@pytest.fixture(scope="module")
def local_slurm():
    """A real Slurm (2 fake nodes on localhost) in a temp dir; skips when Slurm is not installed."""
    from buckle.core.devclusters.slurm import LocalSlurm, slurm_available

    why = slurm_available()
    if why:
        pytest.skip(f"Slurm {why} (scripts/install-slurm.sh installs it)")
    try:
        cluster = LocalSlurm(nodes=2, cpus_per_node=2).start()
    except RuntimeError:  # e.g. a port taken between choosing and binding it: once more
        cluster = LocalSlurm(nodes=2, cpus_per_node=2).start()
    try:
        yield cluster
    finally:
        cluster.stop()
