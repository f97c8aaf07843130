#!/usr/bin/env bash
# Installs every Debian package that building imgmod, running its demo and
# running its tests need, and the Python tools the tests run from a venv.
# Idempotent: packages already present are skipped.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config postgresql-15 postgresql-server-dev-15 libkrb5-dev
  # image core
  libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libgif-dev libwebp-dev
  libheif-dev libtiff-dev libexif-dev liblcms2-dev zlib1g-dev
  # object storage, cache, status
  libcurl4-openssl-dev libhiredis-dev librdkafka-dev
  # digests in the I/O library (src/io)
  libssl-dev
  # the CDN origin, and its edge
  libmicrohttpd-dev libpq-dev curl varnish varnish-modules
  # tests
  libipc-run-perl valgrind libjpeg-turbo-progs strace
  # check-jsonschema (docker/docker-compose.yml) and Playwright (the browser
  # test, t/033_browser.pl) run from a venv; the browser is Debian's
  python3-venv chromium
  # fuzzing: clang with the libFuzzer and sanitizer runtimes
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"

# check-jsonschema validates docker/docker-compose.yml against the Compose
# specification; PyPI's package, in a venv of its own (Debian's Python is
# externally managed).
TOOLS_VENV=${IMGMOD_TOOLS_VENV:-/opt/imgmod-tools}
CHECK_JSONSCHEMA_VERSION=0.39.0
if ! "$TOOLS_VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA_VERSION"; then
  echo "install-deps: installing check-jsonschema $CHECK_JSONSCHEMA_VERSION into $TOOLS_VENV"
  /usr/bin/python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
echo "install-deps: check-jsonschema present ($TOOLS_VENV/bin/check-jsonschema)"

# Playwright for Python drives Debian's Chromium (/usr/bin/chromium) in the
# browser test; its own browser download ('playwright install') is never
# used, so only the Python package is installed.
PLAYWRIGHT_VERSION=1.65.2
if ! "$TOOLS_VENV/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('playwright') != '$PLAYWRIGHT_VERSION')" 2>/dev/null; then
  echo "install-deps: installing playwright $PLAYWRIGHT_VERSION into $TOOLS_VENV"
  [ -x "$TOOLS_VENV/bin/python" ] || /usr/bin/python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION"
fi
echo "install-deps: playwright present ($TOOLS_VENV/bin/python -m playwright, browser /usr/bin/chromium)"
