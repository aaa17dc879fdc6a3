// ptq-node's public API: PyTorch eager-mode PTQ in TypeScript, over native int8 kernels.

export { Tensor } from './tensor';
export type { MemoryFormat } from './tensor';
export { QTensor } from './qtensor';
export { PtqError } from './errors';

// Modules (torch.nn, torch.ao.nn.intrinsic, torch.ao.nn.quantized)
export { Module, deepCopy } from './nn/module';
export type { ForwardHook } from './nn/module';
export {
  Sequential, Conv2d, BatchNorm2d, ReLU, ReLU6, Linear, Dropout, Identity, MaxPool2d, AdaptiveAvgPool2d, Flatten, relu,
} from './nn/layers';
export type { Conv2dOptions } from './nn/layers';
export { QuantStub, DeQuantStub } from './nn/stubs';
export { FloatFunctional } from './nn/functional';
export { FusedModule, ConvReLU2d, ConvReLU62d, LinearReLU } from './nn/intrinsic';
export { GraphModule, AvgPool2d, Activation, GRAPH_FORMAT, moduleFromDesc } from './nn/graph';
export type { GraphSpec, GraphNodeSpec, ModuleDesc, GraphOp, ActivationKind } from './nn/graph';
export { OnnxQLinearAdd, OnnxQGlobalAveragePool, OnnxQLinearConcat } from './nn/onnx-quantized';
export { Quantize, DeQuantize, QuantizedConv2d, QuantizedLinear, QFunctional, QuantizedDropout, QuantizedModule } from './nn/quantized';
export type { QWeight, ActQParams } from './nn/quantized';

// Quantization flow (torch.ao.quantization)
export {
  ObserverBase, MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver, HistogramObserver, withArgs,
} from './quantization/observer';
export type { ObserverFactory, ObserverOptions } from './quantization/observer';
export {
  QConfig, defaultQConfig, defaultPerChannelQConfig, getDefaultQConfig, defaultObserver, defaultWeightObserver,
  defaultHistogramObserver, defaultPerChannelWeightObserver,
} from './quantization/qconfig';
export { calculateQParams, calculateQminQmax, roundHalfEven } from './quantization/qparams';
export type { QParams, QScheme, QDtype } from './quantization/qparams';
export { fuseModules, fuseConvBnEval, fuseConvBnWeights } from './quantization/fuse';
export { prepare, propagateQConfig, observedModules } from './quantization/quantize';
export { convert, quantizeWeight } from './quantization/convert';
export { quantizeModel, loadFloatModel, qconfigByName, runBatches, QCONFIG_NAMES } from './workflow';
// Beyond PyTorch's PTQ: calibration observers, equalization, bias correction, sensitivity, mixed precision
export {
  PercentileObserver, EntropyObserver, MseObserver, StreamingHistogram, HistogramCalibrationObserver, klThresholdBin,
} from './quantization/calibration-observers';
export type { PercentileObserverOptions, MseObserverOptions, CalibrationObserverOptions } from './quantization/calibration-observers';
export {
  fullRangeQConfig, fullRangeMinMaxQConfig, percentileQConfig, entropyQConfig, mseQConfig, usesFullActivationRange, fullRangeWarning,
} from './quantization/qconfig-extra';
export {
  equalize, equalizePair, mobilenetV2Pairs, resnetPairs, absorbBiases, batchNormStd, outputChannelRanges, inputChannelRanges, weightLayer,
} from './quantization/equalize';
export type { LayerPair, EqualizeOptions, EqualizeResult } from './quantization/equalize';
export { empiricalBiasCorrection, quantizedBiasCorrection, analyticalBiasCorrection, fakeQuantWeight, weightLayerNames, channelMeans } from './quantization/bias-correction';
export { sensitivityAnalysis, keepInFloat } from './quantization/sensitivity';
export type { LayerSensitivity } from './quantization/sensitivity';
export { FloatIsland, floatIslands } from './nn/float-island';
export { ptqQuantize, applyFloatMethods, equalizationPairs, calibrationBatches } from './quantization/pipeline';
export type { PtqMethods, PtqOptions, PtqResult } from './quantization/pipeline';

// Models
export { mobilenetV2, MobileNetV2, InvertedResidual, ConvBNReLU, resnet18, resnet50, ResNet, BasicBlock, Bottleneck, createModel, ARCHITECTURES } from './models';
export type { ArchitectureSpec, FusableModel, Architecture } from './models';
export type { GraphArchitecture } from './io/model-file';

// Data and evaluation
export { FashionMnist, ImageFolder, IMAGE_EXTENSIONS, dataLoader, openDataset, FASHION_MNIST_PREPROCESS } from './data/datasets';
export type { Dataset, Batch, GreyPreprocess, OpenDatasetOptions } from './data/datasets';
export { evaluate, accuracyCounts, topk, AverageMeter } from './evaluate';
export type { EvalResult } from './evaluate';

// Files
export { loadWeights } from './io/weights';
export { loadStateDict } from './io/pth';
export { readSafetensors, writeSafetensors, encodeSafetensors } from './io/safetensors';
export { readIdx, loadFashionMnist } from './io/idx';
export { FormatError } from './io/types';
export type { RawTensor, DType } from './io/types';
export { saveQuantizedModel, loadQuantizedModel, readQuantizedModelFile, encodeQuantizedModel, MODEL_FORMAT } from './io/model-file';
export { exportOnnx, decodeOnnxModel } from './io/onnx-export';
export {
  decodeImage, loadImageTensor, transformPixels, pixelsToTensor, resizeBilinear, resizeShorter, centerCrop, toGrayscale,
  validatePreprocess, preprocessShape, loadSharp, ImageError, IMAGENET_PREPROCESS, FASHION_MNIST_IMAGE_PREPROCESS, PREPROCESS_PRESETS,
} from './io/images';
export type { ImagePreprocess, Pixels } from './io/images';
export type { QuantizedModelInfo, QuantizedModelFile, ModuleRecord } from './io/model-file';
export type { OnnxExportOptions } from './io/onnx-export';
export { importOnnx, OnnxImportError, SUPPORTED_FLOAT_OPS, FLOAT_ONLY_OPS } from './io/onnx-import';
export type { OnnxImportOptions } from './io/onnx-import';

// Fast inference (native plans)
export { compileModel, CompiledModel, planCompatible } from './inference';
export type { CompileOptions } from './inference';

// HTTP serving (ptq serve)
export { createServer } from './serve/server';
export type { ServeOptions, PredictServer } from './serve/server';
export { DynamicBatcher, OverloadError } from './serve/batcher';
export type { BatcherOptions, BatchResult, BatchRunner } from './serve/batcher';
export { Registry, Counter, Gauge, Histogram, parsePrometheus } from './serve/metrics';

// Kernels
export { getBackend, nativeBackend, referenceBackend, loadNative, nativeAvailable, ISA_LEVELS } from './kernels';
export type { Backend, BackendName, IsaName, QGemmSpec, QConv2dSpec } from './kernels';
export { setDefaultBackend, defaultBackend } from './kernels/default';
export { setFloatKernels, getFloatKernels } from './kernels/float-select';
export { setIsa, setNumThreads, getNumThreads } from './kernels/native';
