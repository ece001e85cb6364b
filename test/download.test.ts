/**
 * `downloadFile`, `extractZip`, `downloadCoco` and `torchcap download coco` against local HTTP servers
 * on 127.0.0.1 that misbehave in the ways real ones do. No test reaches any other address.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import * as yazl from 'yazl';
import * as zlib from 'zlib';
import { runDownloadCoco } from '../lib/commands/download';
import { COCO_FILES, DownloadError, downloadCoco, downloadFile, extractZip } from '../lib/prepare';

/** A zip built in memory: a text file, a 300 KB random file in a subfolder, an empty folder. */
async function makeZip(files: Record<string, Buffer>, dirs: string[] = []): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of Object.entries(files)) zip.addBuffer(data, name, { compress: !name.endsWith('.bin') });
  for (const d of dirs) zip.addEmptyDirectory(d);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const CONTENTS: Record<string, Buffer> = {
  'coco/readme.txt': Buffer.from('a small zip for the download tests\n'.repeat(20)),
  'coco/images/photo.bin': crypto.randomBytes(300_000),
};

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

interface TestServer {
  url: string;
  /** The Range header of each request, in order ('' when none). */
  ranges: string[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];

/** A server on 127.0.0.1, port chosen by the system, closed after each test. */
async function serve(handler: Handler): Promise<TestServer> {
  const ranges: string[] = [];
  const server = http.createServer((req, res) => {
    ranges.push(req.headers.range ?? '');
    handler(req, res, ranges.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    ranges,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

/** Serves `body` as a well-behaved server does: 200, or 206 for `Range: bytes=N-`, 416 past the end. */
function sendFile(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, type = 'application/zip'): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (!m) {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes', etag: '"v1"' });
    res.end(body);
    return;
  }
  const start = Number(m[1]);
  if (start >= body.length) {
    res.writeHead(416, { 'content-range': `bytes */${body.length}` });
    res.end();
    return;
  }
  res.writeHead(206, {
    'content-type': type,
    'content-length': body.length - start,
    'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
    etag: '"v1"',
  });
  res.end(body.subarray(start));
}

/**
 * Sends the headers for the whole answer, `n` bytes of it, then kills the connection: once `part`
 * (the client's partial file) holds those bytes, so that the test knows where the client resumes.
 */
function sendPartThenDrop(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, n: number, part: string, reset = false): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/zip', 'content-length': body.length - start };
  if (m) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  res.writeHead(m ? 206 : 200, headers);
  res.write(body.subarray(start, start + n));
  const deadline = Date.now() + 5000;
  const poll = (): void => {
    const size = fs.existsSync(part) ? fs.statSync(part).size : 0;
    if (size >= start + n || Date.now() > deadline) {
      if (reset) res.socket?.resetAndDestroy();
      else res.socket?.destroy();
    } else setTimeout(poll, 5);
  };
  poll();
}

let tmp: string;
let zipBytes: Buffer;

beforeAll(async () => {
  zipBytes = await makeZip(CONTENTS, ['coco/empty/']);
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-download-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const FAST = { retryDelayMs: 5 };

describe('downloadFile', () => {
  test('downloads the whole file through NAME.part, reports progress, and skips it the next time', async () => {
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const dest = path.join(tmp, 'sub', 'data.zip');
    const seen: number[] = [];
    const r = await downloadFile(`${s.url}/data.zip`, dest, { expectedSize: zipBytes.length, onProgress: (p) => seen.push(p.received) });
    expect(r).toMatchObject({ status: 'downloaded', bytes: zipBytes.length, resumedFrom: 0, requests: 1 });
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
    expect(seen[seen.length - 1]).toBe(zipBytes.length);
    expect(s.ranges).toEqual(['']);

    const again = await downloadFile(`${s.url}/data.zip`, dest, { expectedSize: zipBytes.length });
    expect(again).toMatchObject({ status: 'complete', requests: 0 });
    expect(s.ranges).toHaveLength(1);
  });

  test('resumes with Range after the connection drops midway, and after a reset', async () => {
    const dest = path.join(tmp, 'data.zip');
    const s = await serve((req, res, n) => {
      if (n === 1) sendPartThenDrop(req, res, zipBytes, 100_000, `${dest}.part`);
      else if (n === 2) sendPartThenDrop(req, res, zipBytes, 50_000, `${dest}.part`, true);
      else sendFile(req, res, zipBytes);
    });
    const notices: string[] = [];
    const r = await downloadFile(`${s.url}/data.zip`, dest, { ...FAST, onNotice: (m) => notices.push(m) });
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
    expect(r.requests).toBe(3);
    expect(s.ranges[0]).toBe('');
    expect(s.ranges[1]).toBe('bytes=100000-');
    expect(s.ranges[2]).toBe('bytes=150000-');
    expect(notices[0]).toMatch(/connection to .* lost after 100000 of \d+ bytes.*retrying/);
  });

  test('a later run resumes the .part left by an interrupted one', async () => {
    const dest = path.join(tmp, 'data.zip');
    fs.writeFileSync(`${dest}.part`, zipBytes.subarray(0, 123_456));
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const r = await downloadFile(`${s.url}/data.zip`, dest, { expectedSize: zipBytes.length });
    expect(r).toMatchObject({ status: 'downloaded', resumedFrom: 123_456, requests: 1 });
    expect(s.ranges).toEqual(['bytes=123456-']);
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
  });

  test('a server that ignores Range (200 instead of 206) makes it start again from zero', async () => {
    const dest = path.join(tmp, 'data.zip');
    fs.writeFileSync(`${dest}.part`, Buffer.from('garbage that must not stay in front of the file'));
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': zipBytes.length });
      res.end(zipBytes);
    });
    const notices: string[] = [];
    await downloadFile(`${s.url}/data.zip`, dest, { onNotice: (m) => notices.push(m) });
    expect(s.ranges[0]).toMatch(/^bytes=\d+-$/);
    expect(notices.join('\n')).toMatch(/ignored the Range request/);
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
  });

  test('416 for a complete .part finishes it; 416 for a .part that does not fit starts again', async () => {
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const done = path.join(tmp, 'done.zip');
    fs.writeFileSync(`${done}.part`, zipBytes);
    await downloadFile(`${s.url}/data.zip`, done);
    expect(fs.readFileSync(done).equals(zipBytes)).toBe(true);

    const big = path.join(tmp, 'big.zip');
    fs.writeFileSync(`${big}.part`, Buffer.concat([zipBytes, Buffer.from('extra')]));
    const notices: string[] = [];
    await downloadFile(`${s.url}/data.zip`, big, { ...FAST, onNotice: (m) => notices.push(m) });
    expect(notices.join('\n')).toMatch(/416 Range Not Satisfiable/);
    expect(fs.readFileSync(big).equals(zipBytes)).toBe(true);
  });

  test('a .part larger than the expected size is discarded without asking the server for it', async () => {
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const dest = path.join(tmp, 'data.zip');
    fs.writeFileSync(`${dest}.part`, Buffer.alloc(zipBytes.length + 10));
    await downloadFile(`${s.url}/data.zip`, dest, { expectedSize: zipBytes.length });
    expect(s.ranges).toEqual(['']);
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
  });

  test('404 is an error naming the status and the URL; nothing is left behind', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such file');
    });
    const dest = path.join(tmp, 'data.zip');
    const err = await downloadFile(`${s.url}/missing.zip`, dest, FAST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).message).toBe(`HTTP 404 Not Found for ${s.url}/missing.zip`);
    expect((err as DownloadError).retryable).toBe(false);
    expect(s.ranges).toHaveLength(1); // not retried
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  test('503 is retried, then given up with the reason', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const err = await downloadFile(`${s.url}/data.zip`, path.join(tmp, 'data.zip'), { ...FAST, retries: 2 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^HTTP 503 Service Unavailable for .*; gave up after 3 attempts in a row without progress/);
    expect(s.ranges).toHaveLength(3);
  });

  test('an HTML page instead of the file is refused', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html><body>Access denied</body></html>');
    });
    const dest = path.join(tmp, 'data.zip');
    await expect(downloadFile(`${s.url}/data.zip`, dest)).rejects.toThrow(/answered with an HTML page \(Content-Type text\/html; charset=utf-8\) instead of the file/);
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('a compressed answer is refused: its byte counts cannot be checked or resumed', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync(zipBytes));
    });
    await expect(downloadFile(`${s.url}/data.zip`, path.join(tmp, 'data.zip'))).rejects.toThrow(/sent with Content-Encoding gzip although none was asked/);
  });

  test('a Content-Length other than the expected size is refused before anything is written', async () => {
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const dest = path.join(tmp, 'data.zip');
    await expect(downloadFile(`${s.url}/data.zip`, dest, { expectedSize: zipBytes.length + 1 })).rejects.toThrow(
      `${s.url}/data.zip is ${zipBytes.length} bytes on the server, but ${zipBytes.length + 1} are expected`,
    );
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  test('a Content-Length larger than the body (truncated answers) ends in an error that keeps the bytes for a rerun', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': zipBytes.length + 1000 });
      // Fewer bytes than announced, then the server closes the connection.
      res.write(zipBytes, () => res.socket?.destroy());
    });
    const dest = path.join(tmp, 'data.zip');
    const err = await downloadFile(`${s.url}/data.zip`, dest, { ...FAST, retries: 1 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/lost after \d+ of 301\d+ bytes|ended after/);
    expect((err as Error).message).toMatch(/run again to resume/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(`${dest}.part`)).toBe(true);
  });

  test('a connection that stays open but sends nothing is dropped after the stall timeout and resumed', async () => {
    const s = await serve((req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'application/zip', 'content-length': zipBytes.length });
        res.write(zipBytes.subarray(0, 70_000)); // then silence, connection kept open
      } else sendFile(req, res, zipBytes);
    });
    const dest = path.join(tmp, 'data.zip');
    const notices: string[] = [];
    await downloadFile(`${s.url}/data.zip`, dest, { ...FAST, stallTimeoutMs: 1000, onNotice: (m) => notices.push(m) });
    expect(notices[0]).toMatch(/no data for 1 s; retrying/);
    expect(s.ranges).toEqual(['', 'bytes=70000-']);
    expect(fs.readFileSync(dest).equals(zipBytes)).toBe(true);
  });

  test('an abort signal stops the download and keeps the .part', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': zipBytes.length });
      res.write(zipBytes.subarray(0, 50_000));
    });
    const dest = path.join(tmp, 'data.zip');
    const ac = new AbortController();
    const p = downloadFile(`${s.url}/data.zip`, dest, { signal: ac.signal, onProgress: (e) => e.received >= 50_000 && setTimeout(() => ac.abort(), 50) });
    await expect(p).rejects.toThrow(/aborted/i);
    expect(fs.statSync(`${dest}.part`).size).toBe(50_000);
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('a 206 whose Content-Range does not start where asked is refused', async () => {
    const dest = path.join(tmp, 'data.zip');
    fs.writeFileSync(`${dest}.part`, zipBytes.subarray(0, 1000));
    const s = await serve((_req, res) => {
      res.writeHead(206, { 'content-range': `bytes 0-${zipBytes.length - 1}/${zipBytes.length}`, 'content-length': zipBytes.length });
      res.end(zipBytes);
    });
    await expect(downloadFile(`${s.url}/data.zip`, dest)).rejects.toThrow(/asked for bytes from 1000, the server sent them from 0/);
  });

  test('an unreachable server is retried, then reported with the cause', async () => {
    const s = await serve((req, res) => sendFile(req, res, zipBytes));
    const url = `${s.url}/data.zip`;
    await s.close(); // the port is now closed
    const err = await downloadFile(url, path.join(tmp, 'data.zip'), { ...FAST, retries: 1 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+\/data\.zip: fetch failed.*ECONNREFUSED/);
  });

  test('a finished file of the wrong size is not overwritten', async () => {
    const dest = path.join(tmp, 'data.zip');
    fs.writeFileSync(dest, 'something else');
    await expect(downloadFile('http://127.0.0.1:9/data.zip', dest, { expectedSize: 10 })).rejects.toThrow(
      /already exists with 14 bytes, but 10 are expected; move or delete it/,
    );
    expect(fs.readFileSync(dest, 'utf8')).toBe('something else');
  });

  test('arguments are checked', async () => {
    await expect(downloadFile('ftp://127.0.0.1/x', path.join(tmp, 'x'))).rejects.toThrow(/Expected an http or https URL/);
    await expect(downloadFile('http://127.0.0.1/x', path.join(tmp, 'x'), { expectedSize: -1 })).rejects.toThrow(
      'Expected an integer >= 0 for expectedSize but received -1',
    );
  });
});

