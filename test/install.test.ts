/** The opt-in download of a prebuilt addon at install time: used when good, a warning otherwise. */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { execFileSync } from 'child_process';
import { testIf } from './support/skip';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { fetchPrebuild } = require('../scripts/install.js') as { fetchPrebuild: (info: object, url: string, root: string) => Promise<boolean> };
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { findLibtorch } = require('../scripts/find-libtorch.js') as { findLibtorch: () => { versionMajorMinor: string; cuda: boolean } };

const built = path.resolve(__dirname, '../build/Release/torchcap.node');
const info = findLibtorch();
const name = `${process.platform}-${process.arch}/torch-${info.versionMajorMinor}-${info.cuda ? 'cuda' : 'cpu'}.node`;

async function serve(routes: Record<string, (res: http.ServerResponse) => void>): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const route = routes[req.url ?? ''];
    if (route) route(res);
    else res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/releases`, close: () => new Promise((r) => server.close(() => r())) };
}

let warnings: string[] = [];
beforeEach(() => {
  warnings = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    warnings.push(String(chunk));
    return true;
  });
});
afterEach(() => jest.restoreAllMocks());

test('a good download lands in prebuilds/ and loads', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-dl-'));
  const srv = await serve({ [`/releases/${name}`]: (res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fs.readFileSync(built)) });
  try {
    expect(await fetchPrebuild(info, srv.url, root)).toBe(true);
    expect(fs.existsSync(path.join(root, 'prebuilds', name))).toBe(true);
  } finally {
    await srv.close();
  }
});

test.each([
  ['a 404', (res: http.ServerResponse) => res.writeHead(404).end('missing'), /HTTP 404/],
  ['an HTML page', (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>'), /not a shared library/],
  ['a cut connection', (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    res.destroy();
  }, /fetch failed|terminated|aborted|socket|bytes/i],
])('%s warns, leaves nothing behind and returns false', async (_label, route, reason) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-dl-'));
  const srv = await serve({ [`/releases/${name}`]: route });
  try {
    expect(await fetchPrebuild(info, srv.url, root)).toBe(false);
    expect(warnings.join('')).toMatch(/WARNING: could not download the prebuilt addon/);
    expect(warnings.join('')).toMatch(reason);
    const dir = path.join(root, 'prebuilds', path.dirname(name));
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
  } finally {
    await srv.close();
  }
});

describe("torchcap's own parallel loops use the OpenMP runtime of a system libtorch", () => {
  // at::parallel_for is a header template: torchcap's loops (the book-mode batch norm, image
  // batches, weight-file reads) run on one thread unless torchcap itself is compiled with OpenMP.
  const { gypFlags } = require('../scripts/find-libtorch.js') as { gypFlags: (info: object, what: string) => string };
  const systemInfo = { system: true, cxx11Abi: 1, cuda: false, libDir: '/usr/lib/x86_64-linux-gnu', includeDirs: [], cmakePrefix: '/nonexistent' };

  test('node-gyp compiles and links with -fopenmp for a system libtorch, not for a downloaded one (which carries its own runtime)', () => {
    expect(gypFlags(systemInfo, 'cflags').split(' ')).toContain('-fopenmp');
    expect(gypFlags(systemInfo, 'libs').split(' ')).toContain('-fopenmp');
    const downloaded = { ...systemInfo, system: false, libDir: '/opt/libtorch/lib' };
    expect(gypFlags(downloaded, 'cflags').split(' ')).not.toContain('-fopenmp');
    expect(gypFlags(downloaded, 'libs').split(' ')).not.toContain('-fopenmp');
  });

  const system = (info as unknown as { system?: boolean }).system === true;
  testIf(system && fs.existsSync(built), 'no source build of the addon against a system libtorch here', 'the source-built addon opens OpenMP parallel regions itself (it imports GOMP_parallel)', () => {
    const symbols = execFileSync('nm', ['-D', '--undefined-only', built], { encoding: 'utf8' });
    expect(symbols).toMatch(/\bGOMP_parallel\b/);
  });
});
