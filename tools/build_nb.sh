#!/usr/bin/env bash
# Author a notebook as a jupytext percent script, then build the real source, nbs/NAME.ipynb, from it:
#   .venv/bin/jupytext --to py:percent nbs/NAME.ipynb -o .nbsrc/NAME.py   # once, to get an editable script
#   tools/build_nb.sh NAME [--no-exec]                                     # script -> notebook (executed) -> modules
# The notebook stays the source of truth (.nbsrc/ is not tracked); the modules come from nbdev-export.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
name=$1; shift || true
$V/jupytext --quiet --to ipynb --set-kernel python3 -o nbs/$name.ipynb .nbsrc/$name.py
$V/nbdev-export   # first, so that tests which start a subprocess import the new module
if [ "${1:-}" != "--no-exec" ]; then
  (cd nbs && ../$V/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 $name.ipynb)
fi
$V/python - nbs/$name.ipynb <<'PY'   # ipywidgets' saved state (audio bytes and all) is not worth storing
import json, sys
p = sys.argv[1]; nb = json.load(open(p))
if nb.get("metadata", {}).pop("widgets", None) is not None: json.dump(nb, open(p, "w"), indent=1, ensure_ascii=False)
PY
$V/nbdev-clean --fname nbs/$name.ipynb
$V/nbdev-export
if [ "$name" = index ]; then $V/python tools/make_readme.py; fi
