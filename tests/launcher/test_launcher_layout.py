"""The layout's import rules and the CLI's lazy imports."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("launcher", "curation", "train", "eval", "cluster")
# package -> buckle modules it may import (besides itself)
ALLOWED = {
    "curation": set(),
    "cluster": set(),
    "train": {"curation.records"},
    "eval": {"curation.records"},
}


def _buckle_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for mod in _buckle_imports(path):
            if mod.split(".")[0] != package and mod not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from launcher.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'ray', 'deepspeed', 'transformers', 'pandas', 'matplotlib') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_command_and_no_command_exit_nonzero():
    from launcher.cli import main

    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
