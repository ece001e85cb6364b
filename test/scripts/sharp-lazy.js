'use strict';
// Which modules a fresh process has loaded: after require('torchcap'), after decoding a JPEG, after
// decoding a PNG.
const path = require('path');
const torchcap = require('../../dist');

const sharpLoaded = () => Object.keys(require.cache).some((k) => k.split(path.sep).includes('sharp'));
const jpeg = process.argv[2];
(async () => {
  const out = { afterRequire: sharpLoaded() };
  out.nativeJpeg = require('../../dist/core/native').native.hasTurboJpeg; // JPEGs decoded by the addon
  await torchcap.decodeImage(jpeg, 64);
  out.afterJpeg = sharpLoaded();
  // a 2x2 PNG (RGB, 8-bit, every pixel (10, 20, 30); written by Pillow)
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001649444154789c63e4129163606060626060606060000002e600405ca5205b0000000049454e44ae426082', 'hex');
  const img = await torchcap.decodeImage(png, 2);
  out.afterPng = sharpLoaded();
  out.png = [img.width, img.height];
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
