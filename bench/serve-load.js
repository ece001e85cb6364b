'use strict';
// Load test of `torchcap serve` on loopback.
//
//   node bench/serve-load.js [--requests 2000] [--concurrency 16] [--overload-requests 600]
//       [--overload-concurrency 64] [--max-queue 32] [--image-size 128] [--max-len 20]
//       [--soak-requests 20000] [--soak-concurrency 16] [--warm-up-requests 1000]
//
// Starts `torchcap serve --warm-up` (a small ResNet-18 captioner with random weights, 127.0.0.1,
// any free port) in a child process, warms it up with --warm-up-requests requests from
// --concurrency clients, mixed as the soak mixes them (the process takes a couple of thousand
// requests to reach its working level, V8's heap among it), then:
//  1. sends --requests requests from --concurrency clients at once, 20% of them malformed, of five
//     kinds in turn: truncated PNG, zero-byte body, not an image, a PNG declaring 20,000×20,000
//     pixels, a good PNG sent as text/plain; good ones are raw PNG/JPEG bodies or multipart;
//  2. overloads it: --overload-requests good requests from --overload-concurrency clients, more than
//     --max-queue, so that some are answered 503 with Retry-After;
//  3. soaks it in errors: --soak-requests requests from --soak-concurrency clients, every other one
//     malformed (the five kinds above and five more: random bytes, a JPEG cut after its header, a
//     multipart body without a file, one with two files, a PNG signature alone), the server's RSS
//     sampled every 250 requests (0 skips the phase);
//  4. sends SIGTERM and waits for a clean exit.
// Checks: no crash and no restart (the same server process answers /healthz after every phase),
// every good request answered 200 with a caption and every bad one with its 4xx (phases 1 and 3),
// overload answered 503 (with Retry-After) or 200 and nothing else, server RSS growth under 50 MB
// from after the warm-up to the end of each phase, and flat through the soak: under 10 MB from its
// middle to its end (a leak of 1 KB a request would show 10 MB over 10,000). Prints counts by status, latency percentiles,
// RSS; exits 1 if a check fails. Phases with 0 requests are skipped.
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { DIST, writeTinyModels, noiseImage } = require('./tiny-models');
const { machine } = require('./common');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const REQUESTS = arg('requests', 2000);
const CONCURRENCY = arg('concurrency', 16);
const OVERLOAD_REQUESTS = arg('overload-requests', 600);
const OVERLOAD_CONCURRENCY = arg('overload-concurrency', 64);
const MAX_QUEUE = arg('max-queue', 32);
const IMAGE_SIZE = arg('image-size', 128);
const MAX_LEN = arg('max-len', 20);
const SOAK_REQUESTS = arg('soak-requests', 20000);
const SOAK_CONCURRENCY = arg('soak-concurrency', 16);
const WARMUP_REQUESTS = Math.max(arg('warm-up-requests', 1000), 16);

// ---------- payloads ----------

const { bombPng } = require('../scripts/fixtures/bomb-png');

