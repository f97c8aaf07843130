# imgmod — PostgreSQL extension (PGXS).
#
#   make && make install       build and install into the PostgreSQL found by pg_config
#                              (make also builds origin/imgmod-origin, the CDN origin)
#   make imgio                 build/libimgio.a, the I/O library for programs outside PostgreSQL
#   make unit                  unit tests (image core, I/O library, origin) under AddressSanitizer + UBSan
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
IMGIO_DIR = src/io
include $(IMGIO_DIR)/io.mk

OBJS = \
	src/module.o src/settings.o src/errors.o src/shared_state.o src/audit.o \
	src/background_tx.o src/core_memory.o src/io_hooks.o src/hashing.o src/storage.o src/stats.o src/cache_redis.o \
	src/upload.o src/idempotency.o src/edit.o src/edit_ops.o src/inspect.o src/fetch.o \
	bgworker/worker.o bgworker/job_queue.o bgworker/render_job.o bgworker/purge_job.o bgworker/publisher.o bgworker/retry_request.o bgworker/edge_purger.o bgworker/render_threads.o \
	$(patsubst %.c,$(IMGCORE_DIR)/%.o,$(IMGCORE_SRCS)) \
	$(patsubst %.c,$(IMGIO_DIR)/%.o,$(IMGIO_SRCS))

# PostgreSQL's own headers are included as system headers so that
# -Wextra judges imgmod's code, not the server's inline functions.
PG_CPPFLAGS = -Isrc -I$(IMGCORE_DIR) $(IMGCORE_CFLAGS) -I$(IMGIO_DIR) $(IMGIO_CFLAGS) $(shell pkg-config --cflags rdkafka) -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CFLAGS = -Wall -Wextra -Werror
SHLIB_LINK = $(IMGCORE_LIBS) $(IMGIO_LIBS) $(shell pkg-config --libs rdkafka) -lpthread

REGRESS = upload inspect rejections presets render versions settings claims privileges idempotency edit cdn
REGRESS_OPTS = --use-existing
override CONTRIB_TESTDB = imgmod_regress

IMGIO_ARCHIVE = build/libimgio.a
IMGIO_ARCHIVE_OBJS = $(patsubst %.c,build/imgio/%.o,$(IMGIO_SRCS))
EXTRA_CLEAN = $(IMGIO_ARCHIVE) build/imgio

# JIT inlining of imgmod's own code brings nothing; skip the bitcode build.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild everything when a header changes
# (a stale object with an old shared-memory layout is a silent corruption).
$(OBJS): $(wildcard src/*.h bgworker/*.h $(IMGCORE_DIR)/*.h $(IMGIO_DIR)/*.h)

# The I/O library as a static archive for programs outside PostgreSQL (the
# CDN origin links it with $(IMGIO_LIBS)): the same sources as the objects
# in imgmod.so, built without any server flag, so nothing of PostgreSQL can
# creep in unnoticed.
.PHONY: imgio
all: $(IMGIO_ARCHIVE)
imgio: $(IMGIO_ARCHIVE)

$(IMGIO_ARCHIVE): $(IMGIO_ARCHIVE_OBJS)
	$(AR) rcs $@ $^

build/imgio/%.o: $(IMGIO_DIR)/%.c $(wildcard $(IMGIO_DIR)/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fPIC -Wall -Wextra -Werror $(IMGIO_CFLAGS) -c -o $@ $<

# The CDN origin daemon (origin/), a program of its own linking the I/O
# library; built with the extension.
all: origin/imgmod-origin
.PHONY: origin/imgmod-origin
origin/imgmod-origin:
	$(MAKE) -C origin

clean: clean-origin
.PHONY: clean-origin
clean-origin:
	$(MAKE) -C origin clean

.PHONY: unit valgrind unit-corpus
unit:
	$(MAKE) -C test/unit check
	$(MAKE) -C origin check

unit-corpus:
	$(MAKE) -C test/unit corpus

valgrind:
	$(MAKE) -C test/unit valgrind
