#!/usr/bin/env node
// How far a score on the engine's sample (see engine/src/lossy/sample.rs: about 16 tiles of
// 256x256 spread evenly, each encoded on its own, scored side by side) is from the whole
// image's, for sharp's mozjpeg or libwebp:
//
//   node sample_offset.js jpeg|webp FILE...
//
// Prints, per file and quality, the whole image's and the sample's SSIMULACRA2 (by the
// `ssimulacra2_rs` CLI) and the sample's lead. Scratch files go to a temporary folder.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadSharp } = require('./sharp.js');

const SIDE = 256;
const COUNT = 16;
const QUALITIES = [50, 65, 75, 85, 92];

// The engine's grid: columns as near square in the image's proportions as the count allows.
function grid(width, height) {
  const cols = Math.min(Math.max(Math.round(Math.sqrt(COUNT * width / height)), 1), COUNT,
    Math.floor(width / SIDE));
  const rows = Math.min(Math.max(Math.round(COUNT / cols), 1), Math.floor(height / SIDE));
  return [cols, rows];
}

function at(i, n, extent) {
  return n === 1 ? Math.floor((extent - SIDE) / 2) : Math.floor(i * (extent - SIDE) / (n - 1));
}

function score(a, b) {
  const out = execFileSync('ssimulacra2_rs', ['image', a, b]).toString().trim();
  return Number(out.split(/\s+/).pop());
}

// `source` (a file or a sharp input) encoded at `quality` and decoded again, as raw RGB.
async function roundTrip(sharp, source, format, quality) {
  const options = format === 'jpeg' ? { quality, mozjpeg: true } : { quality };
  const encoded = await sharp(source)[format](options).toBuffer();
  return sharp(encoded).removeAlpha().raw().toBuffer();
}

async function offsets(sharp, format, file, dir) {
  const { data, info } = await sharp(file).rotate().removeAlpha().raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: info };
  const [cols, rows] = grid(info.width, info.height);
  const tiles = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const left = at(c, cols, info.width);
      const top = at(r, rows, info.height);
      const input = await sharp(data, raw).extract({ left, top, width: SIDE, height: SIDE })
        .png().toBuffer();
      tiles.push({ input, left: c * SIDE, top: r * SIDE });
    }
  }
  const whole = path.join(dir, 'whole.png');
  const part = path.join(dir, 'sample.png');
  await sharp(data, raw).png({ compressionLevel: 1 }).toFile(whole);
  const canvas = {
    create: { width: cols * SIDE, height: rows * SIDE, channels: 3, background: 'black' },
  };
  await sharp(canvas).composite(tiles).png({ compressionLevel: 1 }).toFile(part);
  const tileRaw = { raw: { width: SIDE, height: SIDE, channels: 3 } };
  const decoded = path.join(dir, 'decoded.png');
  for (const quality of QUALITIES) {
    const wholeRaw = await roundTrip(sharp, whole, format, quality);
    await sharp(wholeRaw, raw).png({ compressionLevel: 1 }).toFile(decoded);
    const w = score(whole, decoded);
    const coded = [];
    for (const tile of tiles) {
      const input = await sharp(await roundTrip(sharp, tile.input, format, quality), tileRaw)
        .png().toBuffer();
      coded.push({ ...tile, input });
    }
    await sharp(canvas).composite(coded).png({ compressionLevel: 1 }).toFile(decoded);
    const s = score(part, decoded);
    console.log(`${path.basename(file)}\t${format}\t${cols}x${rows}\tq${quality}\twhole ${w.toFixed(2)}` +
      `\tsample ${s.toFixed(2)}\tlead ${(s - w).toFixed(2)}`);
  }
}

async function main([format, ...files]) {
  if (format !== 'jpeg' && format !== 'webp') {
    throw new Error('usage: sample_offset.js jpeg|webp FILE...');
  }
  const sharp = loadSharp();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sample-offset-'));
  try {
    for (const file of files) {
      await offsets(sharp, format, file, dir);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`sample_offset.js: ${error.message}\n`);
  process.exit(1);
});
