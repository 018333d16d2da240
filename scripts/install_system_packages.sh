#!/usr/bin/env bash
# The Debian packages whose data losslab uses offline (README, "Set up"). Where apt-get
# is missing (not Debian/Ubuntu) nothing is installed and the datasets download instead.
set -euo pipefail
PACKAGES=(
    dataset-fashion-mnist        # full Fashion-MNIST: the default of most tasks
    asterisk-core-sounds-en-wav  # 568 real recordings of one speaker (task=ctc)
    asterisk-core-sounds-en      # ... and their transcripts
    espeak-ng                    # speech synthesis for data=spoken_digits
    pocketsphinx-testdata        # a few real 16 kHz clips with transcripts (tests)
    labelme-examples             # three real VOC 2011 photos with boxes and masks (tests)
)
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get not found: skipping ${PACKAGES[*]}; datasets will be downloaded on first use"
    exit 0
fi
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
