#!/usr/bin/env bash
# De-identify 60 synthetic DICOM files with planted PHI (originals sealed in a SQLite vault), verify the
# output leaks nothing, then re-identify it as the owner and check it equals the input.
# Usage: bash scripts/demo.sh        (from anywhere; works on a fresh clone with Python 3.11+)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/_venv.sh  # .venv, dicomcloak, RapidOCR without its GUI OpenCV
export PATH="$PWD/.venv/bin:$PATH"

mkdir -p demo
rm -rf demo/input demo/output demo/output.run demo/restored demo/restored.run demo/vault.db* \
    demo/pixels-input demo/pixels-output demo/pixels-output.run
echo "==> building 60 sample files from pydicom's bundled test data"
python -m dicomcloak.testing.corpus --out demo/input --n 60

if [ ! -f demo/demo.key ]; then
    echo "==> creating the demo key"
    dicomcloak keys init --out demo/demo.key
fi

# The corpus puts its DICOM files under files/ and answer_key.json (the planted PHI, not DICOM) beside them.
input=demo/input/files
[ -d "$input" ] || input=demo/input

vault="sqlite:///$PWD/demo/vault.db"
echo "==> de-identifying $input (sanitized, then de-identified; originals sealed in demo/vault.db)"
dicomcloak deid "$input" --out demo/output --key demo/demo.key --option retain-long-modified-dates --vault "$vault"
echo "==> verifying: no planted value or original UID left in demo/output"
dicomcloak verify "$input" demo/output --key demo/demo.key --option retain-long-modified-dates
echo "==> re-identifying demo/output as the owner (vault + key)"
dicomcloak reid demo/output --out demo/restored --vault "$vault" --key demo/demo.key
echo "==> checking the restored files equal the inputs"
python -m dicomcloak.testing.restored "$input" demo/restored

echo "==> burned-in text: 4 synthetic screen captures showing names, IDs and dates in their pixels"
python -m dicomcloak.testing.pixel_synth demo/pixels-input --n 4 --seed 7
dicomcloak deid demo/pixels-input/*.dcm --out demo/pixels-output --key demo/demo.key --layout mirror
python -m dicomcloak.testing.pixel_score demo/pixels-input demo/pixels-output

cat <<DONE

Done.
  inputs (synthetic PHI)  demo/input
  de-identified output    demo/output
  vault (sealed originals) demo/vault.db
  re-identified           demo/restored
  run report              demo/output.run/latest/report.json
  burned-in text          demo/pixels-input -> demo/pixels-output (see demo/pixels-output.run/latest/pixels.html)
  quarantine              demo/output.run/quarantine
  demo key (back it up!)  demo/demo.key
Try: .venv/bin/dicomcloak policy explain --option retain-long-modified-dates
DONE
