"""Ports and process helpers: free ports, the one process tag, the sweep of dead runs' dirs."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from buckle.core import procs

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_free_ports_are_distinct_and_bindable():
    ports = procs.free_ports(5) + [procs.free_port()]
    assert len(set(ports[:5])) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_tagged_child_is_found_by_its_tag_and_killed_untagged_ones_untouched(tmp_path):
    tag = procs.new_tag("test-procs")
    assert tag.startswith("test-procs-")
    child = procs.spawn(SLEEPER, tag, tmp_path / "tagged.log")
    other = procs.spawn(SLEEPER, procs.new_tag("test-procs"), tmp_path / "other.log")
    untagged = subprocess.Popen(SLEEPER, env={k: v for k, v in os.environ.items() if k != procs.TAG_VAR})
    try:
        deadline = time.time() + 30  # the child's environ is readable once it has exec'd
        while not procs.tagged_pids(tag) and time.time() < deadline:
            time.sleep(0.05)
        assert procs.tagged_pids(tag) == [child.pid]
        assert procs.tagged_pids(tag, title=b"no-such-program") == []
        procs.kill_tagged(tag, grace_s=2)
        assert child.wait(timeout=10) != 0
        assert procs.tagged_pids(tag) == []
        assert other.poll() is None and untagged.poll() is None
    finally:
        for proc in (child, other, untagged):
            proc.kill()
            proc.wait()



def test_a_child_that_lost_the_tag_is_found_below_its_parent_and_killed_with_it(tmp_path):
    # the child starts with an empty environment: what a setproctitle rewrite (Ray's agents) leaves
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], env={}); time.sleep(120)")
    tag = procs.new_tag("test-procs")
    parent = procs.spawn([sys.executable, "-c", code], tag, tmp_path / "parent.log")
    child = None
    try:
        deadline = time.time() + 30
        while len(procs.tagged_pids(tag)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        child = next(pid for pid in procs.tagged_pids(tag) if pid != parent.pid)
        assert procs.TAG_VAR.encode() not in Path(f"/proc/{child}/environ").read_bytes()
        procs.kill_tagged(tag, grace_s=2)
        assert parent.wait(timeout=10) != 0
        assert child not in procs.processes() and procs.tagged_pids(tag) == []  # not left to init
    finally:
        parent.kill()
        parent.wait()
        if child is not None and child in procs.processes():
            os.kill(child, 9)

def test_adopt_tag_keeps_an_outer_owners_tag(monkeypatch):
    monkeypatch.setenv(procs.TAG_VAR, "outer")
    assert procs.adopt_tag("inner") == "outer"
    monkeypatch.delenv(procs.TAG_VAR)
    assert procs.adopt_tag("inner") == "inner" == os.environ[procs.TAG_VAR]


def test_sweep_removes_only_dirs_of_dead_processes():
    prefix = procs.new_tag("bk-sweep-test")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = Path(tempfile.mkdtemp(prefix=f"{prefix}-{dead.pid}-"))
    mine = procs.pid_dir(prefix)
    try:
        assert mine.name.startswith(f"{prefix}-{os.getpid()}-")
        assert procs.sweep_dead_dirs(prefix) == [gone]
        assert not gone.exists() and mine.is_dir()
    finally:
        mine.rmdir()
