// picopic's page: every file goes through the deployed frontend's flow, one at a time:
// GET /upload-url, POST the presigned form to the store (204), GET /download-url/{key} (the
// API optimizes), then fetch the result from the store into a download link (the store's
// links live seconds, so the page keeps the bytes). The API is this page's origin, or
// `?api=https://host` for a page served elsewhere (that origin must be allowed by the API
// and the store's CORS).
"use strict";

/** An error with a message for people, and whether trying again may help. */
class Failure extends Error {
  constructor(message, retry) {
    super(message);
    this.retry = retry;
  }
}

const $ = (id) => document.getElementById(id);
const input = $("files");
const drop = $("drop");
const statusLine = $("status");
const results = $("results");
const template = $("item");

const api = apiBase();
/** The size limit (the upload-url answer's `max_bytes`), fetched once. */
let limit = null;
const queue = [];
let running = false;

function apiBase() {
  const given = new URLSearchParams(location.search).get("api");
  if (!given) {
    return location.origin;
  }
  let url;
  try {
    url = new URL(given);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return null;
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

function bytes(n) {
  return `${n.toLocaleString("en")} bytes`;
}

function say(text) {
  statusLine.textContent = text;
}

/** `fetch` to the API; a failed answer becomes a `Failure` naming what it means. */
async function callApi(path) {
  let response;
  try {
    response = await fetch(api + path, { cache: "no-store" });
  } catch {
    throw new Failure(
      `Cannot reach the API at ${api} (it is down, or does not allow this page's origin).`,
      true,
    );
  }
  if (!response.ok) {
    throw await apiFailure(response);
  }
  try {
    return await response.json();
  } catch {
    throw new Failure(`The API answered ${response.status} with no JSON.`, true);
  }
}

async function apiFailure(response) {
  let message = "";
  try {
    message = (await response.json()).message || "";
  } catch {
    // Not JSON: the status says enough.
  }
  const detail = message ? ` (${message})` : "";
  const retryAfter = response.headers.get("retry-after");
  switch (response.status) {
    case 415:
      return new Failure(
        "Not an image: picopic takes PNG, JPEG, GIF, WebP and AVIF files.",
        false,
      );
    case 422:
      return new Failure(
        `Cannot optimize: the image is corrupt, or too large to process in memory${detail}.`,
        false,
      );
    case 413:
      return new Failure(`Too large for the service${detail}.`, false);
    case 404:
      return new Failure(
        "The upload is gone: it was stale (older than the service keeps uploads) or missing. Retry uploads it again.",
        true,
      );
    case 429:
    case 503: {
      const wait = /^\d+$/.test(retryAfter || "") ? `in ${retryAfter} s` : "in a few seconds";
      return new Failure(`Busy, retry ${wait}${detail}.`, true);
    }
    case 502:
      return new Failure("Storage is unavailable; retry.", true);
    case 504:
      return new Failure("The API took too long to answer; retry.", true);
    default:
      return new Failure(`Server error ${response.status}${detail}; retry.`, true);
  }
}

/** The size limit, from one upload-url answer; asked again after a failure. */
function maxBytes() {
  if (!limit) {
    limit = callApi("/upload-url").then(
      (grant) => {
        $("limit").textContent = `Up to ${bytes(grant.max_bytes)} each.`;
        return grant.max_bytes;
      },
      (e) => {
        limit = null;
        throw e;
      },
    );
  }
  return limit;
}

/** The S3 error code and message of an XML answer, if it has them. */
function s3Error(text) {
  try {
    const xml = new DOMParser().parseFromString(text, "application/xml");
    const code = xml.querySelector("Error > Code")?.textContent;
    const message = xml.querySelector("Error > Message")?.textContent;
    return [code, message].filter(Boolean).join(": ");
  } catch {
    return "";
  }
}

/** POSTs the presigned form with the file last, as S3 requires; resolves on 204. */
function upload(grant, file, onProgress) {
  const store = new URL(grant.url).origin;
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(grant.fields)) {
      form.append(name, value);
    }
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", grant.url);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        onProgress(e.loaded / e.total);
      }
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 204) {
        resolve();
        return;
      }
      const why = s3Error(xhr.responseText);
      const tooLarge = why.startsWith("EntityTooLarge");
      reject(
        new Failure(
          `The store refused the upload (${xhr.status}${why ? ` ${why}` : ""}).`,
          !tooLarge,
        ),
      );
    });
    xhr.addEventListener("error", () => {
      reject(
        new Failure(
          `Cannot reach the store at ${store} (it is down, or does not allow this page's origin).`,
          true,
        ),
      );
    });
    xhr.send(form);
  });
}

async function download(result) {
  let response;
  try {
    response = await fetch(result.url, { cache: "no-store" });
  } catch {
    throw new Failure(
      "Cannot download the result from the store (it is down, or does not allow this page's origin).",
      true,
    );
  }
  if (!response.ok) {
    throw new Failure(`The store refused the download (${response.status}); retry.`, true);
  }
  const blob = await response.blob();
  if (blob.size !== result.bytes_out) {
    throw new Failure(
      `The download has ${bytes(blob.size)}, not the ${bytes(result.bytes_out)} announced; retry.`,
      true,
    );
  }
  return blob;
}

