# imgio, the PostgreSQL-free I/O library (src/io/imgio.h): its sources and
# libraries, shared by the extension's Makefile, the unit tests and the
# static archive the origin links.  Include it with IMGIO_DIR set to the
# path of src/io relative to the including Makefile.
IMGIO_DIR ?= src/io

IMGIO_SRCS = hooks.c object_keys.c digest.c store.c store_local.c store_s3.c cache_redis.c edge_purge.c cpu_budget.c

IMGIO_PKGS = libcurl hiredis libcrypto

IMGIO_CFLAGS := $(shell pkg-config --cflags $(IMGIO_PKGS)) -I$(IMGIO_DIR)
IMGIO_LIBS := $(shell pkg-config --libs $(IMGIO_PKGS))

IMGIO_FILES = $(addprefix $(IMGIO_DIR)/,$(IMGIO_SRCS))
