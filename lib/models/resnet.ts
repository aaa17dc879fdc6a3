// torchvision's quantizable ResNet (torchvision/models/quantization/resnet.py): QuantStub in,
// DeQuantStub out, FloatFunctional add_relu for the residuals, fuseModel() as torchvision's.
import { AdaptiveAvgPool2d, BatchNorm2d, callChain, Conv2d, Linear, MaxPool2d, ReLU, releaseActivation, Sequential } from '../nn/layers';
import { chunkedForward, registerSampleWise } from '../nn/chunked';
import { FloatFunctional } from '../nn/functional';
import { Module } from '../nn/module';
import { DeQuantStub, QuantStub } from '../nn/stubs';
import { fuseModules } from '../quantization/fuse';
import { QTensor } from '../qtensor';
import { Tensor } from '../tensor';

const conv3x3 = (i: number, o: number, stride = 1) => new Conv2d(i, o, 3, { stride, padding: 1, bias: false });
const conv1x1 = (i: number, o: number, stride = 1) => new Conv2d(i, o, 1, { stride, bias: false });

function call(m: Module, name: string, x: unknown): Tensor {
  return m._modules.get(name)!.call(x) as Tensor;
}

/**
 * A block's residual: add_relu(out, identity), identity = downsample(x) or x itself; `out` (made
 * by the children `outFrom`) and a downsampled identity are dead afterwards and recycled.
 */
function residual(block: Module, out: Tensor, outFrom: readonly string[], x: unknown, add: string): Tensor {
  const addMod = block._modules.get(add) as FloatFunctional, down = block._modules.get('downsample');
  const identity = down ? (down.call(x) as Tensor) : (x as Tensor);
  const y = addMod.add_relu(out, identity);
  releaseActivation(out, [x, y, identity], [...outFrom.map((n) => block._modules.get(n)!), addMod]);
  if (down) releaseActivation(identity, [x, y], [down, addMod]);
  return y;
}

/** QuantizableBasicBlock (ResNet-18/34). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  constructor(inplanes: number, planes: number, readonly stride = 1, downsample: Sequential | null = null) {
    super();
    this.addModule('conv1', conv3x3(inplanes, planes, stride));
    this.addModule('bn1', new BatchNorm2d(planes));
    this.addModule('relu', new ReLU());
    this.addModule('conv2', conv3x3(planes, planes));
    this.addModule('bn2', new BatchNorm2d(planes));
    if (downsample) this.addModule('downsample', downsample);
    this.addModule('add_relu', new FloatFunctional());
  }
  forward(x: unknown): Tensor {
    const out = callChain(this, ['conv1', 'bn1', 'relu', 'conv2', 'bn2'], x) as Tensor;
    return residual(this, out, ['conv2', 'bn2'], x, 'add_relu');
  }
  /** Fuses conv1+bn1+relu, conv2+bn2 and the downsample conv+bn, in place. */
  typeName(): string {
    return 'QuantizableBasicBlock';
  }
  fuseModel(): void {
    fuseModules(this, [['conv1', 'bn1', 'relu'], ['conv2', 'bn2']], true);
    const d = this._modules.get('downsample');
    if (d) fuseModules(d, ['0', '1'], true);
  }
}

