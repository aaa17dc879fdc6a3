// Distribution checks that can run in the checkout: AVX code confined to the ISA files of the
// built addon, and a clear install-time message when no prebuild matches and no compiler exists.
// (The packed-tarball install into a fresh folder and the QEMU no-AVX2 run are recorded in README.)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
const has = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const built = fs.existsSync(path.join(root, 'build', 'CMakeFiles', 'ptq_node.dir', 'native')) && fs.existsSync(path.join(root, 'build', 'Release', 'ptq_node.node'));

(built && has('objdump') && has('nm') ? test : test.skip)('every AVX/AVX-512 instruction of the built addon is in a function from native/<isa>/', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'check-isa-confinement.js')], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const m = /(\d+) AVX instructions, by ISA dir: (\{.*\}); violations: (\d+)/.exec(r.stdout);
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBeGreaterThan(1000);
  expect(Object.keys(JSON.parse(m![2])).sort()).toEqual(['avx2', 'avx512vnni', 'avxvnni']);
  expect(Number(m![3])).toBe(0);
});

test('install without a matching prebuild and without cmake/compiler fails with what to do', () => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-nocc-'));
  try {
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install.js')], {
      encoding: 'utf8', env: { PATH: bin, PTQ_BUILD_FROM_SOURCE: '1', CXX: 'no-such-compiler' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no prebuilt binary matches linux-x64 \(node v\d+/);
    expect(r.stderr).toMatch(/needs cmake >= 3.15 and a C\+\+17 compiler \(cmake not found\)/);
    expect(r.stderr).toMatch(/apt-get install cmake g\+\+\) and run `npm rebuild ptq-node`/);
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
});
