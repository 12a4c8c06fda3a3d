"""Profiles: named YAML files saying where jobs run (backend, cluster, defaults).

Shipped profiles live in cluster/profiles/; user profiles in
$BUCKLE_CONFIG_DIR/profiles (default ~/.config/buckle/profiles) and win on a
name clash. `--profile` also takes a path to a YAML file. (cluster/profiles/
holds YAML only, no __init__.py, so `import buckle.cluster.profiles` finds this module.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from buckle.core.config import read_yaml, validate
from buckle.core.shipped import resolve_shipped, shipped_names

PACKAGE_DIR = Path(__file__).resolve().parent / "profiles"
BACKENDS = ("local", "ray", "slurm", "kuberay")
SIZE = r"(?i)^\s*[\d.]+\s*[KMGT]?(i?B)?\s*$"  # a memory size as train.plan.parse_size reads it: 80GB, 1.5TB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Strict):
    """JobSpec values used when the command line does not give them."""

    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    tasks_per_node: int = Field(1, ge=1)
    cpus_per_task: int = Field(1, ge=1)
    time: str | None = None
    env: list[str] = []
    launcher: str = "auto"


class RayOptions(_Strict):
    """Ray Jobs API: address of the dashboard and how the job finds its files."""

    address: str | None = None  # None: $RAY_ADDRESS, else http://127.0.0.1:8265
    token_env: str = "RAY_AUTH_TOKEN"  # env var NAME holding the cluster's auth token
    # True: send the token over plain http to a non-loopback address (a trusted private network)
    insecure: bool = False
    working_dir: Literal["shared", "upload", "none"] = "shared"
    excludes: list[str] = [".git", ".venv", "runs", "__pycache__", "*.safetensors"]
    entrypoint_num_cpus: float = Field(1.0, ge=0)
    entrypoint_resources: dict[str, float] = {}


class SlurmOptions(_Strict):
    """sbatch settings that belong to the cluster rather than to one job."""

    conf: str | None = None  # slurm.conf for the client commands (SLURM_CONF)
    partition: str | None = None
    account: str | None = None
    export_env: list[str] = ["PATH", "HOME", "USER", "LANG", "TMPDIR"]
    sbatch_args: list[str] = []  # extra `#SBATCH` options, e.g. ["--qos=high"]
    setup: list[str] = []  # shell lines run before the job (module load ..., source ...)
    log_dir: str | None = None  # default: the job's directory under the state dir


class KubeRayOptions(_Strict):
    """RayJob manifest settings."""

    image: str = "buckle:0.1.0-ray2.60.0-py311-gpu"  # the repo's Dockerfile: Ray's image with buckle in it
    namespace: str = "default"
    ray_version: str = "2.60.0"
    secret_name: str = "buckle-env"  # Kubernetes Secret whose keys are the --env names
    head_cpu: str = "2"
    head_memory: str = "8Gi"
    worker_cpu: str = "8"
    worker_memory: str = "64Gi"
    working_dir: str | None = None  # path inside the image; None = image default
    # the RayJob's submitter pod reaches the head's dashboard over the pod network,
    # so it binds all interfaces there; token auth guards it
    dashboard_host: str = "0.0.0.0"
    ttl_seconds_after_finished: int = Field(3600, ge=0)
    apply: bool = False  # run `kubectl apply` after rendering (needs kubectl)


class Profile(_Strict):
    """One named place to run jobs."""

    name: str = ""
    backend: Literal["local", "ray", "slurm", "kuberay"]
    description: str = ""
    allow_any_command: bool = False  # False: only `buckle ...` commands are accepted
    executable: str | None = None  # buckle on the run side; None = this venv's buckle
    defaults: Defaults = Defaults()
    # the site's hardware, which `buckle pipeline --dry-run` checks memory against
    gpu_memory: str | None = Field(None, pattern=SIZE, description="memory of one GPU, e.g. 80GB")
    node_memory: str | None = Field(None, pattern=SIZE, description="host memory of one node, e.g. 1TB")
    ray: RayOptions | None = None
    slurm: SlurmOptions | None = None
    kuberay: KubeRayOptions | None = None

    @model_validator(mode="after")
    def _sections(self) -> "Profile":
        for other in ("ray", "slurm", "kuberay"):
            if other != self.backend and getattr(self, other) is not None:
                raise ValueError(f"section '{other}' does not apply to backend '{self.backend}'")
        if self.backend == "ray" and self.ray is None:
            self.ray = RayOptions()
        if self.backend == "slurm" and self.slurm is None:
            self.slurm = SlurmOptions()
        if self.backend == "kuberay" and self.kuberay is None:
            self.kuberay = KubeRayOptions()
        return self


def config_dir() -> Path:
    """buckle's user config dir: $BUCKLE_CONFIG_DIR, else $XDG_CONFIG_HOME/buckle or ~/.config/buckle."""
    if os.environ.get("BUCKLE_CONFIG_DIR"):
        return Path(os.environ["BUCKLE_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "buckle"


def profile_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: user dir, then shipped ones."""
    return [config_dir() / "profiles", PACKAGE_DIR]


def list_profiles() -> dict[str, Path]:
    """Profile name -> file, user profiles shadowing shipped ones."""
    return {name: resolve_shipped(name, profile_dirs(), ".yaml", "profile")
            for name in shipped_names(profile_dirs(), ".yaml")}


def load_profile(name_or_path: str) -> Profile:
    """Load and validate a profile by name or YAML path.

    Raises:
        ValueError: unknown name, unreadable YAML, or a bad field (`config error in FILE: key: message`).
    """
    path = resolve_shipped(name_or_path, profile_dirs(), ".yaml", "profile",
                           f" (user profiles go in {config_dir() / 'profiles'})")
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    return validate(Profile, data, path)
