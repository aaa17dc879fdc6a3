// `ptq serve`: the HTTP server on a loopback port with the shipped Fashion-MNIST model, quantized
// here. Real images in, the same logits as CompiledModel.runSync out; concurrent requests batched;
// bad input rejected with 4xx while the server stays up; overload -> 503; graceful shutdown.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { FashionMnist } from '../lib/data/datasets';
import { CompiledModel, compileModel } from '../lib/inference';
import { FASHION_MNIST_IMAGE_PREPROCESS, loadImageTensor } from '../lib/io/images';
import { saveQuantizedModel } from '../lib/io/model-file';
import { Module } from '../lib/nn/module';
import { DynamicBatcher, OverloadError } from '../lib/serve/batcher';
import { parsePrometheus } from '../lib/serve/metrics';
import { createServer, PredictServer, ServeOptions } from '../lib/serve/server';
import { loadFloatModel, qconfigByName, quantizeModel } from '../lib/workflow';
import { httpRequest } from './helpers/http';

const root = path.join(__dirname, '..');
const images = path.join(__dirname, 'fixtures', 'images');
const expected = JSON.parse(fs.readFileSync(path.join(images, 'expected.json'), 'utf8'));
const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-serve-'));
let qmodel: Module;
let compiled: CompiledModel;
const test10 = new FashionMnist(path.join(root, 'assets', 'fashion-mnist'), 'test').batch(0, 32);

const request = httpRequest;
const tensorBody = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
const sample = (i: number) => test10.images.data.slice(i * 2352, (i + 1) * 2352);

/** A model whose run() waits for `open()`: makes queueing and in-flight states deterministic. */
function gated(m: CompiledModel): { model: CompiledModel; open(): void; started: () => number } {
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  let started = 0;
  const model = Object.create(m, { run: { value: async (x: Float32Array) => { started++; await gate; return m.run(x); } } }) as CompiledModel;
  return { model, open: () => { release(); gate = Promise.resolve(); }, started: () => started };
}

async function start(o: Partial<ServeOptions> = {}): Promise<{ server: PredictServer; url: string }> {
  const server = createServer({ model: compiled, preprocess: FASHION_MNIST_IMAGE_PREPROCESS, labels: LABELS, ...o });
  return { server, url: await server.listen(0) };
}
const until = async (cond: () => boolean) => { for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5)); expect(cond()).toBe(true); };

