/**
 * The server's `GET /` page: pick or drop an image, see its caption (greedy, and with beam search
 * if asked) and how long it took.
 *
 * One self-contained document: its style and script are inline and nothing else is loaded (no
 * fonts, scripts or pictures from anywhere). The Content-Security-Policy sent with it allows
 * exactly that inline style and script (by their SHA-256 hashes, so an injected one would not
 * run), the chosen image's preview (`blob:`), and requests to this server only; no frames, forms,
 * plugins or base URL. Text from the server is placed with `textContent`, never parsed as HTML.
 *
 * The page talks to the same routes as any client: `GET /healthz` (what model is loaded) and
 * `POST /caption?beam=K` with the image as the body; error answers are shown in words, with the
 * server's own message.
 */
import { createHash } from 'crypto';

/** Beam widths a request may ask for (`POST /caption?beam=K`). */
export const MAX_REQUEST_BEAM = 20;

const STYLE = `
  :root { color-scheme: light; }
  body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f4; }
  main { max-width: 44em; margin: 2.5em auto; padding: 0 1.2em; }
  h1 { font-size: 1.5em; margin: 0 0 .3em; }
  .model { color: #555; margin: 0 0 1.2em; font-size: .92em; }
  .drop { display: block; border: 2px dashed #999; border-radius: 10px; padding: 2em 1em; text-align: center; background: #fff; cursor: pointer; }
  .drop.over { border-color: #2a62d4; background: #eef3ff; }
  .drop input { display: block; margin: .8em auto 0; }
  .options { margin: 1em 0; }
  .options input[type=number] { width: 3.5em; }
  figure { display: flex; gap: 1.2em; align-items: flex-start; margin: 1.5em 0; padding: 1em; background: #fff; border: 1px solid #ddd; border-radius: 10px; }
  figure img { width: 192px; max-height: 256px; object-fit: contain; image-rendering: pixelated; border: 1px solid #ccc; flex: none; }
  figcaption { flex: 1; }
  .row { margin: 0 0 .8em; }
  .how { display: block; color: #666; font-size: .8em; text-transform: uppercase; letter-spacing: .04em; }
  .caption { font-size: 1.15em; font-weight: 600; }
  .time { color: #666; font-size: .85em; }
  .status { color: #555; }
  .error { color: #9b1111; background: #fff0f0; border: 1px solid #e4b4b4; border-radius: 6px; padding: .6em .8em; }
  [hidden] { display: none !important; }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
let previewUrl = null;

fetch('healthz').then((r) => r.json()).then((h) => {
  const m = h.model;
  $('model').textContent = 'Model: ' + m.backbone + ' encoder, LSTM decoder (' + m.hiddenSize + ' units), ' + m.vocabSize + ' words; images are resized to ' + m.imageSize + ' x ' + m.imageSize + ' pixels.';
}).catch(() => { $('model').textContent = 'The server did not say which model it runs.'; });

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = false;
}

function seconds(ms) {
  return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(2) + ' s';
}

async function caption(file, beam) {
  const type = file.type && file.type.startsWith('image/') ? file.type : 'application/octet-stream';
  const started = performance.now();
  let res;
  try {
    res = await fetch('caption?beam=' + beam, { method: 'POST', headers: { 'Content-Type': type }, body: file });
  } catch (e) {
    throw new Error('The server could not be reached (' + e.message + '). Is torchcap serve still running?');
  }
  let body = {};
  try { body = await res.json(); } catch (e) { /* not JSON: the status says enough */ }
  const ms = performance.now() - started;
  if (!res.ok) throw new Error('The server could not caption ' + (file.name || 'this image') + ' (HTTP ' + res.status + '): ' + (body.error || res.statusText || 'no reason given') + '.');
  return { caption: body.caption, ms };
}

function beamWidth() {
  const v = Number($('beam').value);
  if (!Number.isInteger(v) || v < 1 || v > ${MAX_REQUEST_BEAM}) throw new Error('The beam width must be a whole number from 1 to ${MAX_REQUEST_BEAM}; it is "' + $('beam').value + '".');
  return v;
}

async function run(file) {
  $('error').hidden = true;
  if (!file) return;
  let beam = 0;
  try {
    if ($('beam-on').checked) beam = beamWidth();
  } catch (e) {
    showError(e.message);
    return;
  }
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  $('preview').src = previewUrl;
  $('preview').alt = file.name || 'the chosen image';
  $('result').hidden = false;
  $('greedy').textContent = '';
  $('greedy-time').textContent = '';
  $('beam-row').hidden = !beam;
  $('beam-caption').textContent = '';
  $('beam-time').textContent = '';
  $('status').textContent = 'Captioning ' + (file.name || 'the image') + '...';
  $('status').hidden = false;
  try {
    const g = await caption(file, 1);
    $('greedy').textContent = g.caption;
    $('greedy-time').textContent = 'in ' + seconds(g.ms);
    if (beam) {
      $('beam-how').textContent = 'beam search, width ' + beam;
      const b = await caption(file, beam);
      $('beam-caption').textContent = b.caption;
      $('beam-time').textContent = 'in ' + seconds(b.ms);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    $('status').hidden = true;
  }
}

$('file').addEventListener('change', () => run($('file').files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const files = e.dataTransfer && e.dataTransfer.files;
  if (!files || files.length === 0) { showError('Nothing to caption: drop an image file (JPEG, PNG, WebP, ...).'); return; }
  run(files[0]);
});
`;

const HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torchcap: caption an image</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>Caption an image</h1>
<p id="model" class="model">Asking the server which model it runs...</p>
<label id="drop" class="drop" for="file">Drop an image here, or choose one:
<input type="file" id="file" accept="image/*">
</label>
<p class="options"><label><input type="checkbox" id="beam-on"> also with beam search, width</label>
<input type="number" id="beam" min="1" max="${MAX_REQUEST_BEAM}" value="3" aria-label="beam width"></p>
<p id="status" class="status" hidden></p>
<p id="error" class="error" role="alert" hidden></p>
<figure id="result" hidden>
<img id="preview" alt="">
<figcaption>
<p class="row"><span class="how">greedy, as the book</span><span id="greedy" class="caption"></span> <span id="greedy-time" class="time"></span></p>
<p id="beam-row" class="row" hidden><span id="beam-how" class="how">beam search</span><span id="beam-caption" class="caption"></span> <span id="beam-time" class="time"></span></p>
</figcaption>
</figure>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page's Content-Security-Policy: its own inline style and script, blob: previews, requests to this server. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  'img-src blob:',
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page and the headers it is sent with. */
export const PAGE = Object.freeze({
  html: HTML,
  headers: Object.freeze({
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  }),
});
