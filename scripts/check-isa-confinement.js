#!/usr/bin/env node
// Shows that no AVX instruction can run outside the ISA files: disassembles the built addon
// (unstripped build/Release/ptq_node.node, or the path given) and lists every function that
// contains a VEX/EVEX instruction (mnemonic v*, or ymm/zmm/opmask registers); each must be
// defined in an object of native/avx2|avxvnni|avx512vnni/ (checked with nm on the object files),
// and AVX-512 (zmm, k registers) only in avx512vnni. Also checks that a stripped prebuild has the
// same .text as the build. Exit 1 on any violation. Needs binutils (objdump, nm, objcopy).
// Usage: node scripts/check-isa-confinement.js [build/Release/ptq_node.node] [--prebuild prebuilds/linux-x64/ptq-node.napi.node]
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const pi = args.indexOf('--prebuild');
const prebuild = pi >= 0 ? args.splice(pi, 2)[1] : null;
const binary = args[0] ?? path.join(root, 'build', 'Release', 'ptq_node.node');
const objDir = path.join(root, 'build', 'CMakeFiles', 'ptq_node.dir', 'native');
const ISAS = ['avx2', 'avxvnni', 'avx512vnni'];

// Which ISA directory defines each function symbol.
const owner = new Map();
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
for (const o of walk(objDir).filter((f) => f.endsWith('.o'))) {
  const isa = ISAS.find((i) => path.relative(objDir, o).startsWith(`${i}/`)) ?? 'baseline';
  for (const line of execFileSync('nm', ['--defined-only', o], { encoding: 'utf8' }).split('\n')) {
    const m = /^[0-9a-f]+ ([TtWw]) (\S+)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'W' || m[1] === 'w') {
      if (isa !== 'baseline') { console.error(`weak (COMDAT) symbol ${m[2]} in ${o}: the linker could pick this AVX copy`); process.exitCode = 1; }
      continue;
    }
    owner.set(m[2], isa);
  }
}

const asm = execFileSync('objdump', ['-d', '--no-show-raw-insn', binary], { encoding: 'utf8', maxBuffer: 1 << 30 });
let fn = null, bad = 0, checked = 0;
const seen = new Map();
for (const line of asm.split('\n')) {
  const f = /^[0-9a-f]+ <(.+)>:$/.exec(line);
  if (f) { fn = f[1]; continue; }
  const ins = /^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$/.exec(line);
  if (!ins || !fn) continue;
  const [, mnem, ops] = ins;
  const vex = mnem.startsWith('v') && !/^verr|^verw/.test(mnem);
  const avx512 = /%zmm|%k[0-7]\b|\{%k/.test(ops);
  if (!vex && !/%ymm/.test(ops) && !avx512) continue;
  checked++;
  const isa = owner.get(fn.replace(/@plt$/, '')) ?? 'unknown';
  if (isa === 'baseline' || isa === 'unknown' || (avx512 && isa !== 'avx512vnni')) {
    bad++;
    if (bad <= 20) console.error(`VIOLATION: ${mnem} ${ops} in ${fn} (defined in ${isa} code)`);
  }
  seen.set(isa, (seen.get(isa) ?? 0) + 1);
}
console.log(`${binary}: ${checked} AVX instructions, by ISA dir: ${JSON.stringify(Object.fromEntries(seen))}; violations: ${bad}`);
if (bad) process.exitCode = 1;

if (prebuild) {
  const text = (f) => {
    const out = path.join(require('os').tmpdir(), `text-${process.pid}-${path.basename(f)}`);
    execFileSync('objcopy', ['-O', 'binary', '-j', '.text', f, out]);
    const b = fs.readFileSync(out);
    fs.rmSync(out);
    return b;
  };
  const same = text(binary).equals(text(prebuild));
  console.log(`${prebuild}: .text ${same ? 'identical to' : 'DIFFERS from'} ${binary}`);
  if (!same) process.exitCode = 1;
}
