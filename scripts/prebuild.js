#!/usr/bin/env node
// Builds the addon and places it where node-gyp-build looks for prebuilt binaries:
// prebuilds/<platform>-<arch>/ptq-node.napi.node (prebuildify's layout; prebuildify itself cannot
// drive cmake-js). Stripped; the build/ copy is removed so the prebuild is what loads.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
execFileSync(process.execPath, [cmakeJs, 'rebuild', '--directory', root], { stdio: 'inherit', cwd: root });
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const out = path.join(dir, 'ptq-node.napi.node');
fs.copyFileSync(path.join(root, 'build', 'Release', 'ptq_node.node'), out);
execFileSync('strip', ['--strip-unneeded', out]);
fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });
console.log(`prebuilt ${path.relative(root, out)} (${fs.statSync(out).size} bytes)`);
