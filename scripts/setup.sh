#!/usr/bin/env bash
# Installs ternlm's build and test dependencies from Debian's packages.
# Idempotent: packages already present are left alone; apt-get runs only when
# something is missing. Needs root (or sudo) when it has to install.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libeigen3-dev catch2
  libvulkan-dev glslang-tools mesa-vulkan-drivers
  python3 python3-dev python3-numpy python3-pytest pybind11-dev
  python3-venv python3-pip python3-setuptools python3-wheel
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