const BOUNDARY = '----torchcap-load-boundary';
function multipart(image, filename, type) {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`),
    image,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

async function payloads() {
  const pngs = await Promise.all([0, 1, 2, 3, 4, 5].map((k) => noiseImage(160 + 40 * k, 120 + 30 * k, k + 1)));
  const jpegs = await Promise.all([0, 1, 2, 3].map((k) => noiseImage(320 + 64 * k, 240 + 48 * k, k + 11, 'jpeg')));
  const good = [];
  pngs.forEach((p, k) => good.push({ name: 'png', type: 'image/png', body: p }, { name: 'multipart png', type: `multipart/form-data; boundary=${BOUNDARY}`, body: multipart(p, `p${k}.png`, 'image/png') }));
  jpegs.forEach((j) => good.push({ name: 'jpeg', type: 'image/jpeg', body: j }, { name: 'octet-stream jpeg', type: 'application/octet-stream', body: j }));
  const bad = [
    { name: 'truncated', type: 'image/png', body: pngs[2].subarray(0, pngs[2].length >> 1), expect: 422 },
    { name: 'zero-byte', type: 'image/png', body: Buffer.alloc(0), expect: 400 },
    { name: 'not an image', type: 'image/jpeg', body: Buffer.from('GET / HTTP/1.1 -- this is text, not a picture. '.repeat(40)), expect: 415 },
    { name: '20000x20000 PNG', type: 'image/png', body: bombPng(), expect: 413 },
    { name: 'wrong content type', type: 'text/plain', body: pngs[0], expect: 415 },
  ];
  // More kinds for the soak.
  const noise = Buffer.alloc(4096);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const soakBad = [
    ...bad,
    { name: 'random bytes', type: 'application/octet-stream', body: noise, expect: 415 },
    { name: 'JPEG cut after its header', type: 'image/jpeg', body: jpegs[1].subarray(0, 700), expect: 422 },
    { name: 'multipart without a file', type: `multipart/form-data; boundary=${BOUNDARY}`, body: Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${BOUNDARY}--\r\n`), expect: 400 },
    { name: 'multipart with two files', type: `multipart/form-data; boundary=${BOUNDARY}`, body: Buffer.concat([multipart(pngs[0], 'a.png', 'image/png').subarray(0, -(BOUNDARY.length + 6)), multipart(pngs[1], 'b.png', 'image/png')]), expect: 400 },
    { name: 'PNG signature alone', type: 'image/png', body: pngs[0].subarray(0, 8), expect: 422 },
  ];
  return { good, bad, soakBad };
}

// ---------- client ----------

function post(agent, url, p) {
  const t = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(`${url}/caption`, { method: 'POST', agent, headers: { 'content-type': p.type, 'content-length': p.body.length }, timeout: 120000 }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], json, ms: Number(process.hrtime.bigint() - t) / 1e6 });
      });
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: e.code || e.message, json: null, ms: Number(process.hrtime.bigint() - t) / 1e6 }));
    req.end(p.body);
  });
}

/** Sends the planned requests from `concurrency` clients; resolves with one result per request (and `sample()` every 250). */
async function run(url, plan, concurrency, sample = () => undefined) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const results = new Array(plan.length);
  let next = 0;
  let finished = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plan.length) {
        const i = next++;
        results[i] = { ...(await post(agent, url, plan[i])), name: plan[i].name, expect: plan[i].expect };
        if (++finished % 250 === 0) sample();
      }
    }),
  );
  agent.destroy();
  return { results, seconds: (Date.now() - t0) / 1000 };
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function latency(results) {
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const f = (x) => (Number.isFinite(x) ? +x.toFixed(1) : null); // null: a phase that did not run
  return { p50: f(percentile(ms, 50)), p90: f(percentile(ms, 90)), p99: f(percentile(ms, 99)), max: f(ms.length ? ms[ms.length - 1] : NaN) };
}

function countBy(results, key) {
  const out = {};
  for (const r of results) out[key(r)] = (out[key(r)] || 0) + 1;
  return out;
}

function healthz(url) {
  return new Promise((resolve) => {
    http
      .get(`${url}/healthz`, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, json: JSON.parse(b) });
          } catch {
            resolve({ status: res.statusCode, json: null });
          }
        });
      })
      .on('error', (e) => resolve({ status: e.code || e.message, json: null }));
  });
}

/** Whether every good request got 200 with a caption and every bad one its 4xx with an error. */
function answered(results) {
  const good = results.filter((r) => r.expect === undefined);
  const bad = results.filter((r) => r.expect !== undefined);
  const goodOk = good.filter((r) => r.status === 200 && r.json && typeof r.json.caption === 'string' && r.json.caption.split(' ').length === MAX_LEN).length;
  const badOk = bad.filter((r) => r.status === r.expect && r.json && typeof r.json.error === 'string').length;
  return { good, bad, goodOk, badOk };
}

function rssOf(pid) {
  try {
    return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) / 1024;
  } catch {
    return NaN;
  }
}

// ---------- server ----------

