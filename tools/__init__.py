"""The repository's tools, one package: run each from the repository root as `python -m tools.<name>` (or through
./setup_venv.sh), which puts the root on sys.path, so that `tools` and `helpers` import without path edits. Between
tools one import style: `from tools import x` or `from tools.x import y`. Nothing here imports from tests/."""
