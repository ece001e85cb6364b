/**
 * A long-lived captioner keeps flat memory: thousands of captions in one process (every input kind,
 * unreadable images, greedy and beam search, two concurrent callers) grow RSS by less than 50 MB
 * after warm-up. Runs bench/caption-memory.js in a child process so the figure is not the test
 * runner's; the bench itself runs 10,000 captions (BENCHMARKS.md).
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

const SCRIPT = path.join(__dirname, '..', 'bench', 'caption-memory.js');

test('2,000 captions after warm-up grow RSS by less than 50 MB', () => {
  const out = execFileSync(process.execPath, [SCRIPT, '--count', '2000', '--warmup', '300', '--image-size', '48', '--max-len', '6'], {
    encoding: 'utf8',
    timeout: 170000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  // eslint-disable-next-line no-console
  console.log(`captioner memory: ${r.captions} captions in ${r.seconds} s, RSS ${r.rssStartMB} -> ${r.rssEndMB} MB (peak ${r.rssPeakMB} MB)`);
  expect(r.captions).toBeGreaterThanOrEqual(2000);
  expect(r.unreadable).toBeGreaterThan(0);
  expect(r.peakGrowthMB).toBeLessThan(50);
}, 180000);
