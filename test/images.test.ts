// Image decoding (sharp) and torchvision's transforms, against fixtures computed with torchvision
// 0.14 on Pillow 9.4 (scripts/make_image_fixtures.py).
import * as fs from 'fs';
import * as path from 'path';
import {
  centerCrop, decodeImage, ImageError, ImagePreprocess, loadImageTensor, pixelsToTensor, resizeBilinear, toGrayscale, transformPixels,
  validatePreprocess,
} from '../lib/io/images';

const dir = path.join(__dirname, 'fixtures', 'images');
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
const b64 = (s: string) => Buffer.from(s, 'base64');
const f32 = (s: string) => { const b = b64(s); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };

interface Case { file: string; preprocess: string; size: number[]; pixels: string; shape: number[]; tensor: string }
const cases: Case[] = expected.cases;
// Every case must match PIL bit for bit, JPEG and lossy WebP included: sharp's bundled decoders
// (mozjpeg, libwebp 1.6) and Debian's (libjpeg-turbo, libwebp 1.2) give the same pixels on these files.
describe.each(cases.map((c) => [c.file, c.preprocess, c] as const))('%s with %s', (_f, _p, c) => {
  const p = expected.presets[c.preprocess] as ImagePreprocess;
  test('uint8 pixels after Grayscale/Resize/CenterCrop equal PIL exactly', async () => {
    const px = transformPixels(await decodeImage(fs.readFileSync(path.join(dir, c.file))), p);
    expect([px.height, px.width]).toEqual(c.size);
    expect(Buffer.from(px.data).equals(b64(c.pixels))).toBe(true);
  });
  test('the float tensor after ToTensor/Normalize equals torchvision exactly', async () => {
    const t = await loadImageTensor(fs.readFileSync(path.join(dir, c.file)), p);
    expect(t.shape).toEqual(c.shape);
    expect(Buffer.from(t.data.buffer).equals(Buffer.from(f32(c.tensor).buffer))).toBe(true);
  });
});

describe('transforms on synthetic pixels', () => {
  const ramp = (w: number, h: number, c: number) => ({ data: Uint8Array.from({ length: w * h * c }, (_, i) => (i * 37) % 256), width: w, height: h, channels: c });
  test('resize to the same size is the identity; sizes follow torchvision', () => {
    const px = ramp(5, 4, 3);
    expect(resizeBilinear(px, 5, 4)).toBe(px);
    const r = transformPixels(px, { grayscale: false, resize: 8, crop: null, mean: [0], std: [1], channels: 3 });
    expect([r.width, r.height]).toEqual([10, 8]); // int(8 * 5 / 4)
  });
  test('center crop uses Python round (half to even) and pads with zeros', () => {
    const px = ramp(5, 5, 1);
    const c = centerCrop(px, 2, 2); // (5-2)/2 = 1.5 -> 2
    expect(Array.from(c.data)).toEqual([px.data[12], px.data[13], px.data[17], px.data[18]]);
    const pad = centerCrop({ data: Uint8Array.from([9]), width: 1, height: 1, channels: 1 }, 3, 2); // pad l,t,r,b = 0,1,1,1
    expect(Array.from(pad.data)).toEqual([0, 0, 9, 0, 0, 0]);
  });
  test('PIL grayscale formula', () => {
    expect(Array.from(toGrayscale({ data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30]), width: 4, height: 1, channels: 3 }).data))
      .toEqual([76, 150, 29, 124]);
  });
  test('grey is replicated to 3 channels', () => {
    const t = pixelsToTensor({ data: Uint8Array.from([0, 255]), width: 2, height: 1, channels: 1 }, { grayscale: true, resize: null, crop: null, mean: [0], std: [1], channels: 3 });
    expect(Array.from(t)).toEqual([0, 1, 0, 1, 0, 1]);
  });
});

describe('bad input', () => {
  test('not an image, truncated image, empty', async () => {
    await expect(decodeImage(Buffer.from('hello, not an image'))).rejects.toThrow(/not a decodable image/);
    const png = fs.readFileSync(path.join(dir, 'rgb.png'));
    await expect(decodeImage(png.subarray(0, png.length / 2))).rejects.toThrow(ImageError);
    const jpg = fs.readFileSync(path.join(dir, 'photo.jpg'));
    await expect(decodeImage(jpg.subarray(0, Math.floor(jpg.length * 0.7)))).rejects.toThrow(/not a decodable image: .*premature end/i);
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/not a decodable image/);
  });
  test('preprocess validation names the field', () => {
    expect(() => validatePreprocess({ grayscale: false, resize: 0, crop: null, mean: [0], std: [1], channels: 3 })).toThrow(/preprocess.resize/);
    expect(() => validatePreprocess({ grayscale: false, resize: null, crop: null, mean: [0, 0], std: [1], channels: 3 })).toThrow(/preprocess.mean/);
    expect(() => validatePreprocess({ grayscale: false, resize: null, crop: null, mean: [0], std: [0], channels: 3 })).toThrow(/preprocess.std/);
  });
});
