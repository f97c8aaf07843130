#!/usr/bin/python3
"""PSNR of downscaled JPEGs against a high-quality reference.

    psnr.py SOURCE OUTPUT [OUTPUT ...]

For each OUTPUT (a JPEG made from SOURCE by some resizer) the reference is
SOURCE decoded at full resolution (no draft/DCT scaling), EXIF orientation
applied, converted to RGB and resized with Pillow's LANCZOS filter to exactly
the OUTPUT's width x height.  PSNR is over all R, G and B samples:

    PSNR = 10 * log10(255^2 / MSE)

The source is decoded once; one reference is made per distinct output size.
Prints one JSON object per OUTPUT on stdout:
    {"path", "width", "height", "bytes", "psnr", "method"}
where method is "numpy" or "python" (plain-Python fallback when numpy is not
installed; same result, slower).  Needs Pillow (Debian python3-pil).

This is a sanity check of resampling quality, not a perceptual metric, and it
favours Lanczos-style resamplers (the reference is one).
"""
import json
import math
import os
import sys

from PIL import Image, ImageOps

try:
    import numpy
except ImportError:  # Debian python3-numpy missing: fall back to plain Python
    numpy = None


def load_rgb(path, full=True):
    img = Image.open(path)
    if full:
        img.load()
    img = ImageOps.exif_transpose(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def mse(a, b):
    """Mean squared error of two same-sized RGB images."""
    if numpy is not None:
        x = numpy.asarray(a, dtype=numpy.int32)
        y = numpy.asarray(b, dtype=numpy.int32)
        d = x - y
        return float((d * d).mean()), "numpy"
    xa = a.tobytes()
    xb = b.tobytes()
    total = 0
    for p, q in zip(xa, xb):
        d = p - q
        total += d * d
    return total / len(xa), "python"


def psnr_from_mse(m):
    if m == 0:
        return float("inf")
    return 10.0 * math.log10(255.0 * 255.0 / m)


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: psnr.py SOURCE OUTPUT [OUTPUT ...]")
    source = load_rgb(argv[1])
    references = {}
    for out_path in argv[2:]:
        out = load_rgb(out_path)
        size = out.size
        if size not in references:
            references[size] = source.resize(size, Image.LANCZOS)
        m, method = mse(references[size], out)
        print(json.dumps({
            "path": out_path,
            "width": size[0],
            "height": size[1],
            "bytes": os.path.getsize(out_path),
            "psnr": round(psnr_from_mse(m), 3),
            "method": method,
        }), flush=True)


if __name__ == "__main__":
    main(sys.argv)
