#!/usr/bin/env node
// npm install hook. Uses a prebuilt binary that matches and loads; otherwise builds from source
// with cmake-js (headers from node-api-headers, never downloaded). Never fetches anything.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function loadable(file) {
  try {
    require(file).supportedIsas();
    return true;
  } catch (e) {
    console.warn(`ptq-node: ${file} does not load here: ${e.message.split('\n')[0]}`);
    return false;
  }
}

function prebuilt() {
  const dirs = [path.join(root, 'build', 'Release'), path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)];
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d).filter((x) => x.endsWith('.node'))) {
      if (loadable(path.join(d, f))) return path.join(d, f);
    }
  }
  return null;
}

function has(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

const found = prebuilt();
if (found && process.env.PTQ_BUILD_FROM_SOURCE !== '1') {
  console.log(`ptq-node: using ${path.relative(root, found)}`);
  process.exit(0);
}
const cxx = process.env.CXX || 'c++';
if (!has('cmake', ['--version']) || !has(cxx, ['--version'])) {
  console.error(
    `ptq-node: no prebuilt binary matches ${process.platform}-${process.arch} (node ${process.version}), ` +
      `and building from source needs cmake >= 3.15 and a C++17 compiler (${!has('cmake', ['--version']) ? 'cmake' : cxx} not found).\n` +
      'Install them (Debian/Ubuntu: apt-get install cmake g++) and run `npm rebuild ptq-node`.',
  );
  process.exit(1);
}
console.log('ptq-node: building the native addon from source with cmake-js');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', root], { stdio: 'inherit', cwd: root });
process.exit(r.status === null ? 1 : r.status);