function startServer(models) {
  const cli = path.join(DIST, 'cli.js');
  const args = ['serve', '--port', '0', '--host', '127.0.0.1', '--encoder', models.encoder, '--decoder', models.decoder, '--vocab', models.vocab];
  args.push('--image-size', String(IMAGE_SIZE), '--max-len', String(MAX_LEN), '--max-queue', String(MAX_QUEUE), '--timeout', '60000', '--warm-up');
  // `torchcap serve` itself once the CLI registers the command; the same command module through yargs until then.
  const registered = fs.readFileSync(cli, 'utf8').includes('serveCommand');
  const node = registered
    ? [cli, ...args]
    : ['-e', `require('yargs')(process.argv.slice(1)).command(require(${JSON.stringify(path.join(DIST, 'commands', 'serve.js'))}).serveCommand).demandCommand(1).strict().parse()`, '--', ...args];
  const child = spawn(process.execPath, node, { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1]);
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`torchcap serve exited ${child.exitCode}: ${err}`));
      }
    }, 20);
  });
  return { child, url, exited, output: () => ({ out, err }), how: registered ? 'node dist/cli.js serve' : 'serveCommand through yargs (dist/commands/serve.js)' };
}

// ---------- main ----------

async function main() {
  const models = await writeTinyModels();
  const server = startServer(models);
  const failures = [];
  try {
    const url = await server.url;
    const { good, bad, soakBad } = await payloads();
    const pid = server.child.pid;

    // Warm-up: the allocator, JIT, V8's heap and thread pools settle before RSS is measured.
    const mixed = (n) => Array.from({ length: n }, (_, i) => (i % 2 ? soakBad[(i >> 1) % soakBad.length] : good[(i >> 1) % good.length]));
    await run(url, mixed(WARMUP_REQUESTS), CONCURRENCY);
    const rssBefore = rssOf(pid);

    // Phase 1: 2,000 requests at concurrency 16, 20% malformed.
    const plan = Array.from({ length: REQUESTS }, (_, i) => (i % 5 === 4 ? bad[Math.floor(i / 5) % bad.length] : good[i % good.length]));
    const samples = [];
    const p1 = await run(url, plan, CONCURRENCY, () => samples.push(Math.round(rssOf(pid))));
    const rssAfterMixed = rssOf(pid);
    const { good: goodResults, bad: badResults, goodOk, badOk } = answered(p1.results);
    if (goodOk !== goodResults.length) failures.push(`phase 1: ${goodResults.length - goodOk} good requests not answered 200 with a caption`);
    if (badOk !== badResults.length) failures.push(`phase 1: ${badResults.length - badOk} bad requests not answered with their 4xx`);
    if (REQUESTS > 0 && rssAfterMixed - rssBefore >= 50) failures.push(`phase 1: server RSS grew by ${(rssAfterMixed - rssBefore).toFixed(1)} MB`);

    // Phase 2: overload.
    const p2 = await run(url, Array.from({ length: OVERLOAD_REQUESTS }, (_, i) => good[i % good.length]), OVERLOAD_CONCURRENCY);
    const rssAfter = rssOf(pid);
    const overload = countBy(p2.results, (r) => r.status);
    const refused = p2.results.filter((r) => r.status === 503);
    if (OVERLOAD_REQUESTS > 0 && !refused.length) failures.push('phase 2: no request was answered 503');
    if (refused.some((r) => !(Number(r.retryAfter) >= 1))) failures.push('phase 2: a 503 came without Retry-After');
    if (p2.results.some((r) => r.status !== 200 && r.status !== 503)) failures.push(`phase 2: statuses other than 200 and 503: ${JSON.stringify(overload)}`);
    const healthAfterOverload = await healthz(url);

    // Phase 3: the error-heavy soak, every other request malformed.
    const soakPlan = mixed(SOAK_REQUESTS);
    const soakSamples = [];
    const p3 = await run(url, soakPlan, SOAK_CONCURRENCY, () => soakSamples.push(Math.round(rssOf(pid))));
    const rssAfterSoak = rssOf(pid);
    const soak = answered(p3.results);
    if (soak.goodOk !== soak.good.length) failures.push(`phase 3: ${soak.good.length - soak.goodOk} good requests not answered 200 with a caption`);
    if (soak.badOk !== soak.bad.length) failures.push(`phase 3: ${soak.bad.length - soak.badOk} bad requests not answered with their 4xx`);
    if (SOAK_REQUESTS > 0 && !(rssAfterSoak - rssBefore < 50)) failures.push(`phase 3: server RSS grew by ${(rssAfterSoak - rssBefore).toFixed(1)} MB`);
    const secondHalf = soakSamples.length >= 2 ? rssAfterSoak - soakSamples[Math.floor(soakSamples.length / 2)] : NaN;
    if (Number.isFinite(secondHalf) && !(secondHalf < 10)) failures.push(`phase 3: server RSS grew by ${secondHalf.toFixed(1)} MB over the soak's second half`);

    const health = await healthz(url);
    for (const [when, h] of [['after the overload', healthAfterOverload], ['after the soak', health]]) {
      if (h.status !== 200 || !h.json || !h.json.ok) failures.push(`healthz ${when}: ${JSON.stringify(h)}`);
    }
    if (server.child.exitCode !== null || server.child.signalCode !== null) failures.push('the server process ended during the load');

    server.child.kill('SIGTERM');
    const exit = await server.exited;
    if (exit.code !== 0) failures.push(`the server exited ${JSON.stringify(exit)} after SIGTERM`);
    const growth = rssAfter - rssBefore;
    if (OVERLOAD_REQUESTS > 0 && !(growth < 50)) failures.push(`phase 2: server RSS grew by ${growth.toFixed(1)} MB`);

    const report = {
      machine: machine(),
      server: server.how,
      model: health.json && health.json.model,
      serverPid: pid,
      warmUpRequests: WARMUP_REQUESTS,
      phase1: {
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        seconds: +p1.seconds.toFixed(1),
        requestsPerSecond: +(REQUESTS / p1.seconds).toFixed(1),
        byStatus: countBy(p1.results, (r) => r.status),
        byKind: countBy(p1.results, (r) => `${r.name} -> ${r.status}`),
        goodAnswered200: `${goodOk}/${goodResults.length}`,
        badAnswered4xx: `${badOk}/${badResults.length}`,
        latencyMsGood: latency(goodResults),
        latencyMsBad: latency(badResults),
      },
      phase2: {
        requests: OVERLOAD_REQUESTS,
        concurrency: OVERLOAD_CONCURRENCY,
        maxQueue: MAX_QUEUE,
        seconds: +p2.seconds.toFixed(1),
        byStatus: overload,
        retryAfter: countBy(refused, (r) => r.retryAfter),
        latencyMs200: latency(p2.results.filter((r) => r.status === 200)),
        latencyMs503: latency(refused),
      },
      phase3: {
        requests: SOAK_REQUESTS,
        concurrency: SOAK_CONCURRENCY,
        malformedShare: 0.5,
        seconds: +p3.seconds.toFixed(1),
        requestsPerSecond: +(SOAK_REQUESTS / p3.seconds).toFixed(1),
        byKind: countBy(p3.results, (r) => `${r.name} -> ${r.status}`),
        goodAnswered200: `${soak.goodOk}/${soak.good.length}`,
        badAnswered4xx: `${soak.badOk}/${soak.bad.length}`,
        latencyMsGood: latency(soak.good),
        latencyMsBad: latency(soak.bad),
      },
      rssMB: {
        afterWarmup: +rssBefore.toFixed(1),
        afterPhase1: +rssAfterMixed.toFixed(1),
        afterPhase2: +rssAfter.toFixed(1),
        afterPhase3: +rssAfterSoak.toFixed(1),
        growthPhase3: +(rssAfterSoak - rssBefore).toFixed(1),
        growthSoakSecondHalf: Number.isFinite(secondHalf) ? +secondHalf.toFixed(1) : null,
        phase1Every250: samples,
        phase3Every250: soakSamples,
      },
      shutdown: exit,
      serverStderr: server.output().err.trim().split('\n'),
      failures,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    fs.rmSync(models.dir, { recursive: true, force: true });
  }
  if (failures.length) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
