#!/usr/bin/env bash
# Installs every Debian package that building imgmod, running its demo and
# running its tests need. Idempotent: packages already present are skipped.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config postgresql-15 postgresql-server-dev-15 libkrb5-dev
  # image core
  libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libgif-dev libwebp-dev
  libheif-dev libtiff-dev libexif-dev liblcms2-dev zlib1g-dev
  # object storage, cache, status
  libcurl4-openssl-dev libhiredis-dev librdkafka-dev
  # tests
  libipc-run-perl valgrind libjpeg-turbo-progs
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