const EXTENSIONS = { png: "png", apng: "png", jpeg: "jpg", gif: "gif", webp: "webp", avif: "avif" };

function resultName(file, format) {
  const stem = file.name.replace(/\.[^.]*$/, "") || "image";
  return `${stem}.min.${EXTENSIONS[format] || format}`;
}

function part(item, selector) {
  return item.li.querySelector(selector);
}

function show(item, state, message) {
  item.li.dataset.state = state;
  part(item, ".message").textContent = message;
}

function addItem(file) {
  const li = template.content.firstElementChild.cloneNode(true);
  const item = { file, li, link: null };
  part(item, ".name").textContent = `${file.name}, ${bytes(file.size)}`;
  part(item, ".progress").setAttribute("aria-label", `Progress of ${file.name}`);
  part(item, ".retry").setAttribute("aria-label", `Retry ${file.name}`);
  part(item, ".retry").addEventListener("click", () => {
    enqueue([item]);
  });
  results.append(li);
  return item;
}

function reset(item) {
  if (item.link) {
    URL.revokeObjectURL(item.link);
    item.link = null;
  }
  part(item, ".download").hidden = true;
  part(item, ".retry").hidden = true;
  part(item, ".thumb").hidden = true;
  part(item, ".progress").value = 0;
  show(item, "waiting", "Waiting.");
}

function finish(item, result, blob) {
  const progress = part(item, ".progress");
  progress.value = 100;
  const saved = result.bytes_in - result.bytes_out;
  const message =
    saved > 0
      ? `${bytes(result.bytes_in)} → ${bytes(result.bytes_out)}: ${((100 * saved) / result.bytes_in).toFixed(1)} % smaller.`
      : `${bytes(result.bytes_in)}: already as small as picopic makes it; the result is the original.`;
  show(item, "done", message);
  item.link = URL.createObjectURL(blob);
  const link = part(item, ".download");
  const name = resultName(item.file, result.format);
  link.href = item.link;
  link.download = name;
  link.textContent = `Download ${name}`;
  link.hidden = false;
  const thumb = part(item, ".thumb");
  thumb.src = item.link;
  thumb.hidden = false;
  Object.assign(item.li.dataset, {
    bytesIn: result.bytes_in,
    bytesOut: result.bytes_out,
    format: result.format,
    sourceUrl: result.url,
  });
  return `${item.file.name}: ${message}`;
}

function fail(item, error) {
  const failure =
    error instanceof Failure ? error : new Failure(`Unexpected error: ${error.message}`, true);
  if (!(error instanceof Failure)) {
    console.error(error);
  }
  part(item, ".progress").value = 0;
  show(item, "error", failure.message);
  part(item, ".retry").hidden = !failure.retry;
  return `${item.file.name}: ${failure.message}`;
}

async function run(item) {
  const { file } = item;
  try {
    if (file.size === 0) {
      throw new Failure("Empty file: nothing to optimize.", false);
    }
    const max = await maxBytes();
    if (file.size > max) {
      throw new Failure(
        `Too large: ${bytes(file.size)}, the limit is ${bytes(max)}. Not uploaded.`,
        false,
      );
    }
    show(item, "uploading", "Uploading…");
    const grant = await callApi("/upload-url");
    const progress = part(item, ".progress");
    await upload(grant, file, (fraction) => {
      progress.value = Math.round(fraction * 90);
    });
    show(item, "optimizing", "Optimizing…");
    progress.removeAttribute("value");
    const result = await callApi(`/download-url/${encodeURIComponent(grant.fields.key)}`);
    show(item, "downloading", "Downloading the result…");
    progress.value = 95;
    return finish(item, result, await download(result));
  } catch (error) {
    return fail(item, error);
  }
}

function enqueue(items) {
  for (const item of items) {
    reset(item);
    queue.push(item);
  }
  pump();
}

async function pump() {
  if (running) {
    return;
  }
  running = true;
  while (queue.length > 0) {
    // Each outcome is announced (the status line is a polite live region).
    say(await run(queue.shift()));
  }
  running = false;
  const items = [...results.children];
  const done = items.filter((li) => li.dataset.state === "done").length;
  const failed = items.filter((li) => li.dataset.state === "error").length;
  say(`All done: ${done} ready, ${failed} failed.`);
}

function addFiles(files) {
  if (files.length > 0) {
    enqueue([...files].map(addItem));
  }
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

function start() {
  $("api").textContent = api || "none";
  if (!api) {
    input.disabled = true;
    $("limit").textContent = "No API.";
    say("The api parameter must be an http:// or https:// URL.");
    return;
  }
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      if (hasFiles(event)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        drop.classList.add("over");
      }
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) {
      drop.classList.remove("over");
    }
  });
  document.addEventListener("drop", (event) => {
    if (hasFiles(event)) {
      event.preventDefault();
      drop.classList.remove("over");
      addFiles(event.dataTransfer.files);
    }
  });
  maxBytes().catch((e) => {
    $("limit").textContent = "Size limit unknown until the API answers.";
    say(e.message);
  });
}

start();
