/**
 * Progress reporting for long runs (resizing 123k images, downloading 19 GB, training epochs).
 *
 * On a terminal it draws a `cli-progress` bar with the rate (items/s or MB/s) and the ETA. When the
 * stream is not a terminal (a log file, a pipe, CI) it draws nothing and prints a plain line now
 * and then instead (`resize: 1200/82783 (1.4%) 85.3 img/s, ETA 16m05s`), plus one at the end.
 * `quiet` silences it altogether. It writes to stderr by default, so that a command's results on
 * stdout stay clean when redirected.
 */
import type { SingleBar } from 'cli-progress';

export type ProgressUnit = 'items' | 'bytes';

export interface ProgressOptions {
  /** Shown before the bar and at the start of each plain line. */
  label: string;
  /** The end value (items or bytes); 0 or less when unknown. */
  total: number;
  /** 'items' shows `value/total` and `<itemName>/s`; 'bytes' shows MB and MB/s. Default 'items'. */
  unit?: ProgressUnit;
  /** The word for one item in the rate, e.g. 'img' gives `img/s`. Default 'it'. */
  itemName?: string;
  /** The value to start from (a resumed download). Default 0. */
  start?: number;
  /** No output at all. */
  quiet?: boolean;
  /** Where to write. Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Force the bar (true) or plain lines (false) instead of asking `stream.isTTY`. */
  tty?: boolean;
  /** Least time between two plain lines, in ms. Default 10000. */
  intervalMs?: number;
  /**
   * Where `log` lines go (default: `stream`). When it is a terminal and the bar is drawn, they are
   * printed above the bar instead, so that a run's log lines (stdout) and its bar (stderr) share a
   * terminal without breaking each other, and a redirected stdout still gets every line.
   */
  logTo?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface ProgressBar {
  /** Sets the current value (and the total, if it changed). */
  update(value: number, total?: number): void;
  /** Adds `step` (default 1) to the current value. */
  increment(step?: number): void;
  /** Prints a line without breaking the bar. */
  log(line: string): void;
  /** Ends the bar (or prints the last plain line). Safe to call twice. */
  stop(): void;
  /** The current value. */
  readonly value: number;
}

const MB = 1024 * 1024;

/** `1536` → `1.5 KiB`, `13510573713` → `12.58 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(2)} ${units[i]}`;
}

/** Seconds as `45s`, `16m05s` or `2h38m`; `?` when not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rate over a sliding window of recent samples (so a resumed or stalled run shows the current speed). */
class RateMeter {
  private samples: Array<[number, number]> = [];
  constructor(private readonly windowMs = 10_000) {}

  add(value: number, now = Date.now()): void {
    const n = this.samples.length;
    // At most one sample per 100 ms: a fast download updates on every 64 KiB chunk.
    if (n >= 2 && now - this.samples[n - 2][0] < 100) this.samples[n - 1] = [now, value];
    else this.samples.push([now, value]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  /** Units per second, or NaN before two samples 100 ms apart. */
  rate(): number {
    if (this.samples.length < 2) return NaN;
    const [t0, v0] = this.samples[0];
    const [t1, v1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 100 ? NaN : ((v1 - v0) * 1000) / (t1 - t0);
  }
}

/** A progress display; see the module comment for what it prints where. */
export function createProgress(options: ProgressOptions): ProgressBar {
  const unit = options.unit ?? 'items';
  const itemName = options.itemName ?? 'it';
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? Boolean(stream.isTTY);
  const intervalMs = options.intervalMs ?? 10_000;
  let total = options.total;
  let value = options.start ?? 0;
  let stopped = false;
  const logTo = options.logTo ?? stream;
  const meter = new RateMeter();
  meter.add(value);

  const rateText = (): string => {
    const r = meter.rate();
    if (!Number.isFinite(r)) return unit === 'bytes' ? '- MB/s' : `- ${itemName}/s`;
    return unit === 'bytes' ? `${(r / MB).toFixed(1)} MB/s` : `${r.toFixed(1)} ${itemName}/s`;
  };
  const amountText = (v: number): string => (unit === 'bytes' ? formatBytes(v) : String(v));
  const etaSeconds = (): number => {
    const r = meter.rate();
    return total > 0 && r > 0 ? (total - value) / r : NaN;
  };

  if (options.quiet) {
    return {
      update(v, t) {
        value = v;
        if (t !== undefined) total = t;
      },
      increment(step = 1) {
        value += step;
      },
      log() {},
      stop() {},
      get value() {
        return value;
      },
    };
  }

  if (tty) {
    // Loaded here, on the first bar drawn: an app that only captions does not pay for it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { MultiBar } = require('cli-progress') as typeof import('cli-progress');
    const multi = new MultiBar({
      stream,
      format: `${options.label} [{bar}] {percentage}% | {amount}/{totalAmount} | {rate} | ETA {remaining}`,
      hideCursor: true,
      fps: 5,
      barsize: 30,
      clearOnComplete: false,
      stopOnComplete: false,
      // Let the process end normally on Ctrl-C: the run's own handlers decide what to keep.
      gracefulExit: false,
    });
    const payload = () => ({
      amount: amountText(value),
      totalAmount: total > 0 ? amountText(total) : '?',
      rate: rateText(),
      remaining: formatDuration(etaSeconds()),
    });
    const bar: SingleBar = multi.create(Math.max(total, 1), value, payload());
    return {
      update(v, t) {
        value = v;
        if (t !== undefined && t !== total) {
          total = t;
          bar.setTotal(Math.max(total, 1));
        }
        meter.add(value);
        bar.update(value, payload());
      },
      increment(step = 1) {
        this.update(value + step);
      },
      log(line) {
        const text = line.endsWith('\n') ? line : `${line}\n`;
        if (logTo === stream || logTo.isTTY) multi.log(text);
        else logTo.write(text);
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.update(value, payload());
        multi.stop();
      },
      get value() {
        return value;
      },
    };
  }

  // Not a terminal: a plain line at most every intervalMs, and one at the end.
  const started = Date.now();
  let lastLine = started;
  let updated = false;
  const line = (final: boolean): string => {
    const pct = total > 0 ? ` (${((100 * value) / total).toFixed(1)}%)` : '';
    const of = total > 0 ? `/${amountText(total)}` : '';
    if (final) {
      const secs = (Date.now() - started) / 1000;
      return `${options.label}: ${amountText(value)}${of}${pct} in ${formatDuration(secs)}\n`;
    }
    return `${options.label}: ${amountText(value)}${of}${pct} ${rateText()}, ETA ${formatDuration(etaSeconds())}\n`;
  };
  return {
    update(v, t) {
      value = v;
      if (t !== undefined) total = t;
      updated = true;
      const now = Date.now();
      meter.add(value, now);
      if (now - lastLine >= intervalMs) {
        lastLine = now;
        stream.write(line(false));
      }
    },
    increment(step = 1) {
      this.update(value + step);
    },
    log(text) {
      logTo.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      // A run that never started (a missing folder, a refused download) gets no summary line.
      if (updated) stream.write(line(true));
    },
    get value() {
      return value;
    },
  };
}
