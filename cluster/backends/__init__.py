"""Backends turn a JobSpec into a job and answer for it.

Each module exposes the same functions:
    render(spec, profile, job_id, job_dir) -> str   what would be submitted (dry run)
    submit(spec, profile, job_id, job_dir) -> (backend_id, info, state)
    status(rec) -> str        the state the backend reports now
    logs(rec) -> str          the job's output so far
    cancel(rec) -> None
    TERMINAL: set of states after which nothing changes
`info` is stored in the job record: it must hold no secret values.
"""
from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {"local": "buckle.cluster.backends.local", "ray": "buckle.cluster.backends.ray_jobs",
            "slurm": "buckle.cluster.backends.slurm", "kuberay": "buckle.cluster.backends.kuberay"}


def get_backend(name: str) -> ModuleType:
    """The backend module for a profile's `backend` value."""
    if name not in _MODULES:
        raise ValueError(f"backend: unknown '{name}' (known: {', '.join(_MODULES)})")
    return importlib.import_module(_MODULES[name])
