"""KubeRay backend: a RayJob manifest (ray.io/v1) with token auth, GPU worker group, secret refs.

The manifest is written to the job dir (and applied with kubectl only when the
profile says `apply: true`). Env vars reach the pods from a Kubernetes Secret by
name (secretKeyRef), so no value is ever in the manifest. `nodes` is the number
of GPU worker pods. `buckle train` runs as a Ray Train job over all of them
(the entrypoint is its driver and takes no GPU; the run's output dir must be
storage every pod mounts); other commands run on one pod with its GPUs (torchrun
across them when there are several), and Ray-native commands use all workers.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml

from buckle.cluster.command import is_ray_train, ray_entry_argv
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec, time_seconds

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED", "RENDERED"}
API_VERSION, KIND = "ray.io/v1", "RayJob"


def resource_name(spec: JobSpec, job_id: str) -> str:
    """A DNS-1123 name for the RayJob, unique per buckle job."""
    base = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-")[:30] or "buckle"
    return f"{base}-{job_id.removeprefix('bk-')}"


def _container(name: str, profile: Profile, spec: JobSpec, cpu: str, memory: str, gpus: int) -> dict:
    limits: dict = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
    env = [{"name": n, "valueFrom": {"secretKeyRef": {"name": profile.kuberay.secret_name, "key": n}}}
           for n in spec.env]
    box: dict = {"name": name, "image": profile.kuberay.image,
                 "resources": {"limits": limits, "requests": dict(limits)}}
    if env:
        box["env"] = env
    if name == "ray-head":
        box["ports"] = [{"containerPort": 6379, "name": "gcs-server"},
                        {"containerPort": 8265, "name": "dashboard"},
                        {"containerPort": 10001, "name": "client"}]
    return box


def manifest(spec: JobSpec, profile: Profile, job_id: str) -> dict:
    """The RayJob as a dict."""
    k = profile.kuberay
    job: dict = {"entrypoint": shlex.join(ray_entry_argv(spec, profile)), "entrypointNumCpus": spec.cpus_per_task}
    if spec.gpus_per_node and not is_ray_train(spec, profile):  # Ray Train's workers take the GPUs
        job["entrypointNumGpus"] = spec.gpus_per_node
    if k.working_dir:
        job["runtimeEnvYAML"] = yaml.safe_dump({"working_dir": k.working_dir})
    job.update({"submissionMode": "K8sJobMode", "shutdownAfterJobFinishes": True,
                "ttlSecondsAfterFinished": k.ttl_seconds_after_finished})
    if spec.time:
        job["activeDeadlineSeconds"] = time_seconds(spec.time)
    job["rayClusterSpec"] = {
        "rayVersion": k.ray_version,
        "authOptions": {"mode": "token"},
        "headGroupSpec": {
            "rayStartParams": {"dashboard-host": k.dashboard_host, "num-gpus": "0"},
            "template": {"spec": {"containers": [
                _container("ray-head", profile, spec, k.head_cpu, k.head_memory, 0)]}}},
        "workerGroupSpecs": [{
            "groupName": "gpu-workers" if spec.gpus_per_node else "workers",
            "replicas": spec.nodes, "minReplicas": spec.nodes, "maxReplicas": spec.nodes,
            "rayStartParams": {},
            "template": {"spec": {"containers": [
                _container("ray-worker", profile, spec, k.worker_cpu, k.worker_memory, spec.gpus_per_node)]}}}],
    }
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": resource_name(spec, job_id), "namespace": k.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "buckle", "buckle/job": job_id}},
            "spec": job}


def render(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> str:
    """The manifest as YAML."""
    return yaml.safe_dump(manifest(spec, profile, job_id), sort_keys=False)


def _kubectl(args: list[str]) -> subprocess.CompletedProcess:
    if shutil.which("kubectl") is None:
        raise RuntimeError("kubectl not found: apply the manifest where kubectl can reach the cluster")
    proc = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"kubectl {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return proc


def submit(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> tuple[str, dict, str]:
    """Write rayjob.yaml; apply it when the profile says so."""
    path = job_dir / "rayjob.yaml"
    path.write_text(render(spec, profile, job_id, job_dir))
    name = resource_name(spec, job_id)
    info = {"manifest": str(path), "namespace": profile.kuberay.namespace, "applied": False}
    if profile.kuberay.apply:
        _kubectl(["apply", "-f", str(path)])
        info["applied"] = True
        return name, info, "SUBMITTED"
    return name, info, "RENDERED"


def status(rec) -> str:
    """RENDERED if never applied, else the RayJob's jobStatus (or its deployment status)."""
    if not rec.info["applied"]:
        return "RENDERED"
    proc = _kubectl(["get", "rayjob", rec.backend_id, "-n", rec.info["namespace"], "-o", "json"])
    st = json.loads(proc.stdout).get("status") or {}
    return st.get("jobStatus") or st.get("jobDeploymentStatus") or "PENDING"


def logs(rec) -> str:
    """The submitter Job's log (it tails the Ray job)."""
    if not rec.info["applied"]:
        raise RuntimeError(f"RayJob {rec.backend_id} was only rendered: kubectl apply -f {rec.info['manifest']}")
    return _kubectl(["logs", f"job/{rec.backend_id}", "-n", rec.info["namespace"]]).stdout


def cancel(rec) -> None:
    """Delete the RayJob (KubeRay stops the job and its cluster)."""
    if not rec.info["applied"]:
        raise RuntimeError(f"RayJob {rec.backend_id} was only rendered, never applied: nothing to cancel")
    _kubectl(["delete", "rayjob", rec.backend_id, "-n", rec.info["namespace"]])