describe('extractZip', () => {
  /** yazl refuses unsafe names, so a safe name of the same length is written and then patched. */
  function patchName(zip: Buffer, from: string, to: string): Buffer {
    expect(from.length).toBe(to.length);
    const out = Buffer.from(zip);
    let at = out.indexOf(from);
    let count = 0;
    while (at >= 0) {
      out.write(to, at, 'latin1');
      count++;
      at = out.indexOf(from, at + 1);
    }
    expect(count).toBe(2); // the local header and the central directory
    return out;
  }

  test('extracts every file, and a rerun skips what is there with the right size', async () => {
    const zip = path.join(tmp, 'data.zip');
    fs.writeFileSync(zip, zipBytes);
    const dest = path.join(tmp, 'out');
    const r = await extractZip(zip, dest);
    expect(r).toEqual({ extracted: 2, skipped: 0, bytes: CONTENTS['coco/readme.txt'].length + 300_000 });
    for (const [name, data] of Object.entries(CONTENTS)) expect(fs.readFileSync(path.join(dest, name)).equals(data)).toBe(true);
    expect(fs.statSync(path.join(dest, 'coco/empty')).isDirectory()).toBe(true);

    // A killed extraction: one file cut short at its final name (as another tool leaves it), a temporary of ours.
    fs.writeFileSync(path.join(dest, 'coco/images/photo.bin'), 'cut');
    fs.writeFileSync(path.join(dest, 'coco/images/.photo.bin.unzip-part'), 'partial');
    const again = await extractZip(zip, dest);
    expect(again).toMatchObject({ extracted: 1, skipped: 1 });
    expect(fs.readFileSync(path.join(dest, 'coco/images/photo.bin')).equals(CONTENTS['coco/images/photo.bin'])).toBe(true);
    expect(fs.readdirSync(path.join(dest, 'coco/images'))).toEqual(['photo.bin']);
  });

  test.each([
    ['../evil.txt', 'zz/evil.txt'],
    ['/tmp/evil.txt', 'xtmp/evil.txt'],
  ])('refuses a zip with the entry %s and writes nothing', async (evil, safe) => {
    const bytes = patchName(await makeZip({ 'ok.txt': Buffer.from('fine'), [safe]: Buffer.from('owned') }), safe, evil);
    const zip = path.join(tmp, 'evil.zip');
    fs.writeFileSync(zip, bytes);
    const dest = path.join(tmp, 'out');
    await expect(extractZip(zip, dest)).rejects.toThrow(/^refusing to extract .*evil\.zip: .*(relative path|absolute path).*; nothing was extracted/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'evil.txt'))).toBe(false);
  });

  test('a corrupted entry is detected by its CRC-32 and not left under its name', async () => {
    const data = Buffer.alloc(5000, 7);
    const bytes = Buffer.from(await makeZip({ 'stored.bin': data }));
    // Flip one byte of the stored data (it follows the 30-byte local header and the 10-byte name).
    bytes[30 + 'stored.bin'.length + 100] ^= 0xff;
    const zip = path.join(tmp, 'bad.zip');
    fs.writeFileSync(zip, bytes);
    const dest = path.join(tmp, 'out');
    await expect(extractZip(zip, dest)).rejects.toThrow(/stored\.bin in .*bad\.zip is corrupt \(CRC-32 mismatch\)/);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  test('a file that is not a zip is named for what it is', async () => {
    const html = path.join(tmp, 'page.zip');
    fs.writeFileSync(html, '<!DOCTYPE html><html><body>Not Found</body></html>');
    await expect(extractZip(html, path.join(tmp, 'out'))).rejects.toThrow(/cannot read .*page\.zip as a zip: it holds an HTML or XML page/);
    const cut = path.join(tmp, 'cut.zip');
    fs.writeFileSync(cut, zipBytes.subarray(0, zipBytes.length - 30));
    await expect(extractZip(cut, path.join(tmp, 'out'))).rejects.toThrow(/starts like a zip but is damaged or cut off/);
    await expect(extractZip(path.join(tmp, 'none.zip'), path.join(tmp, 'out'))).rejects.toThrow(/zip file not found/);
  });

  test('a filter extracts only the chosen entries', async () => {
    const zip = path.join(tmp, 'data.zip');
    fs.writeFileSync(zip, zipBytes);
    const r = await extractZip(zip, path.join(tmp, 'out'), { filter: (n) => n.endsWith('.txt') });
    expect(r).toMatchObject({ extracted: 1, bytes: CONTENTS['coco/readme.txt'].length });
    expect(fs.existsSync(path.join(tmp, 'out/coco/images'))).toBe(false);
  });
});

