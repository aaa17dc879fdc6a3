// Real malicious and abusive pickles (written by /usr/bin/python3 scripts/make_malicious_pickles.py,
// committed as small fixtures): os/posix.system, builtins.exec, subprocess.Popen, __reduce__
// returning a callable built by another REDUCE, payloads hidden in an allowed call's arguments,
// STACK_GLOBAL from memoized strings, INST/OBJ/NEWOBJ/BUILD, persistent_load abuse, memo abuse,
// deep nesting. Each is a FormatError naming the problem, and no payload ever runs.
import * as fs from 'fs';
import * as path from 'path';
import { loadStateDict } from '../lib/io/pth';
import { loadWeights } from '../lib/io/weights';
import { FormatError } from '../lib/io/types';

const DIR = path.join(__dirname, 'fixtures', 'io', 'malicious');
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Record<string, { error: string; marker: string }>;

test('the fixture set is complete', () => {
  expect(Object.keys(manifest).length).toBeGreaterThanOrEqual(20);
  for (const f of Object.keys(manifest)) expect(fs.existsSync(path.join(DIR, f))).toBe(true);
});

describe.each(Object.entries(manifest))('%s', (file, { error, marker }) => {
  test(`is a FormatError matching /${error}/ and runs nothing`, () => {
    if (marker && fs.existsSync(marker)) fs.unlinkSync(marker);
    const bytes = fs.readFileSync(path.join(DIR, file));
    // The payload really is in the file (the command or code that would create the marker).
    if (marker) expect(bytes.includes(Buffer.from(marker))).toBe(true);
    for (const load of [() => loadStateDict(path.join(DIR, file)), () => loadWeights(path.join(DIR, file)), () => loadStateDict(new Uint8Array(bytes))]) {
      let err: unknown;
      const t0 = performance.now();
      try { load(); } catch (e) { err = e; }
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(new RegExp(error));
    }
    if (marker) expect(fs.existsSync(marker)).toBe(false);
  });
});
