"""A throwaway Slurm on this machine (slurmctld + slurmd per fake node + munged), in a temp dir.

Needs the Debian packages slurmctld, slurmd, slurm-client and munge
(scripts/install-slurm.sh). All config, state, logs and sockets live under the
temp dir; ports are free ones; daemons run in the foreground as our children
and are stopped by pid.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from buckle.core import procs
from buckle.core.devclusters import cli_count, serve

DAEMONS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch")


def slurm_available() -> str | None:
    """None when the Slurm and munge programs are installed, else what is missing."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    return f"not installed: {', '.join(missing)}" if missing else None


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class LocalSlurm:
    """A private Slurm cluster of `nodes` fake nodes on localhost.

    Attributes:
        conf: path of its slurm.conf (what client commands need in SLURM_CONF).
    """

    def __init__(self, nodes: int = 1, cpus_per_node: int = 2):
        self.nodes, self.cpus = nodes, cpus_per_node
        self.root = Path(tempfile.mkdtemp(prefix="bk-slurm-"))
        os.chmod(self.root, 0o755)  # slurmd and job steps read here
        self.conf = self.root / "slurm.conf"
        self.tag = self.root.name
        self._procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        """Environment for this cluster's daemons and client commands."""
        return procs.tag_env(self.tag, SLURM_CONF=str(self.conf))

    def _write_conf(self) -> None:
        ctl_port, *node_ports = procs.free_ports(self.nodes + 1)
        r, user = self.root, getpass.getuser()
        lines = [
            f"ClusterName=bk{self.tag[-6:].lower().replace('_', 'x')}", "SlurmctldHost=localhost",
            f"SlurmctldPort={ctl_port}", "AuthType=auth/munge", f"AuthInfo=socket={r}/munge/munge.sock",
            "CredType=cred/munge", f"SlurmUser={user}", f"SlurmdUser={user}",
            f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool-%n",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd-%n.pid",
            f"SlurmctldLogFile={r}/slurmctld.log", f"SlurmdLogFile={r}/slurmd-%n.log",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
            "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt", f"JobCompLoc={r}/jobcomp.txt", "MailProg=/bin/true",
            "SlurmdParameters=config_overrides", "KillWait=5", "ReturnToService=2",
            *(f"NodeName=n{i} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={self.cpus} "
              "State=UNKNOWN" for i, port in enumerate(node_ports, 1)),
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        (r / "state").mkdir()

    def _spawn(self, args: list[str], log: str) -> None:
        self._procs.append(procs.spawn(args, self.tag, self.root / log, env=self.env(), cwd=self.root))

    def start(self, timeout_s: float = 60.0) -> "LocalSlurm":
        """Start munged, slurmctld and one slurmd per node; wait until all nodes are idle."""
        why = slurm_available()
        if why:
            raise RuntimeError(f"Slurm is {why} (see scripts/install-slurm.sh)")
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout_s: float) -> None:
        self._write_conf()
        r = self.root
        (r / "munge").mkdir(mode=0o755)
        subprocess.run([_exe("mungekey"), "--create", f"--keyfile={r}/munge.key"], check=True,
                       capture_output=True, env=self.env())
        self._spawn([_exe("munged"), "-F", f"--socket={r}/munge/munge.sock", f"--key-file={r}/munge.key",
                     f"--pid-file={r}/munged.pid", f"--log-file={r}/munged.log",
                     f"--seed-file={r}/munge.seed"], "munged.out")
        self._wait(lambda: (r / "munge" / "munge.sock").exists(), 20, "munged socket")
        self._spawn([_exe("slurmctld"), "-D", "-f", str(self.conf)], "slurmctld.out")
        for i in range(1, self.nodes + 1):
            self._spawn([_exe("slurmd"), "-D", "-f", str(self.conf), "-N", f"n{i}"], f"slurmd-n{i}.out")
        self._wait(self._all_idle, timeout_s, "nodes idle")

    def _all_idle(self) -> bool:
        try:
            proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                                  env=self.env(), timeout=30)
        except subprocess.TimeoutExpired:  # a busy machine: ask again
            return False
        states = proc.stdout.split()
        return proc.returncode == 0 and len(states) == self.nodes and all(s == "idle" for s in states)

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.time() + timeout_s
        while not ready():
            dead = [p.args[0] for p in self._procs if p.poll() is not None]
            if dead or time.time() > deadline:
                logs = " | ".join(f.name + ": " + f.read_text(errors="replace")[-300:]
                                  for f in sorted(self.root.glob("*.*"))
                                  if f.suffix in (".log", ".out"))
                raise RuntimeError(f"local Slurm: no {what} (exited: {dead}); {logs}")
            time.sleep(0.3)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel all jobs and wait for an empty queue, then stop the daemons by pid."""
        env = self.env()
        if self._procs and all(p.poll() is None for p in self._procs):
            subprocess.run(["scancel", "--full", "-u", getpass.getuser()], env=env, capture_output=True)
            deadline = time.time() + timeout_s
            while time.time() < deadline:
                q = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.5)
        for proc in reversed(self._procs):  # slurmds, slurmctld, then munged
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        procs.kill_tagged(self.tag, grace_s=0)  # slurmstepd processes carry the daemons' tag
        self._procs = []
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    """`python -m buckle.cluster.slurm_local [NODES]`: run a private Slurm until Ctrl-C."""
    cluster = LocalSlurm(nodes=cli_count(1)).start()
    return serve(cluster, f"Slurm up with {cluster.nodes} node(s). Use it from a profile with\n"
                          f"  slurm: {{conf: {cluster.conf}}}\nor: export SLURM_CONF={cluster.conf}\n"
                          "Ctrl-C cancels its jobs and stops it.")
