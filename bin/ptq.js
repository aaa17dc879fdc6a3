#!/usr/bin/env node
'use strict';
// The `ptq` command: runs the compiled CLI in dist/ (built by `npm run build`, or at install).
const path = require('path');
const fs = require('fs');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  console.error('ptq: dist/ is missing; run `npm run build` in the ptq-node package first.');
  process.exit(1);
}
require(main).main(process.argv).catch((e) => {
  console.error(`ptq: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
