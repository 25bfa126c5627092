#!/usr/bin/env node
// The page of `picopic-lambda serve` in a real browser: the system's Chromium (Debian's
// `chromium`), driven by puppeteer-core, uploads a PNG, a JPEG, a text file and a file over the
// size limit, twice: from the page as `serve` serves it, and from a second origin (a static
// server on another port, with PICOPIC_ALLOWED_ORIGIN set to it), as the deployed frontend
// is. The results are decoded here (pngjs, jpeg-js) and compared with the originals' pixels.
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
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
  finish();
}

main();
