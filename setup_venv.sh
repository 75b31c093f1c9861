#!/usr/bin/env bash
# Set up and use the project's virtual environment.
#   ./setup_venv.sh          create/update venv/ (idempotent)
#   ./setup_venv.sh run [02 05 ...]
#                            ... then execute every notebook (or the ones named) headless into runs/<notebook>/
#   ./setup_venv.sh test     ... then lint with ruff, run the unit tests and every notebook under nbval (smoke
#                            profile; two at a time), each copied alone into an empty folder first, then the checks of
#                            their results (python -m tools.run_tests); with pytest args, just those
#   ./setup_venv.sh test-plain [02 05 ...]
#                            ... then the plain engine (SMOL_ENGINE=plain: transformers + PEFT + TRL, Unsloth never
#                            imported in the notebooks' kernels): 02 and 05 (or the ones named) under nbval, smoke
#                            profile, and the results checks of those notebooks
#   ./setup_venv.sh test-recipes [pytest args]
#                            ... then the recipes (recipes/*.py): notebook 02's SFT LoRA recipe launched by
#                            `accelerate launch` on two CPU processes (gloo) against one process with twice the gradient
#                            accumulation, and every recipe for a few steps on one process (tests/recipes/)
#   ./setup_venv.sh colab-sim [02 ... | all]
#                            ... then a simulated Colab (venv-colab-sim/): resolve all six install cells for Python 3.13
#                            with Colab's torch held, run the install cell, a hub outage (the notebook must stop at its
#                            model cell saying what to do) and nbval on the chosen notebooks (default 02)
#   ./setup_venv.sh colab-sim t4 [01 ... | all]
#                            ... or run tests/colab_t4.ipynb (the Colab T4 check) there on these notebooks (default all)
#   ./setup_venv.sh bench [--steps N] ... then train 02's LoRA via Unsloth and via plain TRL+PEFT; runs/bench/
#   ./setup_venv.sh gpu-check OUT --phase 1|2 [--deadline-min M]
#                            on a lent GPU machine (no venv set-up: it has no network; tools.gpu_check installs the
#                            wheels carried in .carry/gpu-check-N/ over its own CUDA torch): phase 1 nbval of the six
#                            notebooks under T4 emulation; phase 2 full 02, the bench, full 04 and 05, until the
#                            deadline; all under OUT
#   ./setup_venv.sh gpu-check pack | OUT --dry-run | OUT --rehearse [--notebooks 02 ...]
#                            here, in the venv: pack the wheels and print the device calls; check the plan; or run both
#                            phases for real on the CPU in a copy of the working tree
# Environment: SMOKE_TEST=1 (smoke profile for `run`), VENV_DIR (default venv), PYTHON (default python3),
#              SMOL_RUNS_DIR (default runs/), SMOL_CACHE_DIR (converted offline model; default ~/.cache/smol-trainer-notebooks),
#              SMOL_TEST_WORKERS (notebooks under test at a time; default 2, or 1 on one core)
set -euo pipefail
cd "$(dirname "$0")"
VENV_DIR=${VENV_DIR:-venv}
PYTHON=${PYTHON:-python3}

checksum() { if command -v sha1sum >/dev/null; then sha1sum; else shasum; fi; }  # macOS has only shasum

setup() {
  local stamp="$VENV_DIR/.installed-$(cat requirements.txt requirements-nodeps.txt pyproject.toml | checksum | cut -c1-12)"
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
  # Progress as it runs (section headings, printed text, training steps), expected times from data/reference/, and a
  # table of measured times at the end; Ctrl-C keeps the notebooks that finished. Then the before/after summary.
  local rc=0
  "$VENV_DIR/bin/python" -m tools.run_notebooks "$@" || rc=$?
  SMOL_RUNS_DIR="${SMOL_RUNS_DIR:-runs}" "$VENV_DIR/bin/python" -m tools.references
  return $rc
}

run_tests() {
  # tools.run_tests: ruff, the unit tests, every notebook under nbval (smoke profile, two at a time on two cores),
  # then the checks of what they measured; with pytest args, just those. Runs go to runs/smoke-tests/.
  "$VENV_DIR/bin/python" -m tools.run_tests "$@"
}

run_plain_tests() {
  # The plain engine, as on macOS or on Windows without an NVIDIA GPU; its smoke runs go to runs/smoke-tests-plain/.
  "$VENV_DIR/bin/python" -m tools.run_tests --plain "$@"
}

run_recipe_tests() {
  # Each recipe run writes into a temporary folder of its own (the tests set SMOL_RUNS_DIR for it).
  SMOKE_TEST=1 "$VENV_DIR/bin/python" -m pytest tests/recipes "$@"
}

case "${1:-setup}" in
  setup) setup ;;
  run) shift; setup; run_notebooks "$@" ;;
  test) shift; setup; run_tests "$@" ;;
  test-plain) shift; setup; run_plain_tests "$@" ;;
  test-recipes) shift; setup; run_recipe_tests "$@" ;;
  colab-sim) shift; setup; "$VENV_DIR/bin/python" -m tools.colab_sim "$@" ;;
  bench) shift; setup; "$VENV_DIR/bin/python" -m tools.bench "$@" ;;
  gpu-check) shift
    # On the GPU machine (--phase 1|2): its own Python, no venv (no network there). Here (pack, --dry-run, --rehearse):
    # the venv, which has what they need (pip, nbformat, the tools' imports).
    if [[ " $* " =~ " --rehearsal " ]] || [[ " $* " =~ " --phase " && ! " $* " =~ " --dry-run " && ! " $* " =~ " --rehearse " ]]; then
      "$PYTHON" -m tools.gpu_check "$@"
    else
      setup; "$VENV_DIR/bin/python" -m tools.gpu_check "$@"
    fi ;;
  *) echo "usage: $0 [setup|run [02 ...]|test [pytest args]|test-plain [02 05 ...]|test-recipes [pytest args]|colab-sim [02 ... | all | t4 [01 ...]]|bench [--steps N]|gpu-check pack|OUT --phase 1|2|--dry-run|--rehearse]" >&2; exit 2 ;;
esac
