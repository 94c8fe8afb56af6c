#!/usr/bin/env bash
# Shared by scripts/test.sh and scripts/demo.sh (sourced): create .venv, install dicomcloak with the extras
# given in $1 (e.g. "[test]"), then RapidOCR without its dependencies. rapidocr-onnxruntime 1.4.4 declares the
# GUI opencv-python, which needs libGL and clashes with opencv-python-headless (both install cv2/); dicomcloak
# depends on the headless build and on everything else RapidOCR needs (docs/pixels.md, "Dependencies").
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "==> installing dicomcloak${1:-} (editable)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${1:-}"
if ! .venv/bin/python -m pip show --quiet rapidocr-onnxruntime >/dev/null 2>&1; then
    echo "==> installing rapidocr-onnxruntime==1.4.4 (--no-deps: its models are in the wheel)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps rapidocr-onnxruntime==1.4.4
fi
