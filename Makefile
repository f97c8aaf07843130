# imgmod — PostgreSQL extension (PGXS).
#
#   make && make install       build and install into the PostgreSQL found by pg_config
#   make unit                  image-core unit tests under AddressSanitizer + UBSan
#   make valgrind              the same tests under valgrind
#   make unit-corpus           the unit suites that need ../shared/corpus (fails without it)
#   scripts/test.sh            everything the CI runs (see README)

PG_CONFIG ?= pg_config

MODULE_big = imgmod
EXTENSION = imgmod
DATA = extension/imgmod--0.1.sql
PGFILEDESC = "imgmod - image upload, validation and rendering pipeline"

IMGCORE_DIR = src/core
include $(IMGCORE_DIR)/core.mk

OBJS = \
	src/module.o src/settings.o src/errors.o src/shared_state.o src/audit.o \
	src/background_tx.o src/core_memory.o src/hashing.o src/storage.o src/storage_local.o src/storage_s3.o src/stats.o src/cache_redis.o \
	src/upload.o src/idempotency.o src/inspect.o src/fetch.o \
	bgworker/worker.o bgworker/job_queue.o bgworker/render_job.o bgworker/purge_job.o bgworker/publisher.o bgworker/retry_request.o \
	$(patsubst %.c,$(IMGCORE_DIR)/%.o,$(IMGCORE_SRCS))

# PostgreSQL's own headers are included as system headers so that
# -Wextra judges imgmod's code, not the server's inline functions.
PG_CPPFLAGS = -Isrc -I$(IMGCORE_DIR) $(IMGCORE_CFLAGS) $(shell pkg-config --cflags libcurl hiredis rdkafka) -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CFLAGS = -Wall -Wextra -Werror
SHLIB_LINK = $(IMGCORE_LIBS) $(shell pkg-config --libs libcurl hiredis rdkafka) -lpthread

REGRESS = upload inspect rejections presets render versions settings claims privileges idempotency cdn
REGRESS_OPTS = --use-existing
override CONTRIB_TESTDB = imgmod_regress

# JIT inlining of imgmod's own code brings nothing; skip the bitcode build.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild everything when a header changes
# (a stale object with an old shared-memory layout is a silent corruption).
$(OBJS): $(wildcard src/*.h bgworker/*.h $(IMGCORE_DIR)/*.h)

.PHONY: unit valgrind unit-corpus
unit:
	$(MAKE) -C test/unit check

unit-corpus:
	$(MAKE) -C test/unit corpus

valgrind:
	$(MAKE) -C test/unit valgrind
