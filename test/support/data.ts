/**
 * Real data for the tests.
 *
 * - In the repository, so every clone has it: 13 COCO val2017 photos whose Flickr licence allows
 *   redistribution (CC BY / CC BY-SA) and their 65 captions, in test/fixtures/coco-photos (its
 *   README names each photo's licence and source).
 * - Next to the repository, for the larger runs: `../shared/data` (or `TORCHCAP_SHARED_DATA`), with
 *   the whole COCO val2017 captions file, 50 photos, Flickr8k's captions. Read-only: copy before
 *   changing. Tests that need it skip, saying so, when it is absent.
 */
import * as fs from 'fs';
import * as path from 'path';

export const SHARED_DATA = process.env.TORCHCAP_SHARED_DATA ?? path.resolve(__dirname, '../../../shared/data');
export const sharedDataPresent = fs.existsSync(SHARED_DATA);
export const sharedData = (...parts: string[]): string => path.join(SHARED_DATA, ...parts);
export const NO_SHARED_DATA = `no shared data in ${SHARED_DATA} (set TORCHCAP_SHARED_DATA)`;

/** test/fixtures/coco-photos: `images/` and `captions.json` (COCO format, 5 captions an image). */
export const FIXTURE_PHOTOS = path.resolve(__dirname, '../fixtures/coco-photos');
export const FIXTURE_IMAGES = path.join(FIXTURE_PHOTOS, 'images');
export const FIXTURE_CAPTIONS = path.join(FIXTURE_PHOTOS, 'captions.json');
/** The 13 photos' file names, sorted. */
export const fixturePhotoNames: readonly string[] = fs.readdirSync(FIXTURE_IMAGES).filter((f) => f.endsWith('.jpg')).sort();
/** Their absolute paths, sorted. */
export const fixturePhotos: readonly string[] = fixturePhotoNames.map((f) => path.join(FIXTURE_IMAGES, f));
