// ptq-node's qconfigs beyond PyTorch's: full 8-bit activation range (no reduce_range) with
// histogram, percentile, entropy or MSE activation observers, and per-channel symmetric weights.
//
// reduce_range exists for FBGEMM's AVX2 path, whose vpmaddubsw adds two u8*s8 products into a
// saturating int16 (255*127*2 > 32767). ptq-node's kernels never saturate: the AVX2 GEMM widens to
// int16 and uses vpmaddwd (native/avx2/qgemm_u8s8_avx2.cc), the VNNI kernels use vpdpbusd (int32), and
// the depthwise kernels widen as well. So a full-range model is exact here on every ISA; the range
// only matters when the model runs elsewhere (PyTorch fbgemm or ONNX Runtime on a CPU without VNNI).
import { EntropyObserver, MseObserver, PercentileObserver } from './calibration-observers';
import { HistogramObserver, MinMaxObserver, withArgs } from './observer';
import { defaultPerChannelWeightObserver, defaultWeightObserver, QConfig } from './qconfig';

/** Full-range (quint8 0..255) histogram activations, per-channel weights: what onednn's qconfig is in torch 1.13. */
export const fullRangeQConfig = new QConfig(HistogramObserver.withArgs({ reduceRange: false }), defaultPerChannelWeightObserver);

/** Full-range MinMax activations with the default qconfig's per-tensor weights. */
export const fullRangeMinMaxQConfig = new QConfig(MinMaxObserver.withArgs({ quantMin: 0, quantMax: 255 }), defaultWeightObserver);

/** Percentile (99.99 by default) activations, full range, per-channel weights. */
export function percentileQConfig(percentile = 99.99, perChannel = true): QConfig {
  return new QConfig(withArgs(PercentileObserver, { percentile }), perChannel ? defaultPerChannelWeightObserver : defaultWeightObserver);
}

/** Entropy (KL, TensorRT) activations, full range, per-channel weights. */
export function entropyQConfig(perChannel = true): QConfig {
  return new QConfig(withArgs(EntropyObserver, {}), perChannel ? defaultPerChannelWeightObserver : defaultWeightObserver);
}

/** MSE activations, full range, per-channel weights. */
export function mseQConfig(perChannel = true): QConfig {
  return new QConfig(withArgs(MseObserver, {}), perChannel ? defaultPerChannelWeightObserver : defaultWeightObserver);
}

/** Whether an activation observer of this qconfig uses the full quint8 range (quant_max 255). */
export function usesFullActivationRange(q: QConfig): boolean {
  const o = q.activation();
  return o.dtype === 'quint8' && o.quantMax - o.quantMin === 255;
}

/**
 * The warning for a full-range model, or null: ptq-node's own kernels are exact at any ISA, so it is
 * only a note about running the model with PyTorch fbgemm / ONNX Runtime on a CPU without VNNI.
 */
export function fullRangeWarning(q: QConfig, isa: string): string | null {
  if (!usesFullActivationRange(q)) return null;
  if (isa === 'avx512vnni' || isa === 'avxvnni') return null;
  return `note: the activations use the full 0..255 range. ptq-node's ${isa} kernels are exact with it (no int16 saturation), ` +
    'but PyTorch fbgemm or ONNX Runtime on this CPU (no VNNI) would use vpmaddubsw and could saturate; use a reduce_range qconfig (fbgemm, x86) for models run there';
}
