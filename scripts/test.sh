#!/usr/bin/env bash
# Everything CI runs: ruff, mypy (strict), import contracts, pytest. Fails on the first failure.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian tools some tests compare against or run (dcmtk, dicom3tools, PostgreSQL for the vault tests),
# installed only when missing and root.
missing=()
command -v dcmdump >/dev/null 2>&1 || missing+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
command -v gdcmanon >/dev/null 2>&1 || missing+=(libgdcm-tools)  # gdcmanon: PS3.15 E.1 interop tests
command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || missing+=(orthanc)  # a real PACS: gateway tests (docs/gateway.md)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium)  # headless: the HTML report's tests
# the Tesseract OCR back-end and the fonts of the synthetic burned-in text images (docs/pixels.md)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "warning: ${missing[*]} missing and not root; tests that need them will be skipped" >&2
    fi
fi

source scripts/_venv.sh "[test]"  # .venv, dicomcloak[test], RapidOCR without its GUI OpenCV
export PATH="$PWD/.venv/bin:$PATH"

lint_paths=(src tests)
[ -d bench ] && lint_paths+=(bench)
echo "==> ruff check ${lint_paths[*]}"
ruff check "${lint_paths[@]}"
echo "==> mypy src"
mypy src
echo "==> lint-imports"
lint-imports
echo "==> pytest"
if python -c "import xdist" >/dev/null 2>&1; then
    pytest -n 2 "$@"
else
    pytest "$@"
fi
