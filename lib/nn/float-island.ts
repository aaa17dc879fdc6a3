// Mixed precision: a module kept in float inside a quantized model. Before convert it is the float
// module between a DeQuantStub and a QuantStub; convert turns the stubs into DeQuantize / Quantize
// (the QuantStub observes the float module's output during calibration) and leaves the module float.
import { Module } from './module';
import { DeQuantStub, QuantStub } from './stubs';

/** dequant -> float module -> quant (children named 'dequant', 'module', 'quant'). */
export class FloatIsland extends Module {
  constructor(inner: Module) {
    super();
    this.addModule('dequant', new DeQuantStub());
    this.addModule('module', inner);
    this.addModule('quant', new QuantStub());
    // the float module gets no observers and is not converted
    inner.qconfig = null;
    for (const m of inner.modules()) m.qconfig = null;
  }
  get inner(): Module {
    return this._modules.get('module')!;
  }
  forward(x: unknown): unknown {
    const y = this._modules.get('dequant')!.call(x);
    return this._modules.get('quant')!.call(this.inner.call(y));
  }
}

/** The qualified names of the float islands of a model (mixed-precision modules). */
export function floatIslands(model: Module): string[] {
  return [...model.namedModules()].filter(([, m]) => m instanceof FloatIsland).map(([n]) => n);
}
