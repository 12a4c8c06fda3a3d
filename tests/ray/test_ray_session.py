"""The private local Ray that buckle starts when no address is given."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_util import ROOT, driver_env, kill_tagged, new_tag, tagged  # noqa: E402

pytestmark = pytest.mark.ray

PROBE = """
import json, os, urllib.request, urllib.error
from buckle.curation.executors.ray_cluster import ray_session

def status(url, headers):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code

with ray_session() as info:
    url = info.dashboard_url + "/api/version"
    token = {"Authorization": "Bearer " + os.environ["RAY_AUTH_TOKEN"]}
    print(json.dumps({"url": info.dashboard_url, "started": info.started, "mode": os.environ["RAY_AUTH_MODE"],
                      "anonymous": status(url, {}), "with_token": status(url, token)}))
"""


def test_local_ray_has_token_auth_and_a_localhost_dashboard_and_is_stopped(tmp_path):
    tag = new_tag()
    env = driver_env(tag)
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
        env.pop(key, None)
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token: buckle must make its own token
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        deadline = time.time() + 20
        while tagged(tag) and time.time() < deadline:
            time.sleep(0.5)
        left = tagged(tag)
    finally:
        kill_tagged(tag)
    assert seen["started"] and seen["mode"] == "token"
    assert seen["url"].startswith("http://127.0.0.1:")
    assert seen["anonymous"] == 401 and seen["with_token"] == 200
    assert not left, "processes of the local Ray outlived the session"
    assert not (tmp_path / ".ray" / "auth_token").exists(), "a token was written into the user's home"
