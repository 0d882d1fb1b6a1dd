#!/usr/bin/env bash
# Install what libdpt still needs on Debian 12: system packages (only the missing ones) and the
# Python venv (.venv, system interpreter with system site packages, pinned tools/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config libopenblas-dev libsndfile1-dev libsoxr-dev zlib1g-dev check
      libpng-dev libjpeg62-turbo-dev libosmesa6
      python3 python3-venv python3-pip python3-numpy python3-torch python3-pytest"
# dpt-generate --flame and dpt-mesh --video encode through the system ffmpeg (ffprobe: the tests)
PKGS="$PKGS ffmpeg"
# make fuzz / fuzz-short (part of make test): clang with libFuzzer and the sanitizer runtimes
PKGS="$PKGS clang libclang-rt-14-dev"
# make test-valgrind (part of make test)
PKGS="$PKGS valgrind"
# the dpt Python package (pip install --no-build-isolation ./python; make test-python-pkg): headers
# for the extension, the system setuptools and wheel for an offline build
PKGS="$PKGS python3-dev python3-setuptools python3-wheel"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s tools/requirements.txt "$stamp"; then
  echo "deps: preparing .venv (transformers, soxr, soundfile)"
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt
  # upstream's renderer for the renderer tests and bench (through OSMesa): pyrender 0.1.45 pins
  # PyOpenGL 3.1.0, which cannot render offscreen through OSMesa; its other dependencies are in
  # requirements.txt (PyOpenGL 3.1.7, without scipy: trimesh's normals fall back to a loop)
  .venv/bin/pip install -q --disable-pip-version-check --no-deps 'pyrender==0.1.45'
  cp tools/requirements.txt "$stamp"
fi
