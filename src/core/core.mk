# The image core's sources and libraries, shared by the extension's Makefile,
# the unit tests, the fuzz targets and the benchmarks.  Include it with
# IMGCORE_DIR set to the path of src/core relative to the including Makefile.
IMGCORE_DIR ?= src/core

IMGCORE_SRCS = \
	alloc.c parallel.c status.c sniff.c probe.c metadata.c colour.c load.c \
	orient.c resize.c encode.c jpegxform.c jpegcopy.c normalise.c edit.c render.c \
	codecs/jpeg.c codecs/png.c codecs/gif.c codecs/webp.c \
	codecs/heif.c codecs/tiff.c codecs/bmp.c

IMGCORE_PKGS = libjpeg libturbojpeg libpng libwebp libwebpdemux libheif \
	libtiff-4 libexif lcms2 zlib

IMGCORE_CFLAGS := $(shell pkg-config --cflags $(IMGCORE_PKGS)) -I$(IMGCORE_DIR)
IMGCORE_LIBS := $(shell pkg-config --libs $(IMGCORE_PKGS)) -lgif -lm -pthread

IMGCORE_FILES = $(addprefix $(IMGCORE_DIR)/,$(IMGCORE_SRCS))
