#!/usr/bin/env bash
# The peer benchmark in one command (bench/README.md, docs/benchmarks.md "Peers (issue 16)"):
# makes bench/.peers-venv (gitignored) with the peers pinned, from the machine's package index, then runs
# bench/peers.py with the project's interpreter, the peers run from that venv.
#   bash bench/peers.sh [--n 2000] [--max-big 20 0] [--repeat 3] [--md docs/benchmarks.md] [peers.py options]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$repo/bench/.peers-venv"
python="${PYTHON:-$repo/.venv/bin/python}"  # the project's environment (scripts/_venv.sh)
pins=(dicognito==0.19.0 deid==0.4.13 dicom-anonymizer==2.1.0)

[ -x "$python" ] || { echo "no $python: run 'bash scripts/_venv.sh \"[test]\"' first" >&2; exit 2; }
[ -x "$venv/bin/python" ] || "$(command -v python3.11 || command -v python3)" -m venv "$venv"
pinned='import importlib.metadata as m, sys
sys.exit(any(m.version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))'
if ! "$venv/bin/python" -c "$pinned" "${pins[@]}" 2>/dev/null; then
    echo "==> installing ${pins[*]} into ${venv#"$repo"/}" >&2
    "$venv/bin/python" -m pip install --quiet "${pins[@]}"
fi
command -v gdcmanon >/dev/null 2>&1 || echo "note: gdcmanon missing (apt-get install libgdcm-tools); reported as not installed" >&2
exec "$python" "$repo/bench/peers.py" --peers-python "$venv/bin/python" "$@"
