// QConfig and the default observer factories of torch 1.13 (torch/ao/quantization/qconfig.py
// L136-257 and observer.py L1504-1546). Reprs match torch's so configs can be compared as text.

import {
  HistogramObserver,
  MinMaxObserver,
  ObserverBase,
  ObserverFactory,
  PerChannelMinMaxObserver,
} from './observer';

/** Observer factories for the activations and the weights of a layer (torch QConfig namedtuple). */
export class QConfig {
  constructor(
    readonly activation: ObserverFactory<ObserverBase, any>,
    readonly weight: ObserverFactory<ObserverBase, any>,
  ) {
    // torch rejects observer instances: a QConfig must hold factories so each layer gets fresh observers
    if (activation instanceof ObserverBase || weight instanceof ObserverBase) {
      throw new Error(
        'QConfig received observer instance, please pass observer class instead. ' +
          'Use MyObserver.with_args(x=1) to override arguments to constructor if needed',
      );
    }
  }

  /** `QConfig(activation=..., weight=...)` as torch prints it. */
  toString(): string {
    return `QConfig(activation=${String(this.activation)}, weight=${String(this.weight)})`;
  }
}

/** Backends accepted by getDefaultQConfig. */
export type QuantBackend = 'fbgemm' | 'x86' | 'qnnpack' | 'onednn';

/** default_observer: MinMaxObserver restricted to quint8 [0, 127]. */
export const defaultObserver = MinMaxObserver.withArgs({ quantMin: 0, quantMax: 127 });

/** default_weight_observer: symmetric per-tensor qint8 MinMaxObserver. */
export const defaultWeightObserver = MinMaxObserver.withArgs({ dtype: 'qint8', qscheme: 'per_tensor_symmetric' });

/** default_histogram_observer: HistogramObserver restricted to quint8 [0, 127]. */
export const defaultHistogramObserver = HistogramObserver.withArgs({ quantMin: 0, quantMax: 127 });

/** default_per_channel_weight_observer: symmetric per-channel qint8 (ch_axis 0). */
export const defaultPerChannelWeightObserver = PerChannelMinMaxObserver.withArgs({
  dtype: 'qint8',
  qscheme: 'per_channel_symmetric',
});

/** weight_observer_range_neg_127_to_127: symmetric qint8 in [-127, 127] with eps 2**-12. */
export const weightObserverRangeNeg127To127 = MinMaxObserver.withArgs({
  dtype: 'qint8',
  qscheme: 'per_tensor_symmetric',
  quantMin: -127,
  quantMax: 127,
  eps: 2 ** -12,
});

/** default_qconfig: MinMax activations [0, 127] and symmetric per-tensor weights. */
export const defaultQConfig = new QConfig(defaultObserver, defaultWeightObserver);

/** default_per_channel_qconfig: MinMax activations [0, 127] and symmetric per-channel weights. */
export const defaultPerChannelQConfig = new QConfig(defaultObserver, defaultPerChannelWeightObserver);

/** torch 1.13 get_default_qconfig(backend, version=0); unknown backends get default_qconfig, as in torch. */
export function getDefaultQConfig(backend: QuantBackend | string = 'fbgemm'): QConfig {
  switch (backend) {
    case 'fbgemm':
    case 'x86': // x86 reduces the activation range like fbgemm (vpmaddubsw overflow)
      return new QConfig(HistogramObserver.withArgs({ reduceRange: true }), defaultPerChannelWeightObserver);
    case 'qnnpack':
      return new QConfig(HistogramObserver.withArgs({ reduceRange: false }), defaultWeightObserver);
    case 'onednn':
      return new QConfig(HistogramObserver.withArgs({ reduceRange: false }), defaultPerChannelWeightObserver);
    default:
      return defaultQConfig;
  }
}
