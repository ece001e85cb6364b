/** Paths to the shared real data (read-only; copy before changing). */
import * as fs from 'fs';
import * as path from 'path';

export const SHARED_DATA = process.env.TORCHCAP_SHARED_DATA ?? path.resolve(__dirname, '../../../shared/data');
export const sharedDataPresent = fs.existsSync(SHARED_DATA);
export const sharedData = (...parts: string[]): string => path.join(SHARED_DATA, ...parts);
