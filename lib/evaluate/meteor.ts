/**
 * METEOR through the METEOR 1.5 jar, run the way coco-caption runs it:
 * `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm` in the jar's folder, one
 * `SCORE ||| ref 1 ||| ... ||| ref n ||| candidate` line per image (each answered with a line of
 * statistics), then one `EVAL ||| stats 1 ||| ... ||| stats N` line, answered with one score per
 * image and then the corpus score.
 *
 * METEOR needs Java and the jar (with its `data/` folder of paraphrase tables); torchcap ships
 * neither. When either is missing the result says so and gives no number.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface MeteorOptions {
  /** Path of `meteor-1.5.jar`; defaults to the `TORCHCAP_METEOR_JAR` environment variable. */
  jar?: string;
  /** The Java launcher; defaults to `TORCHCAP_JAVA` or `java` on the PATH. */
  java?: string;
  /** Maximum Java heap, as the toolkit passes it (`2G`). */
  maxHeap?: string;
}

export type MeteorOutcome =
  | { available: true; score: number; perImage: number[] }
  | { available: false; reason: string };

/** Where METEOR would run from, or why it cannot. */
export function locateMeteor(opts: MeteorOptions = {}): { available: true; jar: string; java: string } | { available: false; reason: string } {
  const jar = opts.jar ?? process.env.TORCHCAP_METEOR_JAR;
  if (jar === undefined || jar === '') {
    return { available: false, reason: 'no METEOR 1.5 jar configured; pass --meteor-jar or set TORCHCAP_METEOR_JAR' };
  }
  const jarPath = path.resolve(jar);
  if (!fs.existsSync(jarPath) || !fs.statSync(jarPath).isFile()) {
    return { available: false, reason: `METEOR jar not found: ${jarPath}` };
  }
  const java = opts.java ?? process.env.TORCHCAP_JAVA ?? 'java';
  const probe = spawnSync(java, ['-version'], { stdio: 'ignore', timeout: 60000 });
  if (probe.error !== undefined) {
    const code = (probe.error as NodeJS.ErrnoException).code;
    return { available: false, reason: code === 'ENOENT' ? `Java not found: ${java} is not on the PATH` : `Java could not be started: ${java}: ${probe.error.message}` };
  }
  if (probe.status !== 0) return { available: false, reason: `Java failed to start: ${java} -version exited with ${probe.status ?? probe.signal}` };
  return { available: true, jar: jarPath, java };
}

/** The line coco-caption sends for one image (it strips `|||` from the candidate and halves double spaces). */
export function meteorScoreLine(candidate: string, references: readonly string[]): string {
  const hyp = candidate.split('|||').join('').split('  ').join(' ');
  return ['SCORE', references.join(' ||| '), hyp].join(' ||| ');
}

/** Reads lines from a stream on demand. */
class LineReader {
  private buffer = '';
  private lines: string[] = [];
  private waiting: ((line: string | null) => void) | undefined;
  private ended = false;

  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.flush();
    });
    stream.on('end', () => {
      this.ended = true;
      this.flush();
    });
  }

  private flush(): void {
    if (this.waiting === undefined) return;
    if (this.lines.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.lines.shift()!);
    } else if (this.ended) {
      const w = this.waiting;
      this.waiting = undefined;
      w(null);
    }
  }

  next(): Promise<string | null> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.flush();
    });
  }
}

/**
 * METEOR of tokenized candidates against tokenized references, by the jar. Resolves to an
 * unavailable outcome (with the reason) when Java or the jar is missing or the run fails.
 */
export async function computeMeteor(refs: readonly (readonly string[])[], hyps: readonly string[], opts: MeteorOptions = {}): Promise<MeteorOutcome> {
  if (refs.length !== hyps.length) throw new Error(`METEOR: ${refs.length} reference sets for ${hyps.length} candidates`);
  const where = locateMeteor(opts);
  if (!where.available) return where;
  const args = ['-jar', `-Xmx${opts.maxHeap ?? '2G'}`, where.jar, '-', '-', '-stdio', '-l', 'en', '-norm'];
  const child = spawn(where.java, args, { cwd: path.dirname(where.jar), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let spawnError: Error | undefined;
  child.on('error', (e) => {
    spawnError = e;
  });
  child.stdin.on('error', () => {
    // The process died; reported below from the missing output.
  });
  const reader = new LineReader(child.stdout);
  const fail = (what: string): MeteorOutcome => {
    child.kill();
    const detail = spawnError?.message ?? stderr.trim().split('\n').slice(-3).join(' | ');
    return { available: false, reason: `METEOR run failed: ${what}${detail ? `; ${detail}` : ''}` };
  };
  try {
    for (let i = 0; i < hyps.length; i++) child.stdin.write(meteorScoreLine(hyps[i], refs[i]) + '\n');
    const stats: string[] = [];
    for (let i = 0; i < hyps.length; i++) {
      const line = await reader.next();
      if (line === null) return fail(`the jar stopped after ${i} of ${hyps.length} SCORE lines`);
      stats.push(line.trim());
    }
    child.stdin.write(['EVAL', ...stats].join(' ||| ') + '\n');
    const perImage: number[] = [];
    for (let i = 0; i <= hyps.length; i++) {
      const line = await reader.next();
      if (line === null) return fail(`the jar stopped after ${i} of ${hyps.length + 1} EVAL answers`);
      const v = Number(line.trim());
      if (line.trim() === '' || !Number.isFinite(v)) return fail(`the jar answered ${JSON.stringify(line.trim())} where a score was expected`);
      perImage.push(v);
    }
    const score = perImage.pop()!;
    child.stdin.end();
    return { available: true, score, perImage };
  } finally {
    if (child.exitCode === null) child.stdin.end();
  }
}