beforeAll(() => {
  const model = loadFloatModel({ arch: 'mobilenet_v2', numClasses: 10 }, path.join(root, 'assets', 'mobilenet_v2_fashion_mnist.pth'));
  const train = new FashionMnist(path.join(root, 'assets', 'fashion-mnist'), 'train');
  qmodel = quantizeModel(model, { qconfig: qconfigByName('fbgemm'), calibration: train, calibBatches: 2, batchSize: 16 });
  compiled = compileModel(qmodel, { inputShape: [3, 28, 28], maxBatch: 8 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('predictions', () => {
  let s: { server: PredictServer; url: string };
  beforeAll(async () => { s = await start(); });
  afterAll(() => s.server.close());

  test.each([['fmnist-0.png', 0], ['fmnist-1.jpg', 1], ['fmnist-2.webp', 2]])('%s: the logits of runSync on the decoded image, and the right class', async (file, i) => {
    const bytes = fs.readFileSync(path.join(images, file));
    const type = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' }[file.split('.')[1]]!;
    const r = await request(s.url, 'POST', '/v1/predict?top_k=10', bytes, { 'Content-Type': type });
    expect(r.status).toBe(200);
    const want = compiled.runSync((await loadImageTensor(bytes, FASHION_MNIST_IMAGE_PREPROCESS)).data).data;
    const got = new Float32Array(10);
    for (const p of r.json.predictions) got[p.index] = p.logit;
    expect(Array.from(got)).toEqual(Array.from(want));
    const scores = r.json.predictions.map((p: { score: number }) => p.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(scores.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 6);
    const truth = expected.fmnist_labels[i];
    expect(r.json.predictions[0]).toMatchObject({ index: truth, label: LABELS[truth] });
    expect(r.json.predictions).toHaveLength(10);
  });

  test('raw float32 (X-Shape) and JSON tensors and base64 images give runSync results; default top-k is 5', async () => {
    const x = sample(5);
    const want = Array.from(compiled.runSync(x).data);
    const r1 = await request(s.url, 'POST', '/v1/predict', tensorBody(x), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,28,28' });
    expect(r1.status).toBe(200);
    expect(r1.json.predictions).toHaveLength(5);
    for (const p of r1.json.predictions) expect(p.logit).toBe(want[p.index]);
    const r2 = await request(s.url, 'POST', '/v1/predict?top_k=3', JSON.stringify({ shape: [3, 28, 28], data: Array.from(x) }), { 'Content-Type': 'application/json' });
    expect(r2.status).toBe(200);
    expect(r2.json.predictions.map((p: { index: number }) => p.index)).toEqual(r1.json.predictions.slice(0, 3).map((p: { index: number }) => p.index));
    const png = fs.readFileSync(path.join(images, 'fmnist-0.png'));
    const r3 = await request(s.url, 'POST', '/v1/predict', JSON.stringify({ image: png.toString('base64') }), { 'Content-Type': 'application/json' });
    const r4 = await request(s.url, 'POST', '/v1/predict', png, { 'Content-Type': 'image/png' });
    expect(r3.json.predictions).toEqual(r4.json.predictions);
  });

  test('images are preprocessed on worker threads, with the same result as on the event loop', async () => {
    expect(s.server.preprocessThreads).toBeGreaterThanOrEqual(1);
    const inline = await start({ preprocessThreads: 0 });
    try {
      expect(inline.server.preprocessThreads).toBe(0);
      for (const f of ['fmnist-0.png', 'fmnist-1.jpg']) {
        const bytes = fs.readFileSync(path.join(images, f)), type = f.endsWith('png') ? 'image/png' : 'image/jpeg';
        const [a, b] = await Promise.all([s.url, inline.url].map((u) => request(u, 'POST', '/v1/predict?top_k=10', bytes, { 'Content-Type': type })));
        expect(a.json.predictions).toEqual(b.json.predictions);
      }
      const bad = await request(inline.url, 'POST', '/v1/predict', Buffer.from('nope'), { 'Content-Type': 'image/png' });
      expect(bad.status).toBe(400);
    } finally {
      await inline.server.close();
    }
  });

  test('/healthz and /metrics', async () => {
    const h = await request(s.url, 'GET', '/healthz');
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({ status: 'ok', input_shape: [3, 28, 28], classes: 10 });
    const m = await request(s.url, 'GET', '/metrics');
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
    const v = parsePrometheus(m.body);
    expect(v.get('ptq_http_requests_total{route="/v1/predict",code="200"}')).toBeGreaterThanOrEqual(7);
    expect(v.get('ptq_predict_latency_seconds_count')).toBe(v.get('ptq_http_requests_total{route="/v1/predict",code="200"}'));
    expect(v.get('ptq_queue_depth')).toBe(0);
    expect(m.body).toMatch(/# TYPE ptq_batch_size histogram/);
  });
});

test('concurrent requests are batched (batch-size metric > 1), each answered with its own runSync result', async () => {
  const g = gated(compiled);
  const { server, url } = await start({ model: g.model, maxBatch: 8, maxWaitMs: 1 });
  try {
    // The first request runs alone and holds the plan; the next 20 queue behind it and form batches of <= 8.
    const first = request(url, 'POST', '/v1/predict', tensorBody(sample(0)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,28,28' });
    await until(() => g.started() === 1);
    const rest = Array.from({ length: 20 }, (_, i) => request(url, 'POST', '/v1/predict?top_k=10', tensorBody(sample(i + 1)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '3,28,28' }));
    await until(() => server.batcher.queueDepth === 20);
    g.open();
    const rs = await Promise.all([first, ...rest]);
    const want = compiled.runSync(test10.images.data.slice(0, 21 * 2352)).data;
    rs.forEach((r, i) => {
      expect(r.status).toBe(200);
      if (i === 0) return;
      for (const p of r.json.predictions) expect(p.logit).toBe(want[i * 10 + p.index]);
    });
    expect(rs.slice(1).map((r) => r.json.batch_size).sort()).toEqual([...Array(8).fill(8), ...Array(8).fill(8), ...Array(4).fill(4)].sort());
    const v = parsePrometheus((await request(url, 'GET', '/metrics')).body);
    expect(v.get('ptq_batch_size_count')).toBe(4); // 1 + 8 + 8 + 4
    expect(v.get('ptq_batch_size_sum')).toBe(21);
    expect(v.get('ptq_batch_size_bucket{le="1"}')).toBe(1);
  } finally {
    g.open();
    await server.close();
  }
});

describe('bad input: 4xx with a clear JSON message, and the server stays up', () => {
  let s: { server: PredictServer; url: string };
  beforeAll(async () => { s = await start({ bodyLimit: 64 << 10 }); });
  afterAll(() => s.server.close());
  const png = fs.readFileSync(path.join(images, 'fmnist-0.png'));
  const cases: Array<[string, () => [Buffer | string, Record<string, string>, string?], number, RegExp]> = [
    ['not an image', () => [Buffer.from('hello'), { 'Content-Type': 'image/png' }], 400, /not a decodable image/],
    ['truncated image', () => [png.subarray(0, png.length - 40), { 'Content-Type': 'image/png' }], 400, /not a decodable image/],
    ['empty image body', () => [Buffer.alloc(0), { 'Content-Type': 'image/jpeg' }], 400, /empty|not a decodable image/],
    ['wrong tensor shape', () => [tensorBody(new Float32Array(3 * 32 * 32)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,32,32' }], 400, /wrong tensor shape \[1,3,32,32\]: the model takes \[1,3,28,28\]/],
    ['truncated tensor', () => [tensorBody(new Float32Array(2000)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,28,28' }], 400, /has 8000 bytes but shape \[1,3,28,28\] needs 9408.*truncated/],
    ['missing X-Shape', () => [tensorBody(new Float32Array(2352)), { 'Content-Type': 'application/octet-stream' }], 400, /shape is missing/],
    ['NaN in the tensor', () => [tensorBody(new Float32Array(2352).fill(NaN)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '3,28,28' }], 400, /NaN/],
    ['broken JSON', () => ['{"shape": [1,3', { 'Content-Type': 'application/json' }], 400, /not valid JSON/],
    ['JSON data of the wrong length', () => [JSON.stringify({ shape: [1, 3, 28, 28], data: [1, 2, 3] }), { 'Content-Type': 'application/json' }], 400, /"data" has 3 numbers/],
    ['unsupported media type', () => ['x', { 'Content-Type': 'text/plain' }], 415, /Content-Type/],
    ['body over the limit', () => [Buffer.alloc(100 << 10), { 'Content-Type': 'image/png' }], 413, /.+/],
    ['bad top_k', () => [png, { 'Content-Type': 'image/png' }, '?top_k=0'], 400, /top_k must be a positive integer/],
  ];
  test.each(cases)('%s', async (_n, make, status, message) => {
    const [body, headers, query] = make();
    const r = await request(s.url, 'POST', `/v1/predict${query ?? ''}`, body, headers);
    expect(r.status).toBe(status);
    expect(r.json.message).toMatch(message);
    expect(typeof r.json.error).toBe('string');
    const ok = await request(s.url, 'POST', '/v1/predict', png, { 'Content-Type': 'image/png' });
    expect(ok.status).toBe(200);
  });
  test('a body cut off mid-request (client closes early) does not hurt the server', async () => {
    const port = Number(new URL(s.url).port);
    const reply = await new Promise<string>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n`);
        sock.end(png.subarray(0, 100));
      });
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/truncated/) });
    const ok = await request(s.url, 'POST', '/v1/predict', png, { 'Content-Type': 'image/png' });
    expect(ok.status).toBe(200);
    expect((await request(s.url, 'GET', '/healthz')).status).toBe(200);
  });
});

test('a full queue answers 503 with Retry-After instead of buffering', async () => {
  const g = gated(compiled);
  const { server, url } = await start({ model: g.model, maxBatch: 1, maxWaitMs: 0, maxQueue: 2 });
  try {
    const send = (i: number) => request(url, 'POST', '/v1/predict', tensorBody(sample(i)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '3,28,28' });
    const admitted = [send(0)];
    await until(() => g.started() === 1);
    admitted.push(send(1), send(2));
    await until(() => server.batcher.queueDepth === 2);
    const r = await send(3);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json.error).toBe('overloaded');
    g.open();
    expect((await Promise.all(admitted)).map((x) => x.status)).toEqual([200, 200, 200]);
    expect((await send(4)).status).toBe(200);
    expect(parsePrometheus((await request(url, 'GET', '/metrics')).body).get('ptq_rejected_total{reason="overloaded"}')).toBe(1);
  } finally {
    g.open();
    await server.close();
  }
});

test('close() finishes in-flight requests, then stops', async () => {
  const g = gated(compiled);
  const { server, url } = await start({ model: g.model });
  const inflight = request(url, 'POST', '/v1/predict', tensorBody(sample(3)), { 'Content-Type': 'application/octet-stream', 'X-Shape': '3,28,28' });
  await until(() => g.started() === 1);
  let closed = false;
  const closing = server.close().then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 50));
  expect(closed).toBe(false); // waiting for the in-flight request
  await expect(request(url, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/); // no new connections
  g.open();
  const r = await inflight;
  expect(r.status).toBe(200);
  expect(r.json.predictions[0].index).toBe(Array.from(compiled.runSync(sample(3)).data).reduce((b, v, i, a) => (v > a[b] ? i : b), 0));
  await closing;
  expect(closed).toBe(true);
});

test('DynamicBatcher: waits at most maxWaitMs, caps batches at maxBatch, rejects beyond maxQueue', async () => {
  const sizes: number[] = [];
  const b = new DynamicBatcher(async (x, n) => { sizes.push(n); return x.map((v) => v * 2); }, 2, 2, { maxBatch: 3, maxWaitMs: 20, maxQueue: 4 });
  const rs = await Promise.all([1, 2, 3, 4].map((v) => b.submit(new Float32Array([v, -v]))));
  expect(rs.map((r) => Array.from(r.output))).toEqual([[2, -2], [4, -4], [6, -6], [8, -8]]);
  expect(sizes).toEqual([3, 1]);
  // 3 start at once (a full batch), 4 queue (maxQueue), the last 2 are rejected.
  const over = Array.from({ length: 9 }, (_, i) => b.submit(new Float32Array([i, i])));
  const settled = await Promise.allSettled(over);
  expect(settled.filter((x) => x.status === 'rejected').map((x) => (x as PromiseRejectedResult).reason)).toEqual([expect.any(OverloadError), expect.any(OverloadError)]);
  expect(settled.map((x) => x.status)).toEqual([...Array(7).fill('fulfilled'), 'rejected', 'rejected']);
  await expect(b.submit(new Float32Array(3))).rejects.toThrow(/a sample has 2 floats/);
  expect(() => new DynamicBatcher(async (x) => x, 1, 1, { maxBatch: 0, maxWaitMs: 0, maxQueue: 1 })).toThrow(/maxBatch/);
});

test('ptq serve (CLI): labels from the model file, SIGTERM exits 0 after serving', async () => {
  const file = path.join(dir, 'm.safetensors');
  saveQuantizedModel(file, qmodel, { architecture: { arch: 'mobilenet_v2', numClasses: 10 }, qconfig: 'fbgemm', labels: LABELS, preprocess: FASHION_MNIST_IMAGE_PREPROCESS });
  const p = spawn(process.execPath, [path.join(root, 'bin', 'ptq.js'), 'serve', file, '--port', '0', '--max-batch', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stderr.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^ ]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    p.on('exit', () => reject(new Error(`ptq serve exited: ${out} ${err}`)));
  });
  const r = await request(url, 'POST', '/v1/predict?top_k=1', fs.readFileSync(path.join(images, 'fmnist-1.jpg')), { 'Content-Type': 'image/jpeg' });
  expect(r.status).toBe(200);
  expect(r.json.predictions[0].label).toBe(LABELS[expected.fmnist_labels[1]]);
  const code = await new Promise<number | null>((resolve) => { p.on('exit', (c) => resolve(c)); p.kill('SIGTERM'); });
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(out).toMatch(/SIGTERM: no new connections; finishing in-flight requests\nptq serve: stopped/);
});
