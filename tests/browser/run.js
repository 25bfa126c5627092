#!/usr/bin/env node
// The page of `picopic-lambda serve` in a real browser: the system's Chromium (Debian's
// `chromium`), driven by puppeteer-core, uploads a PNG, a JPEG, a text file and a file over the
// size limit, twice: from the page as `serve` serves it, and from a second origin (a static
// server on another port, with PICOPIC_ALLOWED_ORIGIN set to it), as the deployed frontend
// is. The results are decoded here (pngjs, jpeg-js) and compared with the originals' pixels.
// Then lossy results in each output format, asked for through the API, are drawn by Chromium
// beside their originals, which carry colour profiles and orientation.
//
//   cargo build -p picopic-lambda && (cd tests/browser && npm ci) && node tests/browser/run.js
//
// Environment: PICOPIC_LAMBDA_BIN (default target/debug/picopic-lambda), CHROMIUM (default
// /usr/bin/chromium). Without either, or without the node modules, the test fails: it never
// skips. Screenshots go to target/browser/. Last line: `browser: N passed, N failed`.
"use strict";

const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const root = path.resolve(__dirname, "../..");
const binary = process.env.PICOPIC_LAMBDA_BIN || path.join(root, "target/debug/picopic-lambda");
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = path.join(root, "target/browser");
/** PICOPIC_MAX_UPLOAD_BYTES for the runs: photo_coffee.png (466,706 bytes) is over it. */
const LIMIT = 300000;
const WAIT_MS = 120000;

const fixtures = {
  png: path.join(root, "corpus/tiny/rgba8_stored_should_shrink.png"),
  jpeg: path.join(root, "corpus/dev/photo_rocket_icc_orient6.jpg"),
  optimal: path.join(root, "corpus/dev/tiny_flatfield.jpg"),
  big: path.join(root, "corpus/dev/photo_coffee.png"),
};

let passed = 0;
let failed = 0;
const children = [];

function report(name, error) {
  if (error) {
    failed += 1;
    console.log(`not ok - ${name}\n  ${String(error.stack || error).replace(/\n/g, "\n  ")}`);
  } else {
    passed += 1;
    console.log(`ok - ${name}`);
  }
}

async function check(name, body) {
  try {
    await body();
    report(name);
  } catch (error) {
    report(name, error);
  }
}

