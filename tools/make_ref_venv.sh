#!/usr/bin/env bash
# Build the reference environment for side-by-side checks: PaddleX 3.7.2 and PaddleClas 2.6.0
# (--no-deps, as PaddleX pins what it needs). Never a runtime dependency of paddlex_feat.
#   tools/make_ref_venv.sh            # -> .venv-ref/ in the repo (git-ignored)
#   REF_VENV=/somewhere tools/make_ref_venv.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${REF_VENV:-$root/.venv-ref}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "paddlepaddle>=3.0,<3.3" "paddlex==3.7.2" faiss-cpu opencv-contrib-python pypdfium2
"$venv/bin/python" -m pip install --quiet --no-deps "paddleclas==2.6.0"
"$venv/bin/python" -c "import paddlex, paddle; print('reference venv ready:', paddlex.__version__, paddle.__version__)"
echo "$venv/bin/python"
