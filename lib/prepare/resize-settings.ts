/**
 * The encoding settings an output folder of `resizeImages` was made with, recorded in it
 * (`.torchcap-resize.json`, hidden as the folder's other bookkeeping is): a rerun skips finished
 * files, so it must not run with other settings and leave a folder of mixed files.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomicSync } from '../util/files';
import type { JpegSubsampling } from './resize';

/** How the files of an output folder were encoded. */
export interface EncodingSettings {
  quality: number | null;
  subsampling: JpegSubsampling;
  colorManaged: boolean;
  autoOrient: boolean;
}
const SETTINGS_FILE = '.torchcap-resize.json';

function describeSettings(s: EncodingSettings): string {
  return `quality ${s.quality ?? 'default'}, subsampling ${s.subsampling}, colour management ${s.colorManaged ? 'on' : 'off'}, auto-orient ${s.autoOrient ? 'on' : 'off'}`;
}

/**
 * A rerun skips finished files, so it must use the settings that made them: an output folder
 * records them (a hidden file) when its first run starts, and a rerun with others is refused.
 * A folder made before the record existed is used as it is.
 */
export async function checkSettings(output: string, settings: EncodingSettings): Promise<void> {
  const file = path.join(output, SETTINGS_FILE);
  const text = await fs.promises.readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    let before: EncodingSettings | undefined;
    try {
      before = JSON.parse(text) as EncodingSettings;
    } catch {
      throw new Error(`${file} is not valid JSON: remove it to resize into this folder`);
    }
    const keys = ['quality', 'subsampling', 'colorManaged', 'autoOrient'] as const;
    if (keys.some((k) => before![k] !== settings[k])) {
      throw new Error(
        `${output} holds images resized with ${describeSettings(before)}; this run asks for ${describeSettings(settings)}. ` +
          'A rerun keeps finished files, so the folder would mix both: resize into a fresh folder (or empty this one)',
      );
    }
    return;
  }
  const entries = await fs.promises.readdir(output);
  if (entries.every((e) => e.startsWith('.'))) writeFileAtomicSync(file, JSON.stringify(settings) + '\n');
}
