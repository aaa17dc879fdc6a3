// Eager-mode prepare (torch/ao/quantization/quantize.py, 1.13): qconfig propagation and observer
// insertion at exactly the modules PyTorch observes, so the qualified names and qparams match.
import { BatchNorm2d, Conv2d, Dropout, Linear, ReLU6, Sequential } from '../nn/layers';
import { FloatFunctional } from '../nn/functional';
import { FusedModule } from '../nn/intrinsic';
import { deepCopy, ForwardHook, Module, observerHooks } from '../nn/module';
import { DeQuantStub, QuantStub } from '../nn/stubs';
import { Tensor } from '../tensor';
import { ObserverModule } from './observer-module';
import { QConfig } from './qconfig';

/** Leaf module types that get an output observer (PyTorch's qconfig propagation list, as far as we have the types). */
const OBSERVED_LEAF_TYPES: Array<abstract new (...a: never[]) => Module> = [QuantStub, Conv2d, Linear, BatchNorm2d, ReLU6];

/** propagate_qconfig_: every module gets its own qconfig or its parent's. */
export function propagateQConfig(m: Module, parent: QConfig | null = null): void {
  const q = m.qconfig !== undefined ? m.qconfig : parent;
  m.qconfig = q;
  for (const c of m.children()) propagateQConfig(c, q);
}

function needsObservation(m: Module): boolean {
  return m.qconfig !== undefined && m.qconfig !== null;
}

/** The forward hooks prepare() registered (convert removes these and keeps the user's own). */
export { observerHooks };

function insertObserver(m: Module): void {
  const obs = new ObserverModule(m.qconfig!.activation());
  m.addModule('activation_post_process', obs);
  // Looks the observer up on the module at call time (like torch's hook), so deep copies of a
  // prepared model feed their own observers.
  const hook: ForwardHook = (mod, _in, out) => {
    const o = mod._modules.get('activation_post_process');
    if (out instanceof Tensor && o) o.call(out);
  };
  observerHooks.add(hook);
  m.registerForwardHook(hook);
}

/** _add_observer_: observers on leaves, fused modules and FloatFunctionals (never on DeQuantStub or Dropout). */
function addObservers(module: Module): void {
  for (const [, child] of module.namedChildren()) {
    if (child instanceof Dropout || child instanceof ObserverModule) continue;
    if (child instanceof FloatFunctional) {
      if (needsObservation(child)) child.addModule('activation_post_process', new ObserverModule(child.qconfig!.activation()));
    } else if (child instanceof FusedModule) {
      if (needsObservation(child)) insertObserver(child);
    } else {
      addObservers(child);
    }
  }
  const isLeaf = [...module.children()].length === 0;
  if (isLeaf && !(module instanceof Sequential) && !(module instanceof DeQuantStub) && needsObservation(module) &&
      OBSERVED_LEAF_TYPES.some((t) => module instanceof t))
    insertObserver(module);
}

/**
 * prepare(model): propagates model.qconfig and inserts observers where PyTorch eager mode does.
 * inplace=false (PyTorch's default) prepares and returns a deep copy. Calibrate by running the model.
 */
export function prepare<T extends Module>(model: T, inplace = false): T {
  const m = inplace ? model : deepCopy(model);
  if (m.qconfig === undefined || m.qconfig === null)
    console.warn('None of the submodule got qconfig applied. Make sure you passed correct configuration through ' +
      '`qconfig_dict` or by assigning the `.qconfig` attribute directly on submodules');
  propagateQConfig(m);
  addObservers(m);
  return m;
}

/** The modules whose outputs are observed, with their qualified names, in model order. */
export function observedModules(model: Module): Array<[string, Module, ObserverModule]> {
  const out: Array<[string, Module, ObserverModule]> = [];
  for (const [name, m] of model.namedModules()) {
    const o = m._modules.get('activation_post_process');
    if (o instanceof ObserverModule) out.push([name, m, o]);
  }
  return out;
}
