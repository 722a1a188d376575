# Sourced by the shell tests that make and read .npy files with NumPy (Debian
# python3-numpy): sets `tool` (the program, $1, as an absolute path), `py`, and a scratch
# directory `work` that is removed on exit and made the current directory. Exits 77
# (skipped, SKIP_RETURN_CODE in tests/CMakeLists.txt) when NumPy is missing.
tool=$(realpath "$1")
py=/usr/bin/python3
$py -c "import numpy" 2>/dev/null || { echo "skipped: python3-numpy is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
