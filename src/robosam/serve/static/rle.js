// COCO RLE (pycocotools' compressed string) to a mask, in plain JS.
"use strict";

// Run lengths from a compressed counts string (pycocotools rleFrString).
function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0, k = 0, more = 1, c = 0;
    while (more) {
      c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// {size: [h, w], counts} to a Uint8Array of h * w in row-major order (1 = inside).
function decodeRle(rle) {
  const [h, w] = rle.size;
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  const mask = new Uint8Array(h * w);
  let i = 0, value = 0;
  for (const run of counts) {
    if (value) {
      for (let j = i; j < i + run; j++) mask[(j % h) * w + Math.floor(j / h)] = 1;  // column-major runs
    }
    i += run;
    value = 1 - value;
  }
  return mask;
}
