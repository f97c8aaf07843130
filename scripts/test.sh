#!/usr/bin/env bash
# Runs every imgmod test: installs what is needed, builds with -Werror,
# runs the image core's unit tests under AddressSanitizer and valgrind (and
# on the shared corpus), fuzzes each libFuzzer target for a bounded time,
# runs the SQL regression suite against a throwaway cluster with imgmod
# preloaded, and the TAP suite (workers, restarts, orientation, metadata
# stripping, interrupts).
# Exits non-zero on the first failing stage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)

stage() { echo; echo "=== $* ==="; }

stage "dependencies"
bash scripts/install-deps.sh
PGBIN=$(pg_config --bindir)

stage "docker/docker-compose.yml (Compose specification, no secret on a command line)"
"${IMGMOD_TOOLS_VENV:-/opt/imgmod-tools}/bin/check-jsonschema" --builtin-schema vendor.compose-spec \
  docker/docker-compose.yml
if grep -nE 'imgmod\.[a-z0-9_]*(secret_key|access_key|redis_url|password)=' docker/docker-compose.yml; then
  echo "docker/docker-compose.yml passes a secret setting with -c; use its secrets: instead"
  exit 1
fi

stage "build"
make -s clean >/dev/null 2>&1 || true
make -s
make -s install >/dev/null

stage "unit tests (AddressSanitizer + UBSan)"
make -s unit

stage "unit tests (valgrind)"
make -s valgrind

stage "unit tests on the shared corpus (../shared/corpus or IMGMOD_CORPUS_DIR)"
# The repository's own fixtures are what the suites above run on, so a clone
# without the team's shared corpus is fully tested.  The corpus adds the
# hostile set's full verdict table, PngSuite and the orientation sets: run
# whenever it is there (a missing file in it fails), announced loudly when
# it is not; IMGMOD_REQUIRE_CORPUS=1 makes its absence a failure.
CORPUS=${IMGMOD_CORPUS_DIR:-$ROOT/../shared/corpus}
if [ -d "$CORPUS" ] || [ "${IMGMOD_REQUIRE_CORPUS:-0}" = 1 ]; then
  IMGMOD_CORPUS_DIR="$CORPUS" make -s unit-corpus
else
  echo "################################################################"
  echo "# NOT RUN: the shared corpus is not at $CORPUS."
  echo "# 'make unit-corpus' fails without it; set IMGMOD_CORPUS_DIR, or"
  echo "# IMGMOD_REQUIRE_CORPUS=1 to make its absence fail this run."
  echo "################################################################"
fi

stage "fuzzing: each libFuzzer target for ${IMGMOD_FUZZ_SECONDS:-60} s, seeded from test/fixtures"
# A crash, leak, timeout or OOM stops CI here with the reproducer's path
# (fuzz/crashes/<target>-crash-...) and the command to replay it.
make -s -C fuzz smoke SMOKE_TIME="${IMGMOD_FUZZ_SECONDS:-60}"

stage "SQL regression tests"
export IMGMOD_CLUSTER_DIR=/tmp/imgmod-regress
export IMGMOD_PGPORT=54330
export IMGMOD_EXTRA_CONF="imgmod.max_attempts = 2
imgmod.retry_base_delay = '100ms'"
scripts/cluster.sh destroy >/dev/null 2>&1 || true
trap 'IMGMOD_CLUSTER_DIR=/tmp/imgmod-regress scripts/cluster.sh destroy >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh start imgmod_regress
eval "$(scripts/cluster.sh env)"
rm -rf results regression.diffs regression.out
if ! make -s installcheck; then
  [ -f regression.diffs ] && cat regression.diffs
  echo "SQL regression tests FAILED (server log: $IMGMOD_CLUSTER_DIR/server.log)"
  exit 1
fi
scripts/cluster.sh destroy
trap - EXIT

stage "external servers (Redis, Ceph RGW, Kafka) for the TAP suite"
# The TAP suite runs as 'postgres' and stops/starts these servers itself,
# so they run as 'postgres' too.
export IMGMOD_SERVICES_USER=postgres
trap 'bash scripts/services.sh stop >/dev/null 2>&1 || true' EXIT
bash scripts/services.sh start
eval "$(bash scripts/services.sh env)"
export IMGMOD_SERVICES_SCRIPT="$ROOT/scripts/services.sh"

stage "TAP tests"
bash scripts/run-tap.sh
bash scripts/services.sh stop
trap - EXIT

echo
echo "all imgmod tests passed"