function finish() {
  for (const child of children) {
    child.kill("SIGTERM");
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

/** `serve` on an ephemeral port; resolves once it printed its S3 and API lines. */
function startServe(env, dataDir) {
  const child = spawn(binary, ["serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir], {
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const log = [];
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`serve printed no API line:\n${log.join("")}`)), 30000);
    child.stdout.on("data", (chunk) => {
      log.push(chunk.toString());
      text += chunk;
      const api = /^API:\s+(\S+)/m.exec(text);
      const s3 = /^S3:\s+(\S+)/m.exec(text);
      if (api && s3) {
        clearTimeout(timer);
        resolve({ child, api: api[1], s3: s3[1], log });
      }
    });
    child.stderr.on("data", (chunk) => log.push(chunk.toString()));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${log.join("")}`));
    });
  });
}

/** The page's three files from lambda/page/, on another port: a second origin. */
function startStatic() {
  const dir = path.join(root, "lambda/page");
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
  const server = http.createServer((request, response) => {
    const wanted = new URL(request.url, "http://localhost").pathname;
    const file = wanted === "/" ? "index.html" : wanted.slice(1);
    if (!/^[a-z]+\.(html|js|css)$/.test(file)) {
      response.writeHead(404).end();
      return;
    }
    fs.readFile(path.join(dir, file), (error, data) => {
      if (error) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { "content-type": `${types[path.extname(file)]}; charset=utf-8` });
      response.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** RGBA pixels of a PNG or JPEG, decoded by pure-JS decoders (not the engine's). */
function pixels(bytes, { PNG, jpeg }) {
  if (bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) {
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, data: Buffer.from(png.data) };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    return { width: image.width, height: image.height, data: Buffer.from(image.data) };
  }
  throw new Error("neither PNG nor JPEG");
}

/** Waits until `count` results are listed and each is done or failed. */
async function settled(page, count) {
  await page.waitForFunction(
    (n) => {
      const items = [...document.querySelectorAll("#results > li")];
      return items.length === n && items.every((li) => ["done", "error"].includes(li.dataset.state));
    },
    { timeout: WAIT_MS },
    count,
  );
  return page.$$eval("#results > li", (items) =>
    items.map((li) => ({
      state: li.dataset.state,
      name: li.querySelector(".name").textContent,
      message: li.querySelector(".message").textContent,
      href: li.querySelector(".download").getAttribute("href"),
      download: li.querySelector(".download").getAttribute("download"),
      bytesIn: Number(li.dataset.bytesIn),
      bytesOut: Number(li.dataset.bytesOut),
      sourceUrl: li.dataset.sourceUrl,
      retry: !li.querySelector(".retry").hidden,
    })),
  );
}

/** Clicks the download link of result `index` and reads the file the browser saved. */
async function clickDownload(page, dir, index, name, size) {
  await page.click(`#results > li:nth-child(${index + 1}) .download`);
  const file = path.join(dir, name);
  const deadline = Date.now() + WAIT_MS;
  while (!(fs.existsSync(file) && fs.statSync(file).size === size)) {
    if (Date.now() > deadline) {
      throw new Error(`no download ${name} of ${size} bytes in ${dir}: ${fs.readdirSync(dir)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return fs.readFileSync(file);
}

async function scenario(browser, modules, mode) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `picopic-browser-${mode}-`));
  const text = path.join(tmp, "notes.txt");
  fs.writeFileSync(text, "just some text, not an image\n");
  const env = { PICOPIC_MAX_UPLOAD_BYTES: String(LIMIT), PICOPIC_DOWNLOAD_URL_TTL_SECS: "120" };
  let server = null;
  let origin = null;
  if (mode === "cross-origin") {
    server = await startStatic();
    origin = `http://127.0.0.1:${server.address().port}`;
    env.PICOPIC_ALLOWED_ORIGIN = origin;
  }
  const serve = await startServe(env, path.join(tmp, "s3"));
  const url = origin ? `${origin}/?api=${encodeURIComponent(serve.api)}` : `${serve.api}/`;
  const downloads = path.join(tmp, "downloads");
  fs.mkdirSync(downloads);
  const context = await browser.createBrowserContext({
    downloadBehavior: { policy: "allow", downloadPath: downloads },
  });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  const toStore = (r) => r.url.startsWith(`${serve.s3}/`);
  try {
    await page.setViewport({ width: 1000, height: 800 });
    await page.goto(url, { waitUntil: "load" });

    await check(`${mode}: the page shows the size limit from the API`, async () => {
      await page.waitForFunction(() => /^Up to/.test(document.getElementById("limit").textContent), {
        timeout: WAIT_MS,
      });
      const hint = await page.$eval("#limit", (e) => e.textContent);
      assert.equal(hint, "Up to 300,000 bytes each.");
    });

    await check(`${mode}: the file picker is reached with the keyboard`, async () => {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => document.activeElement?.id);
      assert.equal(focused, "files");
      const label = await page.$eval("#files", (e) => e.closest("label")?.textContent.trim());
      assert.match(label, /Drop images here/);
    });

    const input = await page.$("#files");
    await input.uploadFile(fixtures.png, fixtures.jpeg, text, fixtures.optimal);
    const items = await settled(page, 4);

    for (const [index, kind, saved] of [
      [0, "png", true],
      [1, "jpeg", true],
      [3, "optimal", false],
    ]) {
      const file = fixtures[kind];
      const name = path.basename(file);
      const outcome = saved ? "smaller" : "unchanged (already optimal)";
      await check(`${mode}: ${name} comes back ${outcome} and pixel-exact`, async () => {
        const item = items[index];
        assert.equal(item.state, "done", item.message);
        const original = fs.readFileSync(file);
        const saveAs = name.replace(/\.(\w+)$/, (_, ext) => `.min.${ext}`);
        assert.equal(item.download, saveAs);
        const downloaded = await clickDownload(page, downloads, index, saveAs, item.bytesOut);
        assert.equal(item.bytesIn, original.length);
        if (saved) {
          assert.ok(downloaded.length < original.length, `${downloaded.length} >= ${original.length}`);
          assert.match(item.message, /% smaller\.$/);
        } else {
          assert.ok(downloaded.equals(original), "an unchanged result differs");
          assert.match(item.message, /already as small as picopic makes it/);
        }
        // The store's link, fetched here, serves the same bytes.
        const stored = await fetch(item.sourceUrl);
        assert.equal(stored.status, 200);
        assert.ok(Buffer.from(await stored.arrayBuffer()).equals(downloaded), "the store has other bytes");
        const want = pixels(original, modules);
        const got = pixels(downloaded, modules);
        assert.deepEqual([got.width, got.height], [want.width, want.height]);
        assert.ok(got.data.equals(want.data), "pixels differ");
      });
    }

    await check(`${mode}: a text file is refused as not an image`, async () => {
      const item = items[2];
      assert.equal(item.state, "error");
      assert.match(item.message, /^Not an image/);
      assert.equal(item.retry, false, "a retry is offered");
    });

    const posts = requests.filter((r) => r.method === "POST" && toStore(r)).length;
    await check(`${mode}: each of the four files was posted to the store once`, async () => {
      assert.equal(posts, 4);
    });

    const before = requests.length;
    await input.uploadFile(fixtures.big);
    const all = await settled(page, 5);
    await check(`${mode}: a file over the limit is refused before any upload`, async () => {
      const item = all[4];
      assert.equal(item.state, "error");
      assert.match(item.message, /^Too large: 466,706 bytes, the limit is 300,000 bytes\. Not uploaded\./);
      const after = requests.slice(before);
      assert.deepEqual(
        after.filter((r) => toStore(r) || r.url.includes("/upload-url")),
        [],
        "requests made for it",
      );
    });

    await check(`${mode}: the status line sums up`, async () => {
      const status = await page.$eval("#status", (e) => e.textContent);
      assert.equal(status, "All done: 3 ready, 2 failed.");
    });

    await check(`${mode}: no script errors`, async () => {
      assert.deepEqual(errors, []);
    });

    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `screenshot-${mode}.png`), fullPage: true });

    await check(`${mode}: nothing overflows at 375 px`, async () => {
      await page.setViewport({ width: 375, height: 800 });
      const widths = await page.evaluate(() => [
        document.documentElement.scrollWidth,
        Math.max(...[...document.querySelectorAll("body *")].map((e) => e.getBoundingClientRect().right)),
      ]);
      assert.ok(widths[0] <= 375 && widths[1] <= 375, `content is ${widths} px wide`);
      await page.screenshot({ path: path.join(shots, `screenshot-${mode}-375.png`), fullPage: true });
    });
  } finally {
    await context.close();
    serve.child.removeAllListeners("exit");
    serve.child.kill("SIGTERM");
    if (server) {
      server.close();
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** CRC-32 of PNG chunks. */
function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k += 1) {
      crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
  }
  return ~crc >>> 0;
}

