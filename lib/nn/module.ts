// Module: PyTorch eager-style containers of parameters, buffers and child modules, with the same
// qualified names (state_dict keys), traversal order and printed form as torch.nn.Module.
import { Tensor } from '../tensor';
import type { RawTensor } from '../io/types';
import { toFloat32 } from '../io/types';
import type { QConfig } from '../quantization/qconfig';

/** A hook run after forward: (module, inputs, output). */
export type ForwardHook = (module: Module, inputs: unknown[], output: unknown) => void;

/**
 * Forward hooks that read a module's output and keep nothing of it (prepare()'s observer hooks).
 * Containers may recycle a dead activation's buffer only when every hook that saw it is one of these.
 */
export const observerHooks = new WeakSet<ForwardHook>();

/** True when no hook of m could keep a reference to its inputs or output. */
export function hooksKeepNothing(m: Module): boolean {
  return m._forwardHooks.every((h) => observerHooks.has(h));
}

/** True when no hook of m or of any module inside it could keep a tensor it saw. */
export function subtreeKeepsNothing(m: Module): boolean {
  if (!hooksKeepNothing(m)) return false;
  for (const c of m._modules.values()) if (c && !subtreeKeepsNothing(c)) return false;
  return true;
}

/** Indents every line but the first, as torch.nn.modules.module._addindent. */
function addIndent(s: string, n: number): string {
  const lines = s.split('\n');
  if (lines.length === 1) return s;
  const pad = ' '.repeat(n);
  return [lines[0], ...lines.slice(1).map((l) => pad + l)].join('\n');
}

/** Base class of all modules. Subclasses implement forward(); callers use call() (runs hooks). */
export abstract class Module {
  /** Child modules by name, in registration order (null = registered but empty, like PyTorch). */
  readonly _modules = new Map<string, Module | null>();
  /** Parameters by name (weights and biases). */
  readonly _parameters = new Map<string, Tensor | null>();
  /** Buffers by name (e.g. BatchNorm running statistics). */
  readonly _buffers = new Map<string, Tensor | null>();
  /** Forward hooks, run in order after forward. */
  readonly _forwardHooks: ForwardHook[] = [];
  /** Training mode flag (eval() clears it). */
  training = true;
  /** Quantization config (set by the user on the root, propagated to children by prepare()). */
  qconfig?: QConfig | null;

  /** The computation; modules call children through call(). */
  abstract forward(...inputs: unknown[]): unknown;

  /** Runs forward then the forward hooks (PyTorch's __call__). */
  call(...inputs: unknown[]): unknown {
    const out = this.forward(...inputs);
    for (const h of this._forwardHooks) h(this, inputs, out);
    return out;
  }

  /** Registers a forward hook; returns a function that removes it. */
  registerForwardHook(hook: ForwardHook): () => void {
    this._forwardHooks.push(hook);
    return () => {
      const i = this._forwardHooks.indexOf(hook);
      if (i >= 0) this._forwardHooks.splice(i, 1);
    };
  }

  /** Adds (or replaces) a child module. */
  addModule(name: string, m: Module | null): void {
    if (name.includes('.') || name === '') throw new RangeError(`module name can't contain "." or be empty, got '${name}'`);
    this._modules.set(name, m);
  }

  /** Registers (or replaces) a parameter. */
  registerParameter(name: string, t: Tensor | null): void {
    this._parameters.set(name, t);
  }

  /** Registers (or replaces) a buffer. */
  registerBuffer(name: string, t: Tensor | null): void {
    this._buffers.set(name, t);
  }

  /** A child by name, or undefined. */
  getChild(name: string): Module | undefined {
    return this._modules.get(name) ?? undefined;
  }

