// Helpers shared by the benchmarks (bench.js, bench-floor.js, bench-gemm.js): seeded random weights
// and inputs, timing after a common warm-up, layer shapes and MAC counts, GEMM specs. Not a test.
'use strict';
const { performance } = require('perf_hooks');
const api = require('../dist');

/** Fills model's state dict with seeded random weights (He-scaled) and BN statistics; eval mode. */
function randomize(model, seed) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  for (const [k, t] of model.stateDict()) {
    const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
    for (let i = 0; i < t.numel; i++)
      t.data[i] = k.endsWith('running_var') ? 0.5 + rnd() : k.endsWith('running_mean') || k.endsWith('.bias') ? 0.05 * normal()
        : k.endsWith('num_batches_tracked') ? 0 : t.shape.length === 1 ? 0.8 + 0.4 * rnd() : normal() * Math.sqrt(2 / fan);
  }
  return model.eval();
}

/** n seeded random 3x224x224 images, values in [-2, 2). */
function images(n, seed) {
  let s = seed;
  const x = new Float32Array(n * 3 * 224 * 224);
  for (let i = 0; i < x.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; x[i] = (s / 2147483648 - 0.5) * 4; }
  return new api.Tensor(x, [n, 3, 224, 224]);
}

// Every engine gets the same warm-up: calls until 300 ms have passed (at least one, at most 200),
// so JIT tiers, buffer pools and page faults settle before timing.
const WARMUP_MS = 300, WARMUP_MAX = 200;

/** Median ms of reps calls of fn, after the common warm-up. */
function timeit(fn, reps) {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_MAX && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) fn();
  const t = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/** Median ms of reps awaited calls of fn, after the common warm-up. */
async function timeitAsync(fn, reps) {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_MAX && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) await fn();
  const t = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/**
 * Per sample, what one forward of model does: each conv / linear as a GEMM (m output pixels or
 * rows, k = input channels per group x kernel taps, n output channels per group, groups) and the
 * element count of each FloatFunctional add (float model, forward hooks).
 */
function layerShapes(model) {
  const gemms = [], adds = [], off = [];
  for (const m of model.modules()) {
    if (m instanceof api.Conv2d) {
      off.push(m.registerForwardHook((mod, _in, out) => {
        const g = mod.groups, [kh, kw] = mod.kernelSize;
        gemms.push({ m: out.numel / out.shape[0] / mod.outChannels, k: (mod.inChannels / g) * kh * kw, n: mod.outChannels / g, groups: g });
      }));
    } else if (m instanceof api.Linear) {
      off.push(m.registerForwardHook((mod, _in, out) => gemms.push({ m: out.numel / out.shape[0] / mod.outFeatures, k: mod.inFeatures, n: mod.outFeatures, groups: 1 })));
    } else if (m instanceof api.FloatFunctional) {
      const post = new Map(m.namedChildren()).get('activation_post_process');  // sees every add's output
      off.push(post.registerForwardHook((_m, _in, out) => adds.push(out.numel / out.shape[0])));
    }
  }
  model.call(images(1, 1));
  for (const f of off) f();
  return { gemms, adds };
}

/** Multiply-accumulates of one sample through model's convs and linears. */
function countMacs(model) {
  return layerShapes(model).gemms.reduce((s, g) => s + g.m * g.k * g.n * g.groups, 0);
}

/**
 * A GEMM spec with fixed pseudo-random int8 weights and plain qparams (the kernels' speed depends
 * on neither); out sets the output zero point and clamp bounds.
 */
function gemmSpec(k, n, out) {
  const weight = new Int8Array(n * k);
  for (let i = 0; i < weight.length; i++) weight[i] = ((i * 2654435761) >>> 24) - 128;
  return {
    k, n, weight, inputScale: 0.02, inputZeroPoint: 3, weightScale: new Float32Array(n).fill(0.004),
    bias: new Float32Array(n).fill(0.1), outputScale: 0.05, ...out,
  };
}

module.exports = { randomize, images, timeit, timeitAsync, countMacs, layerShapes, gemmSpec };
