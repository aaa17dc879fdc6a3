// Eager float forward recycles dead activations (Sequential hands a child's input back once the
// next child has consumed it): outputs stay identical, buffers are reused, and anything a user
// hook kept is never overwritten.
import { Conv2d, Identity, ReLU, Sequential } from '../lib/nn/layers';
import { resnet18 } from '../lib/models';
import { Module } from '../lib/nn/module';
import { outputBuffer, recycleBuffer, Tensor } from '../lib/tensor';
import { smallInput, smallModel } from './helpers/fixtures';

function seq(): Sequential {
  const convs = [new Conv2d(3, 8, 3, { padding: 1 }), new Conv2d(8, 8, 3, { padding: 1 }), new Conv2d(8, 4, 1)];
  convs.forEach((c, k) => {
    c.weight.data.forEach((_, i) => (c.weight.data[i] = Math.sin(i * 0.7 + k) * 0.3));
    c.bias!.data.forEach((_, i) => (c.bias!.data[i] = 0.01 * i));
  });
  return new Sequential(convs[0], new ReLU(), convs[1], new ReLU(), convs[2]).eval() as Sequential;
}

const x = new Tensor(new Float32Array(2 * 3 * 10 * 10).map((_, i) => Math.cos(i * 0.31)), [2, 3, 10, 10]);

/** Records the buffers a module's outputs use, without a hook (hooks turn recycling off). */
class Probe extends Module {
  readonly seen: Float32Array[] = [];
  constructor(private readonly inner: Module) {
    super();
  }
  forward(x: unknown): unknown {
    const y = this.inner.call(x) as Tensor;
    this.seen.push(y.data);
    return y;
  }
}

test('repeated forwards give identical outputs while intermediates are reused', () => {
  const m = smallModel();
  m.fuseModel();
  const input = smallInput();
  const first = Array.from((m.call(input) as Tensor).data);
  for (let k = 0; k < 3; k++) expect(Array.from((m.call(input) as Tensor).data)).toEqual(first);
  // Each [2, 8, 10, 10] activation is dead once the next layer has read it, and the next one of
  // that size takes its buffer: one forward needs two such buffers, later forwards no new ones.
  const s = seq();
  const probes = [0, 1, 2, 3].map((i) => new Probe(s.at(i)));
  const s2 = new Sequential(...probes, s.at(4));
  const y1 = Array.from((s2.call(x) as Tensor).data);
  const firstBuffers = new Set(probes.flatMap((p) => p.seen));
  expect(firstBuffers.size).toBe(2);
  for (let k = 0; k < 3; k++) expect(Array.from((s2.call(x) as Tensor).data)).toEqual(y1);
  expect(new Set(probes.flatMap((p) => p.seen))).toEqual(firstBuffers);
});

/** Runs s once, then 4 forwards on other inputs: the first tensor a hook kept must keep its values. */
function expectKeptIntact(s: Module, kept: Tensor[]): void {
  s.call(x);
  const snapshot = Array.from(kept[0].data);
  for (let k = 0; k < 4; k++) s.call(new Tensor(x.data.map((v) => v * (k + 2)), x.shape));
  expect(Array.from(kept[0].data)).toEqual(snapshot);
}

test('a buffer a user hook kept is never recycled', () => {
  const s = seq();
  const kept: Tensor[] = [];
  s.at(1).registerForwardHook((_m, _in, out) => kept.push(out as Tensor));
  expectKeptIntact(s, kept);
  expect(new Set(kept.map((t) => t.data)).size).toBe(kept.length);
  // The same for an input a hook kept (the consumer's hook sees the tensor as inputs[0]).
  const s2 = seq();
  const inputs: Tensor[] = [];
  s2.at(2).registerForwardHook((_m, ins) => inputs.push(ins[0] as Tensor));
  expectKeptIntact(s2, inputs);
});

test('without hooks, dead activations come back from outputBuffer; foreign arrays are ignored', () => {
  const s = seq();
  const outs = new Set<ArrayBufferLike>();
  // Capture which buffers the convs write, by wrapping outputBuffer users through the forward's results.
  const y1 = s.call(x) as Tensor;
  const y2 = s.call(x) as Tensor;
  outs.add(y1.data.buffer).add(y2.data.buffer);
  expect(Array.from(y2.data)).toEqual(Array.from(y1.data));
  // Outputs of the Sequential itself are never recycled by it: both stay distinct and intact.
  expect(y1.data).not.toBe(y2.data);
  // recycleBuffer ignores arrays that outputBuffer did not make.
  const foreign = new Tensor(new Float32Array(2 * 8 * 10 * 10), [2, 8, 10, 10]);
  recycleBuffer(foreign);
  expect(outputBuffer(foreign.numel)).not.toBe(foreign.data);
});

