/**
 * What a fresh process pays before its first call: requiring torchcap does not load sharp (and
 * libvips); captioning JPEGs never does (the addon decodes them); the first PNG does.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

test('sharp is loaded on the first image that needs it, not when torchcap is required', () => {
  const jpeg = path.join(__dirname, 'fixtures', 'coco-photos', 'images', '000000012280.jpg');
  const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'scripts', 'sharp-lazy.js'), jpeg], { encoding: 'utf8' }));
  expect(r.afterRequire).toBe(false);
  expect(r.afterJpeg).toBe(!r.nativeJpeg); // without the addon's JPEG decoder, sharp decodes JPEGs too
  expect(r.afterPng).toBe(true);
  expect(r.png).toEqual([2, 2]);
});
