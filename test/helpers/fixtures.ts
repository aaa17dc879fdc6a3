// Loading helpers for the committed golden fixtures (made by scripts/make_fixtures.py).
import * as fs from 'fs';
import * as path from 'path';
import { MobileNetV2 } from '../../lib/models';
import { loadWeights } from '../../lib/io/weights';
import { Tensor } from '../../lib/tensor';
import { Module } from '../../lib/nn/module';
import { convert } from '../../lib/quantization/convert';
import { prepare } from '../../lib/quantization/quantize';
import { qconfigByName } from '../../lib/workflow';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const SMALL = path.join(FIXTURES, 'mnv2-small');

/** The expected.json of the small MobileNetV2 fixture. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function smallExpected(): any {
  return JSON.parse(fs.readFileSync(path.join(SMALL, 'expected.json'), 'utf8'));
}

/** The small tutorial MobileNetV2 with the fixture's float weights, in eval mode. */
export function smallModel(): MobileNetV2 {
  const e = smallExpected();
  const m = new MobileNetV2({ numClasses: e.num_classes, widthMult: e.width_mult, invertedResidualSetting: e.setting });
  m.loadStateDict(loadWeights(path.join(SMALL, 'weights.pth')));
  return m.eval();
}

/** The fixture input [8, 3, 28, 28]. */
export function smallInput(): Tensor {
  const b = fs.readFileSync(path.join(SMALL, 'input.bin'));
  const f = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return new Tensor(f, [8, 3, 28, 28]);
}

/** Rows [start, start+count) of a batch tensor. */
export function rows(t: Tensor, start: number, count: number): Tensor {
  const per = t.numel / t.shape[0];
  return new Tensor(t.data.slice(start * per, (start + count) * per), [count, ...t.shape.slice(1)]);
}

/** The small MobileNetV2 fused, calibrated on the fixture input (2 batches of 4) and converted. */
export function quantizedSmall(qconfig: string): Module {
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName(qconfig);
  prepare(m, true);
  const x = smallInput();
  for (let i = 0; i < 8; i += 4) m.call(rows(x, i, 4));
  return convert(m);
}
