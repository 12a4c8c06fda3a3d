#!/usr/bin/env bash
# Builds .whl/: the wheels a lent GPU machine's image lacks or holds too old (it reaches no
# registry), at the versions of this checkout's .venv, for that image's Python 3.12. bench/gpu_check.sh uses them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# the project's needs the image lacks or holds older than the project asks, with their own new needs
NAMES="accelerate annotated-types datasets dill fsspec hjson huggingface-hub kernels multiprocess peft
pydantic pydantic-core regex transformers typing-extensions typing-inspection httpx2 httpcore2 click tomlkit truststore"
pins=$("$PY" - $NAMES <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for name in sys.argv[1:]:
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pass  # not a need of this venv's versions: nothing to carry
PY
)
rm -rf .whl && mkdir .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.whl/ >> .git/info/exclude; }
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl $pins
# deepspeed ships only an sdist: build it pure-Python (its ops compile just in time where needed)
DS_BUILD_OPS=0 "$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl \
  "deepspeed==$("$PY" -c 'from importlib.metadata import version; print(version("deepspeed"))')"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .  # buckle itself (a package-dir mapping)
ls .whl && du -sh .whl
