#!/usr/bin/python3
"""Pillow peer for the 1024-px task (Debian python3-pil).

    pillow_thumb.py IN OUT WIDTH

draft mode: the JPEG decoder is asked for the smallest DCT scale that still
covers WIDTH (libjpeg scale-on-load), then the EXIF orientation is applied,
then Image.thumbnail() shrinks to WIDTH wide (Pillow's default filter and
reducing_gap).  Saved at quality 80 with no EXIF, ICC or comment.
"""
import sys

from PIL import Image, ImageOps

ROTATED = {5, 6, 7, 8}  # stored sideways: displayed width is the stored height


def main(src, dst, width):
    img = Image.open(src)
    stored_w, stored_h = img.size
    orientation = img.getexif().get(0x0112, 1)
    if orientation in ROTATED:
        want = (width * stored_w // stored_h, width)
    else:
        want = (width, width * stored_h // stored_w)
    # draft() must come before anything that loads the pixels
    img.draft("RGB", want)
    img = ImageOps.exif_transpose(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    img.thumbnail((width, 1 << 20))
    # comment=b"" stops Pillow 9.4+ from carrying the source's COM segment over
    img.save(dst, "JPEG", quality=80, comment=b"")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: pillow_thumb.py IN OUT WIDTH")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
