/**
 * What a run records: the book's log line, the metrics JSONL file (one object a line: steps,
 * evaluations) and, from it, the loss curve.
 */
import * as fs from 'fs';
import { writeFileAtomicSync } from '../util/files';

/** The book's log line: `Epoch [0/5], Step [100/3236], Loss: 3.8600, Perplexity: 47.4649` (0-based, as the book prints). */
export function formatLogLine(e: { epoch: number; epochs: number; step: number; stepsPerEpoch: number; loss: number }): string {
  return `Epoch [${e.epoch}/${e.epochs}], Step [${e.step}/${e.stepsPerEpoch}], Loss: ${e.loss.toFixed(4)}, Perplexity: ${Math.exp(e.loss).toFixed(4)}`;
}

/** The metrics file of a run (`metrics.jsonl`). */
export class MetricsLog {
  constructor(readonly file: string) {}

  /** Appends one entry with the time. */
  record(entry: Record<string, unknown>): void {
    fs.appendFileSync(this.file, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
  }

  /**
   * Keeps the entries of steps up to `globalStep`: a fresh run (0) starts a new file, a resumed one
   * drops what the interrupted run logged after its checkpoint (it repeats those steps), and lines
   * cut short by a kill.
   */
  trim(globalStep: number): void {
    if (!fs.existsSync(this.file)) return;
    const kept = fs
      .readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => {
        try {
          const e = JSON.parse(line);
          return !(typeof e.globalStep === 'number' && e.globalStep > globalStep);
        } catch {
          return false;
        }
      });
    writeFileAtomicSync(this.file, kept.map((line) => line + '\n').join(''));
  }
}
