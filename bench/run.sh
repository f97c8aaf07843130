#!/usr/bin/env bash
# imgmod benchmark: imgmod and its peers, same run, same machine.  See README.md.
#
#   bench/run.sh [-n N] [--rev REV] [--no-install] [--no-stages] [IMAGE_OR_DIR ...]
#
# imgmod is built from a snapshot of src/core + tools taken at the start
# (the working tree, or git revision REV with --rev) into bench/build/tree,
# so edits or rebuilds by others during the run cannot change what is timed.
#
# With no images, uses kleiber, seeding and dragonfly from
# ${IMGMOD_CORPUS:-<repo>/../shared/corpus}/photos/.  BENCH_IMAGES (a directory
# or a space-separated list of files) and BENCH_N are the environment
# equivalents of the arguments.  Writes bench/results/latest.md and
# bench/results/latest-raw.tsv and prints the tables.
#
# Installs what is missing with apt-get (as root) and npm (sharp into
# bench/node_modules), builds imgmod-cli (make -C tools) and the helpers in
# bench/build/.  A peer that cannot be installed or built is reported as n/a
# with the reason; only imgmod-cli itself is required.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
N=${BENCH_N:-5}
INSTALL=1
STAGES=1
REV=
IMAGES=()

while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -n*) N=${1#-n}; shift ;;
    --rev) REV=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --no-stages) STAGES=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) IMAGES+=("$1"); shift ;;
  esac
done

say() { printf '== %s\n' "$*" >&2; }
NA=()        # PEER=REASON for the harness
na() { NA+=(--na "$1=$2"); say "n/a: $1: $2"; }

