#!/usr/bin/env node
// The sharp (libvips) side of `lossy-report`: reference encoders and the independent decoder.
//
//   node sharp.js encode jpeg|avif QUALITY SRC OUT
//       jpeg: .rotate().jpeg({quality, mozjpeg: true}); avif: .rotate().avif({quality})
//       (default effort 4).
//   node sharp.js decode SRC PREFIX
//       Orientation applied, ICC profile applied, 8-bit sRGB, alpha flattened on black into
//       PREFIX.black.png and, when SRC has alpha, on white into PREFIX.white.png.
//
// Each command prints one JSON line: {"bytes": N} for encode, {"width", "height", "alpha"}
// for decode.
//
// Finding sharp: $SHARP_DIR (a folder where `npm install sharp` ran, or the sharp package
// itself), else a `node_modules` next to this script (`cd benches/scripts && npm install`),
// else Node's usual lookup.
'use strict';

const fs = require('fs');
const path = require('path');

function loadSharp() {
  const candidates = [];
  if (process.env.SHARP_DIR) {
    candidates.push(path.resolve(process.env.SHARP_DIR, 'node_modules', 'sharp'));
    candidates.push(path.resolve(process.env.SHARP_DIR));
  }
  candidates.push(path.join(__dirname, 'node_modules', 'sharp'));
  candidates.push('sharp');
  for (const candidate of candidates) {
    try {
      return require(candidate);
    } catch (_) {
      // try the next place
    }
  }
  fail('sharp not found: set SHARP_DIR to a folder where `npm install sharp` ran, ' +
    'or run `npm install` in benches/scripts');
}

function fail(message) {
  process.stderr.write(`sharp.js: ${message}\n`);
  process.exit(2);
}

function quality(text) {
  const q = Number(text);
  if (!Number.isInteger(q) || q < 1 || q > 100) {
    fail(`quality ${JSON.stringify(text)} is not an integer in 1..=100`);
  }
  return q;
}

async function encode(sharp, format, q, src, out) {
  const image = sharp(src).rotate();
  if (format === 'jpeg') {
    image.jpeg({ quality: q, mozjpeg: true });
  } else if (format === 'avif') {
    image.avif({ quality: q });
  } else {
    fail(`unknown format ${JSON.stringify(format)} (jpeg or avif)`);
  }
  const info = await image.toFile(out);
  return info.size;
}

async function flattened(sharp, src, background, out) {
  return sharp(src)
    .rotate()
    .toColorspace('srgb')
    .flatten({ background })
    .png({ compressionLevel: 1 })
    .toFile(out);
}

async function decode(sharp, src, prefix) {
  const meta = await sharp(src).metadata();
  const alpha = Boolean(meta.hasAlpha);
  const info = await flattened(sharp, src, '#000000', `${prefix}.black.png`);
  const white = `${prefix}.white.png`;
  if (alpha) {
    await flattened(sharp, src, '#ffffff', white);
  } else if (fs.existsSync(white)) {
    fs.unlinkSync(white);
  }
  return { width: info.width, height: info.height, alpha };
}

async function main(argv) {
  const [command, ...rest] = argv;
  const sharp = loadSharp();
  if (command === 'encode' && rest.length === 4) {
    const [format, q, src, out] = rest;
    return { bytes: await encode(sharp, format, quality(q), src, out) };
  }
  if (command === 'decode' && rest.length === 2) {
    return decode(sharp, rest[0], rest[1]);
  }
  return fail('usage: sharp.js encode jpeg|avif QUALITY SRC OUT | decode SRC PREFIX');
}

module.exports = { loadSharp };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error) => fail(error.message),
  );
}