/** `png` without its colour chunks, and with `extra` chunks ([type, data]) after IHDR. */
function recoloured(png, extra) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const parts = [png.subarray(0, 8)];
  for (let at = 8; at < png.length; ) {
    const end = at + 12 + png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    if (!["iCCP", "sRGB", "gAMA", "cHRM", "cICP"].includes(type)) {
      parts.push(png.subarray(at, end));
    }
    if (type === "IHDR") {
      parts.push(...extra.map(([t, data]) => chunk(t, data)));
    }
    at = end;
  }
  return Buffer.concat(parts);
}

/** Uploads `bytes` through the API's presigned POST; resolves to the key. */
async function upload(api, bytes) {
  const answer = await fetch(`${api}/upload-url`);
  assert.equal(answer.status, 200);
  const { url, fields } = await answer.json();
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    form.append(name, value);
  }
  form.append("file", new Blob([bytes]));
  const posted = await fetch(url, { method: "POST", body: form });
  assert.equal(posted.status, 204, await posted.text());
  return fields.key;
}

/**
 * How Chromium shows `b` against `a` (both image files): their sizes once drawn (EXIF
 * orientation applied), the difference of each channel's mean over the picture, in levels,
 * and the mean absolute difference of the channels.
 */
async function shownDifference(page, a, b) {
  const url = (bytes) => `data:application/octet-stream;base64,${bytes.toString("base64")}`;
  return page.evaluate(
    async (urlA, urlB) => {
      const drawn = async (src) => {
        const image = new Image();
        image.src = src;
        await image.decode();
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        return context.getImageData(0, 0, canvas.width, canvas.height);
      };
      const [pa, pb] = [await drawn(urlA), await drawn(urlB)];
      if (pa.width !== pb.width || pa.height !== pb.height) {
        return { sizes: [pa.width, pa.height, pb.width, pb.height] };
      }
      const sums = [0, 0, 0];
      let absolute = 0;
      for (let k = 0; k < pa.data.length; k += 4) {
        for (let c = 0; c < 3; c += 1) {
          sums[c] += pb.data[k + c] - pa.data[k + c];
          absolute += Math.abs(pb.data[k + c] - pa.data[k + c]);
        }
      }
      const count = pa.data.length / 4;
      return {
        sizes: [pa.width, pa.height, pb.width, pb.height],
        means: sums.map((sum) => sum / count),
        absolute: absolute / count / 3,
      };
    },
    url(a),
    url(b),
  );
}

