// The PyTorch static quantization tutorial's MobileNetV2, module for module and key for key
// (../shared/seed/ and scripts/tutorial_mobilenet_v2.py): QuantStub/DeQuantStub, FloatFunctional
// skip adds, ReLU instead of ReLU6, x.mean([2, 3]) before the classifier, and fuseModel().
import { BatchNorm2d, Conv2d, Dropout, Linear, ReLU, releaseActivation, Sequential } from '../nn/layers';
import { chunkedForward, registerSampleWise } from '../nn/chunked';
import { FloatFunctional } from '../nn/functional';
import { Module } from '../nn/module';
import { DeQuantStub, QuantStub } from '../nn/stubs';
import { fuseModules } from '../quantization/fuse';
import { QTensor } from '../qtensor';
import { Tensor } from '../tensor';

/** _make_divisible from the tutorial (TF's channel rounding). */
export function makeDivisible(v: number, divisor: number, minValue?: number): number {
  const min = minValue ?? divisor;
  let newV = Math.max(min, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

/** Conv2d + BatchNorm2d + ReLU as a Sequential named '0', '1', '2'. */
export class ConvBNReLU extends Sequential {
  constructor(inPlanes: number, outPlanes: number, kernelSize = 3, stride = 1, groups = 1) {
    const padding = Math.floor((kernelSize - 1) / 2);
    super(
      new Conv2d(inPlanes, outPlanes, kernelSize, { stride, padding, groups, bias: false }),
      new BatchNorm2d(outPlanes, 1e-5, 0.1),
      new ReLU(false),
    );
  }
}

/** The inverted residual block with a FloatFunctional skip add. */
export class InvertedResidual extends Module {
  readonly useResConnect: boolean;
  constructor(inp: number, oup: number, readonly stride: number, expandRatio: number) {
    super();
    if (stride !== 1 && stride !== 2) throw new RangeError(`stride must be 1 or 2, got ${stride}`);
    // Python's round() is half-to-even; int(round(inp * expand_ratio)).
    const prod = inp * expandRatio;
    const hidden = Math.abs(prod - Math.floor(prod) - 0.5) < 1e-12 ? 2 * Math.round(prod / 2) : Math.round(prod);
    this.useResConnect = stride === 1 && inp === oup;
    const layers: Module[] = [];
    if (expandRatio !== 1) layers.push(new ConvBNReLU(inp, hidden, 1));
    layers.push(new ConvBNReLU(hidden, hidden, 3, stride, hidden), new Conv2d(hidden, oup, 1, { bias: false }), new BatchNorm2d(oup, 1e-5, 0.1));
    this.addModule('conv', new Sequential(...layers));
    this.addModule('skip_add', new FloatFunctional());
  }
  get conv(): Sequential {
    return this._modules.get('conv') as Sequential;
  }
  get skipAdd(): FloatFunctional {
    return this._modules.get('skip_add') as FloatFunctional;
  }
  forward(x: unknown): Tensor {
    const y = this.conv.call(x) as Tensor;
    if (!this.useResConnect) return y;
    const out = this.skipAdd.add(x as Tensor, y);
    releaseActivation(y, [x, out], [this.conv, this.skipAdd]);
    return out;
  }
}

/** MobileNetV2 options (the tutorial's constructor arguments). */
export interface MobileNetV2Options {
  numClasses?: number;
  widthMult?: number;
  invertedResidualSetting?: number[][];
  roundNearest?: number;
}

/** The tutorial's quantizable MobileNetV2. */
export class MobileNetV2 extends Module {
  readonly lastChannel: number;
  readonly numClasses: number;
  readonly widthMult: number;
  constructor(o: MobileNetV2Options = {}) {
    super();
    const numClasses = o.numClasses ?? 1000, widthMult = o.widthMult ?? 1.0, roundNearest = o.roundNearest ?? 8;
    this.numClasses = numClasses;
    this.widthMult = widthMult;
    const setting = o.invertedResidualSetting ?? [
      [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
    ];
    if (setting.length === 0 || setting[0].length !== 4)
      throw new RangeError(`inverted_residual_setting should be non-empty or a 4-element list, got ${JSON.stringify(setting)}`);
    let inputChannel = makeDivisible(32 * widthMult, roundNearest);
    this.lastChannel = makeDivisible(1280 * Math.max(1.0, widthMult), roundNearest);
    const features: Module[] = [new ConvBNReLU(3, inputChannel, 3, 2)];
    for (const [t, c, n, s] of setting) {
      const outputChannel = makeDivisible(c * widthMult, roundNearest);
      for (let i = 0; i < n; i++) {
        features.push(new InvertedResidual(inputChannel, outputChannel, i === 0 ? s : 1, t));
        inputChannel = outputChannel;
      }
    }
    features.push(new ConvBNReLU(inputChannel, this.lastChannel, 1));
    this.addModule('features', new Sequential(...features));
    this.addModule('quant', new QuantStub());
    this.addModule('dequant', new DeQuantStub());
    this.addModule('classifier', new Sequential(new Dropout(0.2), new Linear(this.lastChannel, numClasses)));
  }
  forward(input: unknown): Tensor {
    // An eval-mode float batch runs in chunks of samples that stay in cache (see nn/chunked).
    return chunkedForward(this, input, (x) => this.forwardBatch(x));
  }
  private forwardBatch(input: unknown): Tensor {
    // Float model: Tensors throughout. Converted model: QTensors between quant and dequant.
    const features = this._modules.get('features')!, classifier = this._modules.get('classifier')!;
    const q = this._modules.get('quant')!.call(input) as Tensor | QTensor;
    const f = features.call(q) as Tensor | QTensor;
    const pooled = f.mean([2, 3]);
    releaseActivation(f, [input, q, pooled], [features]);
    const logits = classifier.call(pooled) as Tensor | QTensor;
    releaseActivation(pooled, [input, q, logits], [classifier]);
    return this._modules.get('dequant')!.call(logits) as Tensor;
  }
  /** fuse_model(): Conv+BN+ReLU in every ConvBNReLU, Conv+BN in every inverted residual (in place). */
  fuseModel(): void {
    for (const m of [...this.modules()]) {
      if (m instanceof ConvBNReLU) fuseModules(m, ['0', '1', '2'], true);
      if (m instanceof InvertedResidual) {
        const conv = m.conv;
        for (let idx = 0; idx < conv.length; idx++)
          if (conv._modules.get(String(idx)) instanceof Conv2d) fuseModules(conv, [String(idx), String(idx + 1)], true);
      }
    }
  }
}

registerSampleWise(ConvBNReLU);
registerSampleWise(InvertedResidual);
registerSampleWise(MobileNetV2);

/** A tutorial MobileNetV2. */
export function mobilenetV2(o: MobileNetV2Options = {}): MobileNetV2 {
  return new MobileNetV2(o);
}
