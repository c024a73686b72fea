#!/usr/bin/env bash
# Installs what mlpc needs on Debian 12 (as root), and makes sure names.txt is
# available. Idempotent: packages already installed are not touched (so it
# also works offline once set up), and an existing names.txt is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build llvm-19-dev lld-19 libzstd-dev zlib1g-dev libfmt-dev catch2 ccache curl ca-certificates gnuplot-nox pybind11-dev python3-dev python3-numpy python3-pytest python3-matplotlib)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# names.txt: data/, then $MLPC_DATA (file or directory), then ../shared/data/.
found=""
for candidate in data/names.txt "${MLPC_DATA:-}" "${MLPC_DATA:+$MLPC_DATA/names.txt}" ../shared/data/names.txt; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then found=$candidate; break; fi
done
if [ -z "$found" ]; then
  url=https://raw.githubusercontent.com/karpathy/makemore/master/names.txt
  echo "setup: names.txt not found in data/, \$MLPC_DATA or ../shared/data/; downloading $url"
  mkdir -p data
  curl -fsSL "$url" -o data/names.txt.tmp && mv data/names.txt.tmp data/names.txt
  found=data/names.txt
fi
echo "setup: using $found ($(grep -c "" "$found") names)"
