// Jest runs each test file in a vm context; typed arrays and errors made by native code come from
// Node's main realm, so `instanceof` fails across the boundary. Share the main realm's constructors.
const { TestEnvironment } = require('jest-environment-node');

class RealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Uint8Array', 'Int8Array',
      'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array',
      'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Buffer', 'Error', 'TypeError', 'RangeError']) {
      this.global[name] = globalThis[name];
    }
  }
}
module.exports = RealmEnvironment;