test('a Sequential never recycles its own input, even when its first child passes it on unchanged', () => {
  // y1 is an output of an earlier forward (a recyclable buffer) that the caller still holds.
  const s = seq();
  const y1 = s.call(x) as Tensor;
  const snapshot = Array.from(y1.data);
  const follow = new Sequential(new Identity(), new Conv2d(4, 4, 1), new ReLU(), new Conv2d(4, 4, 1));
  follow.eval();
  for (let k = 0; k < 4; k++) {
    follow.call(y1);
    s.call(new Tensor(x.data.map((v) => v * (k + 2)), x.shape));
  }
  expect(Array.from(y1.data)).toEqual(snapshot);
});

test('residual blocks (ResNet, MobileNetV2) recycle their inner activations: later forwards allocate (almost) nothing new', () => {
  const seen = (m: Module, input: Tensor): Set<ArrayBufferLike> => {
    // Buffers of every leaf output during one forward, without hooks (they would turn recycling off).
    const bufs = new Set<ArrayBufferLike>();
    const leaves = [...m.modules()].filter((c) => c._modules.size === 0);
    const calls = leaves.map((c) => c.call.bind(c));
    leaves.forEach((c, i) => { c.call = (...a: unknown[]) => { const y = calls[i](...a); if (y instanceof Tensor) bufs.add(y.data.buffer); return y; }; });
    m.call(input);
    leaves.forEach((c, i) => { c.call = calls[i]; });
    return bufs;
  };
  const r = resnet18(10).eval();
  r.fuseModel();
  const xi = new Tensor(new Float32Array(3 * 32 * 32).map((_, i) => Math.sin(i)), [1, 3, 32, 32]);
  const want = Array.from((r.call(xi) as Tensor).data);
  const first = seen(r, xi), second = seen(r, xi);
  // Only the logits (returned to the caller) and their float copy are fresh in each forward.
  expect([...second].filter((b) => !first.has(b)).length).toBeLessThanOrEqual(2);
  expect(Array.from((r.call(xi) as Tensor).data)).toEqual(want);
  const m = smallModel();
  m.fuseModel();
  const input = smallInput();
  const y = Array.from((m.call(input) as Tensor).data);
  const a = seen(m, input), b = seen(m, input);
  expect([...b].filter((buf) => !a.has(buf)).length).toBeLessThanOrEqual(2);
  expect(Array.from((m.call(input) as Tensor).data)).toEqual(y);
});

test('a hook deep inside a child (not on the child itself) keeps its tensor intact', () => {
  const c = seq();
  // The ReLU inside the first child makes the activation the outer Sequential passes on.
  const inner = new Sequential(c.at(0), c.at(1));
  const s = new Sequential(inner, c.at(2), c.at(3), c.at(4));
  const kept: Tensor[] = [];
  c.at(1).registerForwardHook((_m, _in, out) => kept.push(out as Tensor));
  expectKeptIntact(s, kept);
});

test('a pooled block serves smaller requests down to half its size; its stale views are never recycled', () => {
  // Larger than anything the other tests pool (their blocks could serve these requests).
  const big = outputBuffer(3000000);
  const block = big.buffer;
  recycleBuffer(new Tensor(big, [3000000]));
  // Too small for the block (under half of it): a fresh buffer.
  const tiny = outputBuffer(1499999);
  expect(tiny.buffer === block).toBe(false);
  const small = outputBuffer(1800000);
  expect(small.buffer === block).toBe(true);
  expect(small.byteOffset).toBe(big.byteOffset);
  expect(small.length).toBe(1800000);
  // `big` is a stale view now (`small` is live in the same memory): recycling it does nothing.
  recycleBuffer(new Tensor(big, [3000000]));
  expect(outputBuffer(3000000).buffer === block).toBe(false);
  // Once `small` is dead the block comes back, at its full size too.
  recycleBuffer(new Tensor(small, [1800000]));
  const again = outputBuffer(3000000);
  expect(again.buffer === block).toBe(true);
  expect(again.length).toBe(3000000);
});
