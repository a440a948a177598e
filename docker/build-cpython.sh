#!/bin/sh
# Build CPython into /opt/python inside the image's builder stage.
#   sh build-cpython.sh [extra ./configure flags]      (Dockerfile.nogil passes --disable-gil)
# Env (the Dockerfile's build args): PYTHON_VERSION, PYTHON_SHA256, PYTHON_SOURCE, PYTHON_URL.
# The tarball comes from the build context (PYTHON_SOURCE, under docker/context/vendor/, bind-
# mounted at /tmp/vendor) when it is there, else from PYTHON_URL. Same ./configure as
# scripts/build-python, no PGO/LTO: the lab measures processes, not speed, and a cold build must
# stay short on 2 cores. Tests, static libpython and debug symbols are dropped to keep it lean.
set -eu
fail() { echo "error: $*" >&2; exit 1; }

case "$PYTHON_SOURCE" in
  docker/context/vendor/*) ;;
  *) fail "build arg PYTHON_SOURCE=$PYTHON_SOURCE must name a file under docker/context/vendor/ (scripts/docker-bootstrap stages it there)" ;;
esac
src="/tmp/vendor/${PYTHON_SOURCE#docker/context/vendor/}"
if [ -f "$src" ]; then
  echo "CPython source: $PYTHON_SOURCE (build context)"
  cp "$src" /tmp/python.tar.xz
else
  echo "CPython source: no $PYTHON_SOURCE in the build context, downloading $PYTHON_URL"
  curl -fsSL --retry 2 --connect-timeout 15 --max-time 600 -o /tmp/python.tar.xz "$PYTHON_URL" \
    || fail "cannot download $PYTHON_URL and the build context has no $PYTHON_SOURCE: set build arg PYTHON_SOURCE to a Python-$PYTHON_VERSION.tar.xz under docker/context/vendor/ (PYTHON_SOURCE=/path/to/Python-$PYTHON_VERSION.tar.xz scripts/docker-bootstrap stages it)"
fi
echo "$PYTHON_SHA256  /tmp/python.tar.xz" | sha256sum -c --quiet - \
  || fail "Python-$PYTHON_VERSION.tar.xz does not match build arg PYTHON_SHA256=$PYTHON_SHA256"

mkdir /tmp/src
tar -xJf /tmp/python.tar.xz -C /tmp/src --strip-components=1
rm /tmp/python.tar.xz
cd /tmp/src
start=$(date +%s)
echo "./configure --prefix=/opt/python --with-ensurepip=install $*"
./configure --prefix=/opt/python --with-ensurepip=install "$@" >/tmp/configure.log 2>&1 \
  || { tail -n 40 /tmp/configure.log; fail "configure failed"; }
make -j"$(nproc)" >/tmp/make.log 2>&1 || { tail -n 60 /tmp/make.log; fail "make failed"; }
grep -A12 'necessary bits to build these optional modules were not found' /tmp/make.log || true
make install >/tmp/install.log 2>&1 || { tail -n 40 /tmp/install.log; fail "make install failed"; }
echo "CPython built and installed in $(( $(date +%s) - start )) s with make -j$(nproc)"
cd /
rm -rf /tmp/src /tmp/*.log
find /opt/python -depth -type d \( -name test -o -name tests -o -name idle_test \) -exec rm -rf {} +
rm -f /opt/python/lib/python3*/config-*/libpython*.a
find /opt/python -name '*.so' -exec strip --strip-unneeded {} +
for f in /opt/python/bin/*; do strip "$f" 2>/dev/null || true; done
/opt/python/bin/python3 -c 'import sys, sysconfig, ssl, sqlite3, lzma, bz2, zlib, ctypes, uuid; print(sys.version, "Py_GIL_DISABLED =", sysconfig.get_config_var("Py_GIL_DISABLED"))'
