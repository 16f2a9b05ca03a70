# Sourced by scripts/quickstart and scripts/test: make (once) the project's virtual environment
# .venv with the machine's python3, install notesearch into it, and put it first on PATH.
# Works where the system pip is externally managed and there is no `python` command.
# The caller may set `extras` (e.g. extras=test) to install optional dependencies too.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    command -v python3 >/dev/null || { echo "error: python3 (3.11 or newer) is needed" >&2; exit 1; }
    echo "notesearch: creating a virtual environment in $venv" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian without python3-venv has no ensurepip: make the venv bare, then let the
        # system pip install pip into it (pip --python runs against the venv, not the system).
        rm -rf "$venv"
        python3 -m venv --without-pip "$venv" && python3 -m pip --python "$venv/bin/python" \
            install --quiet pip || {
            echo "error: could not create $venv; install python3-venv (apt-get install python3-venv)" >&2
            exit 1; }
    fi
fi
py="$venv/bin/python"
# PyTorch's CPU build first: asked for by sentence-transformers, pip would pull the CUDA build
# (several GB). A torch already in .venv (say, a CPU wheel you installed yourself) is kept.
if ! "$py" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
    echo "notesearch: installing PyTorch (CPU build) into $venv" >&2
    "$py" -m pip install --quiet torch==2.13.0
fi
spec="$root${extras:+[$extras]}"
echo "notesearch: installing notesearch${extras:+[$extras]} into $venv" >&2
"$py" -m pip install --quiet -e "$spec"
export PATH="$venv/bin:$PATH"
