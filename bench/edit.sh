#!/usr/bin/env bash
# Image edits: imgmod's lossless part against jpegtran, imgmod's own render
# time, and edit-to-ready through PostgreSQL, in one run.  See README.md.
#
#   bench/edit.sh [-n N] [--core-only]          (N default 7)
#
# 1. core (no database): each photo is normalised with imgmod-cli (the
#    master the edit worker starts from); on it, rotate 90 and a centre-half
#    crop by `imgmod-cli edit` against `jpegtran` (whole processes, paired)
#    and by img_edit_apply() against tjTransform() (in-process,
#    bench/build/edit_stages), plus the render of every preset from the
#    edited master (bench/edit.py core).
# 2. PostgreSQL: make install, a private cluster (port 54362, embedded
#    store), the photos uploaded, then per photo and op 1 warm-up + N times
#    `SELECT imgmod.edit(id, ops, 1)` (autocommit) to `imgmod.wait(id)`
#    returning ready.  The installed imgmod.so is shared with everyone on the
#    machine, so this step holds /tmp/imgmod-shared.lock (IMGMOD_SHARED_LOCK)
#    from make install until the cluster is gone; when the script already
#    runs under `flock` on that file it does not take it again.
#
# Photos: kleiber, seeding, dragonfly from ${IMGMOD_CORPUS:-<repo>/../shared/corpus}/photos
# (BENCH_IMAGES: other files).  Writes bench/results/edit-latest.md and
# prints it.  Leaves nothing running.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${BENCH_N:-7}
PG=1
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    --core-only) PG=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "edit.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- inputs
CORPUS=${IMGMOD_CORPUS:-$ROOT/../shared/corpus}
if [ -n "${BENCH_IMAGES:-}" ]; then read -r -a IMAGES <<<"$BENCH_IMAGES"
else IMAGES=("$CORPUS/photos/kleiber.jpg" "$CORPUS/photos/seeding.jpg" "$CORPUS/photos/dragonfly.jpg"); fi
missing=()
for f in "${IMAGES[@]}"; do [ -f "$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "edit.sh: benchmark input missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "The photos come from the shared corpus (../shared/corpus/photos next to the repo);" >&2
  echo "point IMGMOD_CORPUS at a corpus or list JPEG files in BENCH_IMAGES." >&2
  exit 2
fi
for tool in jpegtran psql; do
  command -v $tool >/dev/null || { echo "edit.sh needs $tool (apt-get install libjpeg-turbo-progs postgresql-client)" >&2; exit 2; }
done

WORK=/tmp/imgmod-bench-edit
rm -rf "$WORK" && mkdir -p "$WORK"
chmod 755 "$WORK"
OUT=$ROOT/bench/results/edit-latest.md
mkdir -p "$ROOT/bench/results"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
dirty=$(git status --porcelain -- src tools bgworker bench 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
DESC="$REV${dirty:+ with uncommitted changes in: $dirty}"

# ------------------------------------------------------------------ core
say "building imgmod-cli and bench/build/edit_stages"
make -s -C tools >&2
make -s -C bench build/edit_stages >&2
say "core: N=$N, ${#IMAGES[@]} photo(s)"
/usr/bin/python3 bench/edit.py core --cli build/tools/imgmod-cli --stages bench/build/edit_stages \
  --work "$WORK" --n "$N" --imgmod "$DESC" "${IMAGES[@]}"

if [ $PG = 0 ]; then
  /usr/bin/python3 bench/edit.py report --work "$WORK" --pg-na "not run (--core-only)" --out "$OUT"
  exit 0
fi

# ------------------------------------------------------------ PostgreSQL
LOCK=${IMGMOD_SHARED_LOCK-/tmp/imgmod-shared.lock}
under_lock() { # is an ancestor `flock ... $LOCK ...`?
  local pid=$$ args
  while [ "$pid" -gt 1 ]; do
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    case " $args " in *"flock "*"$LOCK "*) return 0 ;; esac
    pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 1)
  done
  return 1
}
if [ -n "$LOCK" ] && ! under_lock; then
  say "waiting for $LOCK (PostgreSQL step)"
  exec 9>>"$LOCK"
  flock 9
fi

export IMGMOD_CLUSTER_DIR=$WORK/cluster IMGMOD_PGPORT=54362
cleanup() { scripts/cluster.sh destroy >/dev/null 2>&1 || true; }
trap cleanup EXIT
say "make install; cluster on port $IMGMOD_PGPORT"
make -s >/dev/null
make -s install >/dev/null
cleanup
scripts/cluster.sh start imgmod_bench >/dev/null
eval "$(scripts/cluster.sh env)"
export PGDATABASE=imgmod_bench
psql -XqAt -v ON_ERROR_STOP=1 -c "CREATE EXTENSION imgmod" >/dev/null

mkdir -p "$WORK/in" && chmod 755 "$WORK/in"
: >"$WORK/pg.tsv"
for f in "${IMAGES[@]}"; do
  name=$(basename "${f%.*}")
  cp "$f" "$WORK/in/$name.jpg" && chmod 644 "$WORK/in/$name.jpg"
  id=$(psql -XqAt -v ON_ERROR_STOP=1 -c "SELECT imgmod.upload(pg_read_binary_file('$WORK/in/$name.jpg'), '$name.jpg')")
  [ "$(psql -XqAt -c "SELECT imgmod.wait($id, '120 s')")" = ready ] || { echo "edit.sh: $name did not become ready" >&2; exit 1; }
  # One session per photo and op: 1 warm-up + N edits of version 1 (the
  # upload's master), each timed on the server from the start of the edit
  # statement to the end of the wait that sees it ready.
  grep -P "^\Q$name\E\t" "$WORK/ops.tsv" | while IFS=$'\t' read -r _ op ops; do
    say "PostgreSQL: $name: $op"
    script=$WORK/run.sql
    : >"$script"
    for i in $(seq 0 "$N"); do
      run=$((i - 1)); [ $i = 0 ] && run=warmup
      cat >>"$script" <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT imgmod.edit($id, '$ops', 1) AS v \gset
SELECT imgmod.wait($id, '300 s') AS st, round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1) AS ms \gset
SELECT master_method AS method FROM imgmod.image_versions WHERE image_id = $id AND version = :v \gset
SELECT '$name', '$op', '$run', :'ms', :'method', :'st';
SQL
    done
    psql -XqAt -F "$(printf '\t')" -v ON_ERROR_STOP=1 -f "$script" | while IFS=$'\t' read -r p o r ms method st; do
      [ "$st" = ready ] || { echo "edit.sh: $p $o run $r ended $st" >&2; exit 1; }
      printf '%s\t%s\t%s\t%s\t%s\n' "$p" "$o" "$r" "$ms" "$method"
    done >>"$WORK/pg.tsv"
  done
done
cleanup
trap - EXIT
[ -n "$LOCK" ] && exec 9>&- || true

/usr/bin/python3 bench/edit.py report --work "$WORK" --pg "$WORK/pg.tsv" --out "$OUT"
