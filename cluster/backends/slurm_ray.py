"""The Ray cluster part of an sbatch script (templates/sbatch-ray.sh.j2), for ray_cluster specs.

Ray's pattern for Slurm: `ray start --head --block` on the first node and
`ray start --address=HEAD:PORT --block` on the others, each an srun step in the
background; the script waits until every node has joined, exports RAY_ADDRESS
(which `buckle curate --executor ray` connects to) and stops the cluster on exit.
Teardown finds each node's Ray processes by a per-job tag in their environment,
not `ray stop`, which would also stop any other Ray of this user on the node.
slurm.render puts this block before the command of every ray_cluster job.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from buckle.cluster.command import tool
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec
from buckle.core.procs import TAG_VAR

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "sbatch-ray.sh.j2"
# text shards are small; Ray's default (30% of RAM in /dev/shm) may be more than a job has
OBJECT_STORE_BYTES = 1 << 30
WAIT_S = 300  # for every node to join; then the job fails with the count it reached
# waits until N nodes are alive (the head registers a moment after its GCS is up)
WAIT_NODES = """
import sys, time
import ray
addr, want, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline, alive = time.time() + limit, 0
while True:
    try:
        if not ray.is_initialized():
            ray.init(address=addr, logging_level="ERROR", log_to_driver=False)
        alive = sum(1 for n in ray.nodes() if n["Alive"])
    except Exception:  # the head is not up yet
        ray.shutdown()
    if alive >= want or time.time() > deadline:
        break
    time.sleep(1)
if alive < want:
    sys.exit(f"buckle: error: {alive} of {want} Ray nodes joined at {addr} within {limit:.0f} s "
             "(the ray start output above says why)")
print(f"buckle: Ray cluster up: {alive} of {want} nodes at {addr}", flush=True)
"""


def ray_values(spec: JobSpec, profile: Profile) -> dict[str, object]:
    """The values of TEMPLATE: shell lines that start, wait for and (on exit) stop the cluster.

    Args:
        spec: a ray_cluster job (one Ray node per Slurm node; the command runs once).
        profile: gives the run side's ray and python (next to its buckle).
    """
    gpus = spec.gpus_per_node
    extra = f"--num-gpus={gpus} --object-store-memory={OBJECT_STORE_BYTES}"
    workers = ""
    if spec.nodes > 1:
        others = spec.nodes - 1
        workers = (f"srun --overlap --export=ALL --nodes={others} --ntasks={others} --ntasks-per-node=1 "
                   f"{'--gpus-per-node=%d ' % gpus if gpus else ''}--exclude \"$head_node\" "
                   "bash -c 'ray_node \"$@\"' ray-worker --address=\"$RAY_ADDRESS\" &")
    python = shlex.quote(tool(profile, "python"))
    return {
        "ray": shlex.quote(tool(profile, "ray")), "python": python, "num_cpus": spec.cpus_per_task,
        "extra_args": shlex.quote(extra), "tag_var": TAG_VAR, "nodes": spec.nodes, "wait_s": WAIT_S,
        "step_args": f"--gpus-per-node={gpus} " if gpus else "", "workers": workers,
        "wait_nodes": shlex.quote(WAIT_NODES.strip())}
