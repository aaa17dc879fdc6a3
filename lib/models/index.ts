// The model zoo, by architecture name (the CLI's --arch).
import { Module } from '../nn/module';
import { mobilenetV2 } from './mobilenet_v2';
import { resnet18, resnet50 } from './resnet';

export { MobileNetV2, mobilenetV2, InvertedResidual, ConvBNReLU, makeDivisible } from './mobilenet_v2';
export { ResNet, resnet18, resnet50, BasicBlock, Bottleneck } from './resnet';

/** A zoo model that can fuse itself (fuse_model()). */
export interface FusableModel extends Module {
  fuseModel(): void;
}

/** Architecture names the zoo knows. */
export const ARCHITECTURES = ['mobilenet_v2', 'resnet18', 'resnet50'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** How to rebuild a zoo model (stored in quantized model files). */
export interface ArchitectureSpec {
  arch: Architecture;
  numClasses: number;
  widthMult?: number;
  /** MobileNetV2's [t, c, n, s] rows when not the default. */
  invertedResidualSetting?: number[][];
}

/** Builds a zoo model from its spec (float, training mode, zero weights until loaded). */
export function createModel(spec: ArchitectureSpec): FusableModel {
  switch (spec.arch) {
    case 'mobilenet_v2': return mobilenetV2({ numClasses: spec.numClasses, widthMult: spec.widthMult ?? 1.0, invertedResidualSetting: spec.invertedResidualSetting });
    case 'resnet18': return resnet18(spec.numClasses);
    case 'resnet50': return resnet50(spec.numClasses);
    default: throw new RangeError(`unknown architecture '${String((spec as ArchitectureSpec).arch)}'; known: ${ARCHITECTURES.join(', ')}`);
  }
}