  /** A descendant by dotted path ('features.1.conv'), or throws naming the missing part. */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const c = m._modules.get(part);
      if (!c) throw new RangeError(`${m.typeName()} has no attribute \`${part}\` (looking up '${path}')`);
      m = c;
    }
    return m;
  }

  /** Replaces the descendant at a dotted path. */
  setSubmodule(path: string, m: Module): void {
    const i = path.lastIndexOf('.');
    const parent = i < 0 ? this : this.getSubmodule(path.slice(0, i));
    const name = i < 0 ? path : path.slice(i + 1);
    if (!parent._modules.has(name)) throw new RangeError(`${parent.typeName()} has no child '${name}'`);
    parent._modules.set(name, m);
  }

  /** Direct children as [name, module] (skipping empty slots). */
  *namedChildren(): Generator<[string, Module]> {
    for (const [n, m] of this._modules) if (m) yield [n, m];
  }

  /** Direct children. */
  *children(): Generator<Module> {
    for (const [, m] of this.namedChildren()) yield m;
  }

  /** This module and all descendants, depth first, with qualified names ('' for this one). */
  *namedModules(prefix = '', memo = new Set<Module>()): Generator<[string, Module]> {
    if (memo.has(this)) return;
    memo.add(this);
    yield [prefix, this];
    for (const [n, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${n}` : n, memo);
  }

  /** This module and all descendants. */
  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** Parameters of this module and its descendants with qualified names. */
  *namedParameters(): Generator<[string, Tensor]> {
    for (const [prefix, m] of this.namedModules())
      for (const [n, t] of m._parameters) if (t) yield [prefix ? `${prefix}.${n}` : n, t];
  }

  /** Sets training mode recursively. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode recursively (BatchNorm uses running stats, Dropout is identity). */
  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers with PyTorch's state_dict keys, in PyTorch's order. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      const p = prefix ? prefix + '.' : '';
      for (const [n, t] of m._parameters) if (t) out.set(p + n, t);
      for (const [n, t] of m._buffers) if (t) out.set(p + n, t);
    }
    return out;
  }

  /**
   * Copies tensors into parameters and buffers by key. strict (default): every key must match in
   * name and shape, otherwise one error lists all missing keys, unexpected keys and mismatches.
   */
  loadStateDict(sd: Map<string, Tensor | RawTensor>, strict = true): { missingKeys: string[]; unexpectedKeys: string[] } {
    const own = new Map<string, { m: Module; kind: '_parameters' | '_buffers'; name: string; t: Tensor }>();
    for (const [prefix, m] of this.namedModules()) {
      const p = prefix ? prefix + '.' : '';
      for (const kind of ['_parameters', '_buffers'] as const)
        for (const [n, t] of m[kind]) if (t) own.set(p + n, { m, kind, name: n, t });
    }
    const missing = [...own.keys()].filter((k) => !sd.has(k));
    const unexpected = [...sd.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [k, v] of sd) {
      const o = own.get(k);
      if (!o) continue;
      const same = o.t.shape.length === v.shape.length && o.t.shape.every((d, i) => d === v.shape[i]);
      if (!same)
        mismatches.push(`size mismatch for ${k}: copying a param with shape [${v.shape.join(', ')}] from checkpoint, ` +
          `the shape in current model is [${o.t.shape.join(', ')}].`);
    }
    if (mismatches.length || (strict && (missing.length || unexpected.length))) {
      const parts: string[] = [];
      if (strict && missing.length) parts.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
      if (strict && unexpected.length) parts.push(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
      parts.push(...mismatches);
      throw new Error(`Error(s) in loading state_dict for ${this.typeName()}:\n\t${parts.join('\n\t')}`);
    }
    for (const [k, v] of sd) {
      const o = own.get(k);
      if (!o) continue;
      const data = v instanceof Tensor ? v.data : toFloat32(v);
      o.m[o.kind].set(o.name, new Tensor(Float32Array.from(data), o.t.shape));
    }
    for (const m of this.modules()) m.onStateLoaded();
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /** Called after loadStateDict replaced tensors (modules drop caches such as packed weights). */
  onStateLoaded(): void {}

  /** The class name printed by toString() (PyTorch's _get_name()). */
  typeName(): string {
    return this.constructor.name;
  }

  /** One-line extra description, as PyTorch's extra_repr(). */
  extraRepr(): string {
    return '';
  }

  /** The module tree printed exactly like PyTorch's Module.__repr__. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines: string[] = [];
    for (const [n, m] of this._modules) childLines.push(`(${n}): ${addIndent(m ? m.toString() : 'None', 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = this.typeName() + '(';
    if (lines.length) {
      if (extraLines.length === 1 && childLines.length === 0) s += extraLines[0];
      else s += '\n  ' + lines.join('\n  ') + '\n';
    }
    return s + ')';
  }
}

/** Objects with a method under this key decide how deepCopy copies them (caches return a fresh one). */
export const DEEP_COPY = Symbol('ptq.deepCopy');

/** A deep copy of a module tree (copy.deepcopy): tensors cloned, caches dropped, hooks shared. */
export function deepCopy<T extends Module>(m: T, memo = new Map<unknown, unknown>()): T {
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (memo.has(v)) return memo.get(v);
    if (v instanceof Tensor) {
      const t = v.clone();
      memo.set(v, t);
      return t;
    }
    if (ArrayBuffer.isView(v)) return (v as unknown as Float32Array).slice();
    const hook = (v as { [DEEP_COPY]?: () => unknown })[DEEP_COPY];
    if (typeof hook === 'function') return hook.call(v);
    if (v instanceof Map) {
      const out = new Map();
      memo.set(v, out);
      for (const [k, x] of v) out.set(k, copy(x));
      return out;
    }
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      memo.set(v, out);
      for (const x of v) out.push(typeof x === 'function' ? x : copy(x));
      return out;
    }
    if (v instanceof Module) {
      const out = Object.create(Object.getPrototypeOf(v)) as Record<string, unknown>;
      memo.set(v, out);
      // Float layers cache packed native weights under 'packed': dropped (repacked on first use)
      // unless the cache knows how to copy itself.
      for (const [k, x] of Object.entries(v))
        out[k] = k === 'packed' && !(x !== null && typeof x === 'object' && DEEP_COPY in x) ? undefined : copy(x);
      return out;
    }
    // Other objects (observers, configs): a field-by-field copy keeping the prototype.
    const out = Object.create(Object.getPrototypeOf(v)) as Record<string, unknown>;
    memo.set(v, out);
    for (const [k, x] of Object.entries(v)) out[k] = copy(x);
    return out;
  };
  return copy(m) as T;
}

/** Formats a tuple the Python way: (3, 3). */
export function pyTuple(v: readonly number[]): string {
  return v.length === 1 ? `(${v[0]},)` : `(${v.join(', ')})`;
}
