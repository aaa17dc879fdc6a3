// `ptq report` end to end: quantize the small fixture MobileNetV2 (equalization + bias correction),
// write the HTML report with the CLI, render it in headless Debian chromium and check the DOM the
// page's script builds: SQNR bars per layer, histograms with clipping lines, weight-range charts and
// the accuracy table. Chromium is required (.ci/run installs it); a missing browser fails the test.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FashionMnist } from '../lib/data/datasets';
import { saveQuantizedModel } from '../lib/io/model-file';
import { ArchitectureSpec, createModel } from '../lib/models';
import { loadWeights } from '../lib/io/weights';
import { ptqQuantize } from '../lib/quantization/pipeline';
import { qconfigByName } from '../lib/workflow';
import { SMALL, smallExpected } from './helpers/fixtures';

const root = path.join(__dirname, '..');
const data = path.join(root, 'assets', 'fashion-mnist');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-report-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function findChromium(): string | null {
  for (const c of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return null;
}

function count(html: string, re: RegExp): number {
  return (html.match(re) ?? []).length;
}

test('ptq report renders in headless chromium with SQNR bars, histograms, weight ranges and accuracy table', () => {
  const browser = findChromium();
  if (!browser)
    throw new Error('chromium is not installed: the report test renders the page in a real browser. Install it with `apt-get install -y chromium` (.ci/run does) or set CHROMIUM=/path/to/chrome');

  const e = smallExpected();
  const spec: ArchitectureSpec = { arch: 'mobilenet_v2', numClasses: e.num_classes, widthMult: e.width_mult, invertedResidualSetting: e.setting };
  const weights = path.join(SMALL, 'weights.pth');
  const m = createModel(spec);
  m.loadStateDict(loadWeights(weights));
  m.eval();
  const train = new FashionMnist(data, 'train');
  const { model } = ptqQuantize(m, { qconfig: qconfigByName('default'), calibration: train, calibBatches: 2, batchSize: 16, equalize: true, biasCorrection: 'analytical' });
  const file = path.join(dir, 'm.safetensors');
  saveQuantizedModel(file, model, {
    architecture: spec, qconfig: 'default',
    provenance: { weights, qconfigName: 'default', calibImages: 32, batchSize: 16, methods: { equalize: true, biasCorrection: 'analytical' }, label: 'default+cle+abc' },
  });

  const html = path.join(dir, 'report.html');
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), 'report', file, '--dataset', `fashion-mnist:${data}`, '--out', html,
    '--limit', '100', '--configs', 'default', '--analysis-images', '16', '--json'], { encoding: 'utf8' });
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  const summary = JSON.parse(r.stdout);
  const page = fs.readFileSync(html, 'utf8');
  // self-contained: no external scripts, styles, images or fonts
  expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
  // (the SVG namespace name is an identifier, not a fetched resource)
  expect(page.split('http://www.w3.org/2000/svg').join('')).not.toMatch(/url\(|@import|https?:\/\//);
  const reportData = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(page)![1]);
  expect(reportData.layers.length).toBe(summary.layers);
  // before rendering the charts do not exist (the page's script builds them)
  expect(count(page, /class="sqnr-bar/g)).toBe(0);

  const dom = spawnSync(browser, ['--headless', '--disable-gpu', '--no-sandbox', '--dump-dom', `file://${html}`], { encoding: 'utf8', timeout: 90_000, maxBuffer: 256 << 20 });
  expect(dom.status).toBe(0);
  const out = dom.stdout;
  expect(out).toMatch(/<body[^>]*data-rendered="true"/);
  // one SQNR bar per int8 conv / linear layer, named and valued
  expect(count(out, /<rect class="sqnr-bar[^"]*"/g)).toBe(reportData.layers.length);
  for (const l of reportData.layers) expect(out).toContain(`data-layer="${l.name}"`);
  const first = reportData.layers[0];
  expect(out).toMatch(new RegExp(`class="sqnr-bar[^"]*"[^>]*data-layer="${first.name.replace(/\./g, '\\.')}" data-sqnr="${String(first.localSqnr).replace(/\./g, '\\.')}"`));
  // a histogram per observed activation, with both clipping lines
  expect(reportData.histograms.length).toBeGreaterThan(5);
  expect(count(out, /<figure class="act-hist"/g)).toBe(reportData.histograms.length);
  expect(count(out, /class="clip clip-lo"/g)).toBe(reportData.histograms.length);
  expect(count(out, /class="clip clip-hi"/g)).toBe(reportData.histograms.length);
  expect(count(out, /class="hist-bin"/g)).toBeGreaterThan(reportData.histograms.length * 5);
  // weight ranges before / after equalization, one bar pair per channel
  expect(reportData.equalized).toBe(true);
  expect(count(out, /<figure class="weight-range"/g)).toBe(reportData.weightRanges.length);
  const channels = reportData.weightRanges.reduce((s: number, w: { before: number[] }) => s + w.before.length, 0);
  expect(count(out, /class="range-before"/g)).toBe(channels);
  expect(count(out, /class="range-after"/g)).toBe(channels);
  // the accuracy table: float, this model, the extra configuration
  expect(count(out, /<tr class="acc-row/g)).toBe(3);
  for (const c of ['float', 'default+cle+abc (this model)', 'default']) expect(out).toContain(`data-config="${c}"`);
  expect(count(out, /class="acc-bar"/g)).toBe(3);
}, 180_000);