# ------------------------------------------------------------- inputs first
# (so a missing corpus is reported before anything is installed)
if [ ${#IMAGES[@]} -eq 0 ] && [ -n "${BENCH_IMAGES:-}" ]; then
  read -r -a IMAGES <<<"$BENCH_IMAGES"
fi
if [ ${#IMAGES[@]} -eq 0 ]; then
  CORPUS=${IMGMOD_CORPUS:-$ROOT/../shared/corpus}
  for name in kleiber seeding dragonfly; do IMAGES+=("$CORPUS/photos/$name.jpg"); done
fi
FILES=()
MISSING=()
for x in "${IMAGES[@]}"; do
  if [ -d "$x" ]; then
    found=0
    for f in "$x"/*.jpg "$x"/*.jpeg "$x"/*.JPG; do [ -f "$f" ] && { FILES+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); found=1; }; done
    [ $found = 1 ] || MISSING+=("$x (directory has no .jpg files)")
  elif [ -f "$x" ]; then
    FILES+=("$(cd "$(dirname "$x")" && pwd)/$(basename "$x")")
  else
    MISSING+=("$x")
  fi
done
if [ ${#MISSING[@]} -gt 0 ] || [ ${#FILES[@]} -eq 0 ]; then
  echo "run.sh: benchmark input missing:" >&2
  for m in "${MISSING[@]}"; do echo "  $m" >&2; done
  echo "The default inputs come from the shared corpus (../shared/corpus/photos next to the repo)." >&2
  echo "Point IMGMOD_CORPUS at a corpus, or pass images/directories as arguments (or BENCH_IMAGES)." >&2
  exit 2
fi

# ------------------------------------------------------------ packages
# tool to check -> Debian package that provides it
need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
want vipsthumbnail libvips-tools
pkg-config --exists vips 2>/dev/null || need_pkgs+=(libvips-dev)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need_pkgs+=(python3-pil)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need_pkgs+=(python3-numpy)
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need_pkgs+=(python3-matplotlib)  # bench/report.py
[ -x /usr/bin/time ] || need_pkgs+=(time)
want jpegtran libjpeg-turbo-progs
want node nodejs
want npm npm
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ $INSTALL = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    # one at a time, so one package that will not install does not block the rest
    for p in "${need_pkgs[@]}"; do
      apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 || say "apt-get could not install $p"
    done
  else
    say "missing packages not installed (need root and apt-get, or --no-install given): ${need_pkgs[*]}"
  fi
fi
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is required (Debian package 'time')" >&2; exit 2; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

command -v vipsthumbnail >/dev/null || na vipsthumbnail "vipsthumbnail not installed (Debian libvips-tools)"
command -v jpegtran >/dev/null || na jpegtran "jpegtran not installed (Debian libjpeg-turbo-progs)"
"$PY" -c 'import PIL' 2>/dev/null || na pillow "Pillow not importable by $PY (Debian python3-pil)"

# sharp, into bench/node_modules (idempotent: skipped when it already loads)
if ! command -v node >/dev/null; then
  na sharp "node not installed (Debian nodejs)"
elif ! (cd "$BENCH" && node -e "require('./node_modules/sharp')" >/dev/null 2>&1); then
  if [ $INSTALL = 1 ] && command -v npm >/dev/null; then
    say "npm install sharp into bench/node_modules"
    if ! out=$(cd "$BENCH" && npm install --no-package-lock --no-audit --no-fund --loglevel=error 2>&1); then
      na sharp "npm install failed: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
    elif ! (cd "$BENCH" && node -e "require('./node_modules/sharp')" >/dev/null 2>&1); then
      na sharp "installed but does not load: $(cd "$BENCH" && node -e "require('./node_modules/sharp')" 2>&1 | grep -m1 -i error)"
    fi
  else
    na sharp "not installed in bench/node_modules (npm missing or --no-install)"
  fi
fi

# -------------------------------------------------------------- build
TREE=$BENCH/build/tree
rm -rf "$TREE" && mkdir -p "$TREE"
HEAD_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
if [ -n "$REV" ]; then
  if ! git -C "$ROOT" archive "$REV" src/core tools | tar -x -C "$TREE"; then
    echo "run.sh: cannot export src/core and tools at revision $REV" >&2; exit 2
  fi
  DESC="revision $(git -C "$ROOT" rev-parse --short "$REV")"
else
  (cd "$ROOT" && tar -c --exclude='*.o' --exclude='*.bc' src/core tools) | tar -x -C "$TREE"
  dirty=$(git -C "$ROOT" status --porcelain -- src/core tools 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
  DESC="working tree at $HEAD_REV${dirty:+ with uncommitted changes in: $dirty}"
fi
say "building imgmod-cli from a snapshot ($DESC) with tools/Makefile"
if ! make -s -C "$TREE/tools" >&2; then
  echo "run.sh: imgmod-cli does not build; nothing to benchmark" >&2
  exit 1
fi
CLI=$TREE/build/tools/imgmod-cli
say "building bench helpers (make -C bench)"
if pkg-config --exists vips 2>/dev/null; then
  make -s -C "$BENCH" build/vips_multi >&2 || na vips_multi "bench/peers/vips_multi.c did not build"
else
  na vips_multi "libvips-dev not installed (pkg-config vips fails)"
fi
STAGE_ARGS=()
if [ $STAGES = 1 ]; then
  rm -f "$BENCH/build/imgmod_stages"   # always against this run's snapshot
  make -s -C "$BENCH" IMGCORE_DIR="$TREE/src/core" build/imgmod_stages >&2 ||
    { say "stage breakdown does not build; skipped"; STAGE_ARGS=(--no-stages); }
else
  STAGE_ARGS=(--no-stages)
fi

# ---------------------------------------------------------------- run
say "running: N=$N, ${#FILES[@]} image(s); PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}"
exec "$PY" "$BENCH/harness.py" --n "$N" --cli "$CLI" --build "$BENCH/build" --imgmod "$DESC" \
  --results "$BENCH/results" "${NA[@]}" "${STAGE_ARGS[@]}" "${FILES[@]}"
