#!/usr/bin/env bash
# Runs the TAP suite (t/*.pl) with PostgreSQL::Test::Cluster.  initdb will
# not run as root, so when called as root the suite runs as 'postgres' in a
# scratch copy of the test files that 'postgres' owns.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGXS_DIR=$(cd "$(dirname "$(pg_config --pgxs)")/../.." && pwd)
PERL_LIB="$PGXS_DIR/src/test/perl"
PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress"
BINDIR=$(pg_config --bindir)

WORK=$(mktemp -d /tmp/imgmod-tap.XXXXXX)
cp -r "$ROOT/t" "$ROOT/test" "$ROOT/edge" "$WORK/"
mkdir -p "$WORK/tmp_check"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$WORK"
  RUN=(runuser -u postgres --)
else
  RUN=()
fi

status=0
( cd "$WORK" && "${RUN[@]}" env TESTDIR="$WORK" PATH="$BINDIR:$PATH" \
    PG_REGRESS="$PG_REGRESS" PG_TEST_PORT_DIR="$WORK/tmp_check" \
    IMGMOD_ORIGIN_BIN="${IMGMOD_ORIGIN_BIN:-$ROOT/origin/imgmod-origin}" \
    IMGMOD_TOOLS_VENV="${IMGMOD_TOOLS_VENV:-/opt/imgmod-tools}" \
    IMGMOD_UPDATE_SCREENSHOT="${IMGMOD_UPDATE_SCREENSHOT:-}" \
    $(env | grep -E '^IMGMOD_(S3|HIRES_S3|REDIS|KAFKA|SERVICES)_' | tr '\n' ' ') \
    sh -c 'ulimit -n 8192; exec "$@"' sh prove -I "$PERL_LIB" -I "$WORK/t" ${PROVE_FLAGS:-} ${PROVE_TESTS:-t/*.pl} ) || status=$?

if [ "$status" != 0 ]; then
  echo "TAP tests FAILED; logs:"
  for f in "$WORK"/tmp_check/log/*; do
    [ -f "$f" ] || continue
    echo "----- $f (last 60 lines)"
    tail -n 60 "$f"
  done
  exit "$status"
fi
# IMGMOD_UPDATE_SCREENSHOT=1: t/033_browser.pl wrote docs/product-page.png
# into the scratch copy; it goes back into the source tree.
if [ "${IMGMOD_UPDATE_SCREENSHOT:-}" = 1 ] && [ -f "$WORK/docs/product-page.png" ]; then
  mkdir -p "$ROOT/docs"
  cp "$WORK/docs/product-page.png" "$ROOT/docs/product-page.png"
  echo "run-tap: updated docs/product-page.png"
fi
rm -rf "$WORK"