describe('downloadCoco', () => {
  /** A fake COCO host serving small zips at the official paths. */
  async function fakeCoco(): Promise<{ server: TestServer; zips: Record<string, Buffer> }> {
    const zips: Record<string, Buffer> = {
      '/zips/train2014.zip': await makeZip({ 'train2014/COCO_train2014_000000000009.jpg': crypto.randomBytes(2000) }),
      '/zips/val2014.zip': await makeZip({ 'val2014/COCO_val2014_000000000042.jpg': crypto.randomBytes(2000) }),
      '/annotations/annotations_trainval2014.zip': await makeZip({
        'annotations/captions_train2014.json': Buffer.from('{"annotations":[]}'),
        'annotations/captions_val2014.json': Buffer.from('{"annotations":[]}'),
        'annotations/instances_train2014.json': Buffer.from('{"not":"needed"}'),
      }),
    };
    const server = await serve((req, res) => {
      const body = zips[req.url ?? ''];
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      } else sendFile(req, res, body);
    });
    return { server, zips };
  }

  test('downloads and extracts the three parts from the base URL, then a rerun does nothing', async () => {
    const { server } = await fakeCoco();
    const dir = path.join(tmp, 'coco');
    const phases = new Set<string>();
    const r = await downloadCoco({ dir, baseUrl: `${server.url}/`, onProgress: (p) => phases.add(`${p.part} ${p.phase}`) });
    expect(r.map((p) => [p.part, p.url, p.download.status, p.extract.extracted])).toEqual([
      ['train2014', `${server.url}/zips/train2014.zip`, 'downloaded', 1],
      ['val2014', `${server.url}/zips/val2014.zip`, 'downloaded', 1],
      ['annotations', `${server.url}/annotations/annotations_trainval2014.zip`, 'downloaded', 2],
    ]);
    expect(fs.readdirSync(path.join(dir, 'annotations')).sort()).toEqual(['captions_train2014.json', 'captions_val2014.json']);
    expect(fs.existsSync(path.join(dir, 'train2014/COCO_train2014_000000000009.jpg'))).toBe(true);
    expect(phases.size).toBe(6);

    const requests = server.ranges.length;
    const again = await downloadCoco({ dir, baseUrl: server.url });
    expect(again.map((p) => [p.download.status, p.extract.skipped, p.extract.extracted])).toEqual([
      ['complete', 1, 0],
      ['complete', 1, 0],
      ['complete', 2, 0],
    ]);
    expect(server.ranges).toHaveLength(requests);
  });

  test('TORCHCAP_COCO_URL sets the base URL; only the official host implies the official sizes', async () => {
    const { server } = await fakeCoco();
    const saved = process.env.TORCHCAP_COCO_URL;
    process.env.TORCHCAP_COCO_URL = server.url;
    try {
      const r = await downloadCoco({ dir: path.join(tmp, 'coco'), parts: ['val2014'] });
      expect(r[0].url).toBe(`${server.url}/zips/val2014.zip`);
      // Insisting on the official size against the small test zip fails before writing anything.
      await expect(
        downloadCoco({ dir: path.join(tmp, 'coco2'), parts: ['val2014'], expectedSizes: { val2014: COCO_FILES.val2014.size } }),
      ).rejects.toThrow(/but 6645013297 are expected/);
    } finally {
      if (saved === undefined) delete process.env.TORCHCAP_COCO_URL;
      else process.env.TORCHCAP_COCO_URL = saved;
    }
  });

  test('torchcap download coco: exit 0 with a line per part; exit 1 with the reason on a 404', async () => {
    const { server } = await fakeCoco();
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    expect(await runDownloadCoco({ dir: path.join(tmp, 'c'), parts: ['annotations'], baseUrl: server.url, quiet: true }, io)).toBe(0);
    expect(out.join('')).toMatch(/^annotations: .*annotations_trainval2014\.zip .* downloaded; 2 files extracted, 0 already there/);

    err.length = 0;
    const code = await runDownloadCoco({ dir: path.join(tmp, 'd'), parts: ['val2014'], baseUrl: `${server.url}/mirror`, quiet: true }, io);
    expect(code).toBe(1);
    expect(err.join('')).toBe(`torchcap download coco: HTTP 404 Not Found for ${server.url}/mirror/zips/val2014.zip\n`);
  });

  test('unknown parts are refused', async () => {
    await expect(downloadCoco({ dir: tmp, parts: ['test2014' as never] })).rejects.toThrow(/Unknown COCO part "test2014"/);
  });
});
