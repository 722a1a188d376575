// Runs requests for the explorer's entry points in the WebAssembly module, as
// explorer_dump.cpp runs them natively (the same request lines, the same output).
//   node explorer_dump.js MODULE.js [--full] < REQUESTS > RESULTS
'use strict';
const fs = require('fs');
const path = require('path');

const createFp8emu = require(path.resolve(process.argv[2]));
const full = process.argv[3] === '--full';

// The length and the two FNV-1a hashes of the result's UTF-8 bytes, as explorer_dump.cpp.
const encoder = new TextEncoder();
function digest(s) {
  const bytes = encoder.encode(s);
  let a = 2166136261, b = 0x01000193;
  for (const c of bytes) {
    a = Math.imul(a ^ c, 16777619) >>> 0;
    b = Math.imul(b ^ c, 16777619) >>> 0;
  }
  const hex = (v) => v.toString(16).padStart(8, '0');
  return `${bytes.length} ${hex(a)}${hex(b)}\n`;
}

createFp8emu().then((M) => {
  const lines = fs.readFileSync(0, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const out = [];
  const bool = (s) => s === '1';
  for (const line of lines) {
    const a = line.split('\t');
    const n = a.length;
    let r;
    if (a[0] === 'catalog' && n === 1) r = M.catalog();
    else if (a[0] === 'options' && n === 1) r = M.options();
    else if (a[0] === 'format' && n === 2) r = M.format(a[1]);
    else if (a[0] === 'binades' && n === 2) r = M.binades(a[1]);
    else if (a[0] === 'code' && n === 3) r = M.code(a[1], Number(a[2]));
    else if (a[0] === 'codes' && n === 4) r = M.codes(a[1], Number(a[2]), Number(a[3]));
    else if (a[0] === 'explain' && n === 10)
      r = M.explain(a[1], a[2], a[3], a[4], a[5], bool(a[6]), bool(a[7]), Number(a[8]), Number(a[9]));
    else if (a[0] === 'explain_all' && n === 9)
      r = M.explainAll(a[1], a[2], a[3], a[4], bool(a[5]), bool(a[6]), Number(a[7]), Number(a[8]));
    else {
      process.stderr.write(`explorer_dump.js: bad request '${a[0]}' with ${n} fields\n`);
      process.exit(2);
    }
    out.push(full ? r + '%%\n' : digest(r));
    if (out.length >= 4096) fs.writeSync(1, out.splice(0).join(''));
  }
  fs.writeSync(1, out.join(''));
});