/** QuantizableBottleneck (ResNet-50/101/152). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  constructor(inplanes: number, planes: number, readonly stride = 1, downsample: Sequential | null = null) {
    super();
    const width = planes;
    this.addModule('conv1', conv1x1(inplanes, width));
    this.addModule('bn1', new BatchNorm2d(width));
    this.addModule('conv2', conv3x3(width, width, stride));
    this.addModule('bn2', new BatchNorm2d(width));
    this.addModule('conv3', conv1x1(width, planes * 4));
    this.addModule('bn3', new BatchNorm2d(planes * 4));
    this.addModule('relu', new ReLU());
    if (downsample) this.addModule('downsample', downsample);
    this.addModule('skip_add_relu', new FloatFunctional());
    this.addModule('relu1', new ReLU());
    this.addModule('relu2', new ReLU());
  }
  forward(x: unknown): Tensor {
    const out = callChain(this, ['conv1', 'bn1', 'relu1', 'conv2', 'bn2', 'relu2', 'conv3', 'bn3'], x) as Tensor;
    return residual(this, out, ['conv3', 'bn3'], x, 'skip_add_relu');
  }
  /** Fuses the three conv+bn(+relu) groups and the downsample, in place. */
  typeName(): string {
    return 'QuantizableBottleneck';
  }
  fuseModel(): void {
    fuseModules(this, [['conv1', 'bn1', 'relu1'], ['conv2', 'bn2', 'relu2'], ['conv3', 'bn3']], true);
    const d = this._modules.get('downsample');
    if (d) fuseModules(d, ['0', '1'], true);
  }
}

type Block = typeof BasicBlock | typeof Bottleneck;

/** torchvision's QuantizableResNet. */
export class ResNet extends Module {
  private inplanes = 64;
  constructor(readonly block: Block, readonly layers: number[], readonly numClasses = 1000) {
    super();
    this.addModule('conv1', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }));
    this.addModule('bn1', new BatchNorm2d(64));
    this.addModule('relu', new ReLU());
    this.addModule('maxpool', new MaxPool2d(3, 2, 1));
    [64, 128, 256, 512].forEach((planes, i) => this.addModule(`layer${i + 1}`, this.makeLayer(planes, layers[i], i === 0 ? 1 : 2)));
    this.addModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.addModule('fc', new Linear(512 * block.expansion, numClasses));
    this.addModule('quant', new QuantStub());
    this.addModule('dequant', new DeQuantStub());
  }
  private makeLayer(planes: number, blocks: number, stride: number): Sequential {
    const B = this.block;
    let downsample: Sequential | null = null;
    if (stride !== 1 || this.inplanes !== planes * B.expansion)
      downsample = new Sequential(conv1x1(this.inplanes, planes * B.expansion, stride), new BatchNorm2d(planes * B.expansion));
    const mods: Module[] = [new B(this.inplanes, planes, stride, downsample)];
    this.inplanes = planes * B.expansion;
    for (let i = 1; i < blocks; i++) mods.push(new B(this.inplanes, planes));
    return new Sequential(...mods);
  }
  forward(input: unknown): Tensor {
    // An eval-mode float batch runs in chunks of samples that stay in cache (see nn/chunked).
    return chunkedForward(this, input, (x) => this.forwardBatch(x));
  }
  private forwardBatch(input: unknown): Tensor {
    const pooled = callChain(this, ['quant', 'conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool'], input) as Tensor | QTensor;
    const logits = call(this, 'fc', pooled.flatten(1));
    releaseActivation(pooled, [input, logits], [this._modules.get('avgpool')!, this._modules.get('fc')!]);
    return call(this, 'dequant', logits);
  }
  typeName(): string {
    return 'QuantizableResNet';
  }
  /** fuse_model(): the stem conv1+bn1+relu and every block (in place). */
  fuseModel(): void {
    fuseModules(this, ['conv1', 'bn1', 'relu'], true);
    for (const m of [...this.modules()]) if (m instanceof BasicBlock || m instanceof Bottleneck) m.fuseModel();
  }
}

registerSampleWise(BasicBlock);
registerSampleWise(Bottleneck);
registerSampleWise(ResNet);

/** Quantizable ResNet-18. */
export function resnet18(numClasses = 1000): ResNet {
  return new ResNet(BasicBlock, [2, 2, 2, 2], numClasses);
}

/** Quantizable ResNet-50. */
export function resnet50(numClasses = 1000): ResNet {
  return new ResNet(Bottleneck, [3, 4, 6, 3], numClasses);
}
