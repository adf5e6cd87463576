#!/bin/sh
# Installs the Python binding (the packages ice, ice_orchestrator and
# ice_core) next to what `cmake --install BUILD` installed, and records the
# installed libice.so in ice/_libpath.py so that the package finds it
# without ldconfig. Called by `make install` after cmake --install.
#
#   sh python/install.sh BUILD [PYTHON]
#
# PYTHON (default /usr/bin/python3, else python3) picks the site directory:
# for the prefix /usr/local its default one (Debian: /usr/local/lib/
# python3.X/dist-packages), else PREFIX/lib/python3.X/site-packages.
# DESTDIR is honoured as cmake --install honours it.
set -eu

build=${1:?usage: install.sh BUILD [PYTHON]}
py=${2:-}
if [ -z "$py" ]; then
  if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=python3; fi
fi
src=$(cd "$(dirname "$0")" && pwd)
manifest="$build/install_manifest.txt"
if [ ! -f "$manifest" ]; then
  echo "install.sh: $manifest is missing: run cmake --install $build first" >&2
  exit 1
fi
destdir=${DESTDIR:-}
# The library as installed (without DESTDIR: where it will be at run time).
lib=$(grep '/libice\.so\.0$' "$manifest" | head -n 1 || true)
if [ -z "$lib" ]; then
  lib=$(grep '/libice\.so$' "$manifest" | head -n 1 || true)
fi
lib=${lib#"$destdir"}
# The prefix it used (cmake --install --prefix may override the cache's).
prefix=$(grep '/include/ice\.h$' "$manifest" | head -n 1)
prefix=${prefix#"$destdir"}
prefix=${prefix%/include/ice.h}
site=$("$py" - "$prefix" <<'PY'
import sys, sysconfig
prefix = sys.argv[1]
if prefix == "/usr/local":
    print(sysconfig.get_path("purelib"))
else:
    print(sysconfig.get_path("purelib", "posix_prefix",
                             vars={"base": prefix, "platbase": prefix}))
PY
)
dest="$destdir$site"
mkdir -p "$dest"
for pkg in ice ice_orchestrator ice_core; do
  rm -rf "${dest:?}/$pkg"
  (cd "$src" && find "$pkg" -name '*.py' ! -name '_libpath.py') | while read -r f; do
    mkdir -p "$dest/$(dirname "$f")"
    cp "$src/$f" "$dest/$f"
  done
done
printf '"""Written by make install."""\nLIBRARY = %s\n' "'$lib'" >"$dest/ice/_libpath.py"
"$py" -m compileall -q "$dest/ice" "$dest/ice_orchestrator" "$dest/ice_core" >/dev/null || true
echo "install.sh: the Python packages are in $dest (libice: ${lib:-the system's})"
