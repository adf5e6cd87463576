#!/bin/sh
# Installs the Debian packages ice needs to build and test. Idempotent: it
# asks apt-get only for packages that are missing, so a warm machine pays
# one dpkg query. Run as root (CI and the dev machines are root).
set -eu

PKGS="build-essential cmake ninja-build pkg-config
libuv1-dev libjansson-dev libfyaml-dev libsqlite3-dev libcurl4-openssl-dev
libseccomp-dev libcap-dev wabt libcmocka-dev gcovr cppcheck clang-format
python3 python3-pytest procps nodejs libclang-rt-14-dev"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
