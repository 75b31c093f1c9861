#!/usr/bin/env bash
# Set up and use the project's virtual environment.
#   ./setup_venv.sh          create/update venv/ (idempotent)
#   ./setup_venv.sh run      ... then execute every notebook headless into runs/<notebook>/
#   ./setup_venv.sh test     ... then run the unit tests and every notebook under nbval (smoke profile), each notebook
#                            copied alone into an empty folder first; with pytest args, just those
#   ./setup_venv.sh colab-sim [02 ... | all]
#                            ... then a simulated Colab (venv-colab-sim/): resolve all six install cells for Python 3.13
#                            with Colab's torch held, run the install cell and nbval on the chosen notebooks (default 02)
# Environment: SMOKE_TEST=1 (smoke profile for `run`), VENV_DIR (default venv), PYTHON (default python3),
#              SMOL_RUNS_DIR (default runs/), SMOL_CACHE_DIR (converted offline model; default ~/.cache/smol-trainer-notebooks)
set -euo pipefail
cd "$(dirname "$0")"
VENV_DIR=${VENV_DIR:-venv}
PYTHON=${PYTHON:-python3}

setup() {
  local stamp="$VENV_DIR/.installed-$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    echo "venv: $VENV_DIR is up to date"
  else
    local start=$SECONDS
    [ -x "$VENV_DIR/bin/python" ] || "$PYTHON" -m venv "$VENV_DIR"
    "$VENV_DIR/bin/python" -m pip install -q --upgrade pip
    # torch first, alone: on a machine with a local CPU wheel (and no GPU) that is the one pip takes.
    "$VENV_DIR/bin/python" -m pip install -q "$(grep '^torch==' requirements.txt)"
    "$VENV_DIR/bin/python" -m pip install -q -r requirements.txt
    "$VENV_DIR/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
    # `helpers` importable from any folder (notebooks, tests, a notebook copied elsewhere): an editable install.
    "$VENV_DIR/bin/python" -m pip install -q --no-deps -e .
    "$VENV_DIR/bin/python" -m ipykernel install --user --name smol-trainer --display-name "Python (smol-trainer)" >/dev/null
    rm -f "$VENV_DIR"/.installed-*
    touch "$stamp"
    echo "venv: installed in $((SECONDS - start)) s, $(du -sh "$VENV_DIR" | cut -f1)"
  fi
  # Convert the offline model once (cached; a no-op afterwards).
  local log; log=$(mktemp)
  if "$VENV_DIR/bin/python" -c "from helpers.models import offline_model_dir; print('offline model:', offline_model_dir())" >"$log" 2>&1; then
    grep '^offline model:' "$log"
  else
    cat "$log"; echo "setup: converting the offline model failed (see above)" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

run_notebooks() {
  local runs=${SMOL_RUNS_DIR:-runs}
  for nb in notebooks/*.ipynb; do
    local name; name=$(basename "$nb" .ipynb)
    mkdir -p "$runs/$name"
    echo "== $name (profile: $([ "${SMOKE_TEST:-0}" = 1 ] && echo smoke || echo full))"
    local start=$SECONDS
    "$VENV_DIR/bin/jupyter" nbconvert --to notebook --execute "$nb" --output-dir "$runs/$name" --output "$name.ipynb" \
      --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 --log-level=WARN
    echo "   done in $((SECONDS - start)) s -> $runs/$name/"
  done
  SMOL_RUNS_DIR="$runs" "$VENV_DIR/bin/python" -m helpers.results
}

run_tests() {
  # The smoke runs write to runs/smoke-tests/, so that they never overwrite the main job's results in runs/.
  local runs=${SMOL_RUNS_DIR:-$PWD/runs/smoke-tests}
  if [ $# -eq 0 ]; then
    # Every notebook runs from a folder that holds only a copy of it, as after an upload to Colab.
    local alone="$runs/notebooks-alone"
    rm -rf "$alone"; mkdir -p "$alone"; cp notebooks/*.ipynb "$alone/"
    set -- tests/unit "$alone" tests/results
  fi
  SMOKE_TEST=1 SMOL_RUNS_DIR="$runs" "$VENV_DIR/bin/python" -m pytest "$@"
}

case "${1:-setup}" in
  setup) setup ;;
  run) setup; run_notebooks ;;
  test) shift; setup; run_tests "$@" ;;
  colab-sim) shift; setup; "$VENV_DIR/bin/python" tools/colab_sim.py "$@" ;;
  *) echo "usage: $0 [setup|run|test [pytest args]|colab-sim [02 ... | all]]" >&2; exit 2 ;;
esac