/**
 * Chromium, a colour-managed viewer, shows each lossy output format as it shows the
 * original: a PNG whose colour is named only by gAMA and cHRM (the cat photo with gamma
 * 1/0.7 and a wide-gamut green) and a JPEG with an ICC profile and EXIF orientation 6.
 */
async function colour(browser) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "picopic-browser-colour-"));
  const serve = await startServe({ PICOPIC_MAX_UPLOAD_BYTES: "1000000" }, path.join(tmp, "s3"));
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const u32 = (...values) => {
    const data = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => data.writeUInt32BE(v, 4 * i));
    return data;
  };
  const cat = fs.readFileSync(path.join(root, "corpus/holdout/photo_chelsea_cat.png"));
  const inputs = {
    "a gAMA and cHRM PNG": recoloured(cat, [
      ["gAMA", u32(70000)],
      ["cHRM", u32(31270, 32900, 68000, 32000, 21000, 71000, 15000, 6000)],
    ]),
    "an ICC-tagged, rotated JPEG": fs.readFileSync(fixtures.jpeg),
  };
  try {
    await check("colour: the check sees a PNG shown without its gAMA and cHRM", async () => {
      const plain = recoloured(cat, []);
      const shown = await shownDifference(page, inputs["a gAMA and cHRM PNG"], plain);
      assert.ok(Math.max(...shown.means.map(Math.abs)) > 10, JSON.stringify(shown));
    });
    for (const [name, bytes] of Object.entries(inputs)) {
      const key = await upload(serve.api, bytes);
      for (const format of ["jpeg", "webp", "avif", "png"]) {
        await check(`colour: ${name} asked as ${format} is shown as the original`, async () => {
          const asked = `${serve.api}/download-url/${key}?format=${format}&quality=high`;
          const answer = await fetch(asked);
          const body = await answer.json();
          assert.equal(answer.status, 200, JSON.stringify(body));
          const result = Buffer.from(await (await fetch(body.url)).arrayBuffer());
          assert.ok(result.length < bytes.length, `${result.length} >= ${bytes.length}`);
          const shown = await shownDifference(page, bytes, result);
          const [wa, ha, wb, hb] = shown.sizes;
          assert.deepEqual([wb, hb], [wa, ha]);
          const means = shown.means.map((m) => m.toFixed(2)).join(", ");
          const summary = `${body.format}, ${result.length} bytes: channel means moved ${means}, mean absolute difference ${shown.absolute.toFixed(2)}`;
          console.log(`  # ${summary}`);
          // A lossy result in the format asked; a palette PNG may lose to the lossless one.
          if (format !== "png") {
            assert.equal(body.format, format);
            assert.ok(body.ssimulacra2 >= 80, JSON.stringify(body));
          }
          assert.ok(shown.means.every((m) => Math.abs(m) <= 1.5), summary);
          assert.ok(shown.absolute <= 5, summary);
        });
      }
    }
  } finally {
    await context.close();
    serve.child.removeAllListeners("exit");
    serve.child.kill("SIGTERM");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main() {
  const watchdog = setTimeout(() => {
    report("the whole run within 10 minutes", new Error("timed out"));
    finish();
  }, 600000);
  let modules;
  try {
    modules = {
      puppeteer: require("puppeteer-core"),
      PNG: require("pngjs").PNG,
      jpeg: require("jpeg-js"),
    };
  } catch (error) {
    report("node modules are installed (npm ci in tests/browser)", error);
    return finish();
  }
  for (const [what, file] of [
    ["Chromium (apt-get install chromium, or set CHROMIUM)", chromium],
    ["picopic-lambda (cargo build -p picopic-lambda)", binary],
  ]) {
    if (!fs.existsSync(file)) {
      report(`${what} is at ${file}`, new Error("missing"));
      return finish();
    }
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "picopic-chromium-"));
  let browser;
  try {
    browser = await modules.puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: profile,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
      ],
    });
  } catch (error) {
    report(`Chromium at ${chromium} starts`, error);
    return finish();
  }
  try {
    for (const mode of ["same-origin", "cross-origin"]) {
      try {
        await scenario(browser, modules, mode);
      } catch (error) {
        report(`${mode}: the run completes`, error);
      }
    }
    try {
      await colour(browser);
    } catch (error) {
      report("colour: the run completes", error);
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
  finish();
}

main();
