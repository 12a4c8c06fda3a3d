"""The layout's import rules, the one-name install and the CLI's lazy imports."""
import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# installed name -> folder in the checkout
FOLDERS = {"core": "buckle/core", "launcher": "launcher", "curation": "curation",
           "train": "train", "eval": "eval", "cluster": "cluster"}
# package -> buckle packages or modules it may import besides itself (core sits below all)
ALLOWED = {
    "core": set(),
    "curation": {"core"},
    "cluster": {"core"},
    "train": {"core", "curation.io.records"},
    "eval": {"core", "curation.io.records"},
}


def _buckle_imports(path: Path) -> set[str]:
    """Every `buckle.X...` module a file imports, without the `buckle.` prefix."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".", 1)[1] for n in names if n.startswith("buckle.")}
    return found


def _allowed(package: str, module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED[package] | {package})


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    bad = []
    for path in (ROOT / FOLDERS[package]).rglob("*.py"):
        for mod in _buckle_imports(path):
            if not _allowed(package, mod):
                bad.append(f"{path.relative_to(ROOT)} imports buckle.{mod}")
    assert not bad, "\n".join(bad)


def test_launcher_holds_the_cli_and_the_pipeline_package_only():
    """Domain code lives in its package: the launcher parses, calls one library function, prints."""
    folder = ROOT / "launcher"
    modules = {p.name for p in folder.glob("*.py")}
    assert modules - {"__init__.py", "cli.py", "flags.py"} == {m for m in modules if m.startswith("cmd_")}
    packages = {p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == {"pipeline", "pipelines"}  # the pipeline package and the shipped pipeline YAMLs
    assert {p.name for p in (folder / "pipelines").glob("*.py")} <= {"__init__.py"}  # YAML files only


def test_no_launcher_module_computes_contamination_statistics_or_agreement():
    computing = ("core.hygiene", "eval.stats")
    bad = [f"{p.relative_to(ROOT)} imports buckle.{m}" for p in (ROOT / "launcher").rglob("*.py")
           for m in _buckle_imports(p) if m.startswith(computing)]
    assert not bad, "\n".join(bad)


def test_the_pipeline_package_sits_below_the_cli_and_imports_at_the_top():
    """It may import every package but the CLI's modules, and never dodges a cycle inside a function."""
    bad = []
    for path in (ROOT / "launcher" / "pipeline").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [f"{path.name} imports buckle.{m}" for m in _buckle_imports(path)
                if m.startswith(("launcher.cmd_", "launcher.cli", "launcher.flags"))]
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            bad += [f"{path.name}:{node.lineno} imports {node.module} inside {fn.name}"
                    for node in ast.walk(fn) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("buckle.")]
    assert not bad, "\n".join(bad)


def test_no_import_outside_the_namespace():
    bad = []
    for folder in FOLDERS.values():
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                        and node.module.split(".")[0] in FOLDERS:
                    bad.append(f"{path.relative_to(ROOT)}: from {node.module}")
    assert not bad, "\n".join(bad)


def test_wheel_has_only_buckle_at_the_top(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheel = next(tmp_path.glob("buckle-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"buckle"}
    for needed in ("buckle/curation/method/beam.py", "buckle/curation/data/commonsense.jsonl",
                   "buckle/train/recipes/embedded-post.yaml", "buckle/cluster/profiles/local.yaml",
                   "buckle/launcher/pipelines/quickstart.yaml", "buckle/core/__init__.py"):
        assert needed in names, needed


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from buckle.launcher.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'ray', 'deepspeed', 'transformers', 'pandas', 'matplotlib') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_command_and_no_command_exit_nonzero():
    from buckle.launcher.cli import main

    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
