// sharp peer for the 1024-px task (npm `sharp`, bundles its own libvips).
//
//   node sharp_thumb.js IN OUT WIDTH
//
// EXIF auto-orient, fit to WIDTH wide without enlarging, JPEG quality 80.
// sharp writes no metadata unless asked to, so the output is stripped.
// The module is looked up in bench/node_modules (installed by run.sh).
'use strict';
const path = require('path');
const sharp = require(path.join(__dirname, '..', 'node_modules', 'sharp'));

const [src, dst, width] = process.argv.slice(2);
if (!src || !dst || !width) {
  console.error('usage: node sharp_thumb.js IN OUT WIDTH');
  process.exit(2);
}
sharp(src)
  .rotate()
  .resize({ width: Number(width), withoutEnlargement: true })
  .jpeg({ quality: 80 })
  .toFile(dst)
  .catch((e) => { console.error(e.message || e); process.exit(1); });
