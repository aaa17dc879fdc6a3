// Native accelerators of the observers' two hot loops (aminmax and histc counting), used when the
// addon loads; the TS loops in lib/quantization/observer.ts are the spec and the fallback.
import { loadNative } from './native';

/** The accelerated loops. */
export interface StatsKernels {
  /** [min, max, nan] of x[start, end), in the observers' scan order. */
  minmax(x: Float32Array, start: number, end: number): [number, number, number];
  /** Adds torch.histc bin counts of x over [left, right] with float32 width right - left. */
  histcCounts(x: Float32Array, left: number, right: number, width: number, counts: Int32Array): void;
}

let cached: StatsKernels | null | undefined;

/** The native stats kernels, or null when the addon is unavailable (or PTQ_STATS=reference). */
export function getStatsKernels(): StatsKernels | null {
  if (cached === undefined) {
    try {
      if (process.env.PTQ_STATS === 'reference') throw new Error('disabled');
      const b = loadNative().binding;
      cached = { minmax: (x, s, e) => b.minmaxF32(x, s, e), histcCounts: (x, l, r, w, c) => b.histcCountsF32(x, l, r, w, c) };
    } catch {
      cached = null;
    }
  }
  return cached;
}

/** Forces the TS loops (true) or re-enables native ones (false); for tests and benchmarks. */
export function useReferenceStats(reference: boolean): void {
  cached = reference ? null : undefined;
}
