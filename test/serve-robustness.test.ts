// ptq serve under hostile clients: malformed bodies, slowloris-style clients (a configured request
// timeout closes them while other clients are served), oversize and lying uploads (413), a flood
// beyond the queue (503) — and afterwards a normal request still gets the right answer.
import * as net from 'net';
import { CompiledModel, compileModel } from '../lib/inference';
import { FASHION_MNIST_IMAGE_PREPROCESS } from '../lib/io/images';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { createServer, PredictServer, ServeOptions } from '../lib/serve/server';
import { qconfigByName } from '../lib/workflow';
import { rows, smallInput, smallModel } from './helpers/fixtures';
import { httpRequest, Res } from './helpers/http';

function request(url: string, pathname: string, body?: Buffer | string, headers: Record<string, string> = {}, method = 'POST'): Promise<Res> {
  return httpRequest(url, method, pathname, body, headers);
}

/** Raw TCP: writes the chunks with `gapMs` between them, returns what the server sent and when the socket closed. */
function raw(port: number, chunks: Array<string | Buffer>, gapMs: number, endAfter = false): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let reply = '';
    const sock = net.connect(port, '127.0.0.1', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        await new Promise((r) => setTimeout(r, gapMs));
      }
      if (endAfter && !sock.destroyed) sock.end();
    });
    sock.on('data', (d) => (reply += d.toString()));
    sock.on('close', () => resolve({ reply, ms: Date.now() - t0 }));
    sock.on('error', () => undefined);
  });
}

const x = smallInput();
let compiled: CompiledModel;
let want: Float32Array[];
const sample = (i: number) => x.data.slice(i * 2352, (i + 1) * 2352);
const tensorBody = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const predictHeaders = { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,28,28' };

beforeAll(() => {
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName('fbgemm');
  prepare(m, true);
  for (let i = 0; i < 8; i += 4) m.call(rows(x, i, 4));
  compiled = compileModel(convert(m), { inputShape: [3, 28, 28], maxBatch: 4 });
  const y = compiled.runSync(x);
  want = Array.from({ length: 8 }, (_, i) => y.data.slice(i * 10, (i + 1) * 10));
});
afterAll(() => compiled.dispose());

async function start(o: Partial<ServeOptions> = {}): Promise<{ server: PredictServer; url: string; port: number }> {
  const server = createServer({ model: compiled, preprocess: FASHION_MNIST_IMAGE_PREPROCESS, preprocessThreads: 0, ...o });
  const url = await server.listen(0);
  return { server, url, port: Number(new URL(url).port) };
}

/** A normal request: 200 and the logits runSync gives for that sample. */
async function expectCorrect(url: string, i = 3): Promise<void> {
  const r = await request(url, '/v1/predict?top_k=10', tensorBody(sample(i)), predictHeaders);
  expect(r.status).toBe(200);
  const logits = new Float32Array(10);
  for (const p of r.json.predictions) logits[p.index] = p.logit;
  expect(Array.from(logits)).toEqual(Array.from(want[i]));
}

describe('malformed bodies: 4xx JSON errors, the server stays correct', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => { s = await start({ bodyLimit: 1 << 20 }); });
  afterAll(() => s.server.close());
  const json = { 'Content-Type': 'application/json' };
  const cases: Array<[string, string | Buffer, Record<string, string>, number]> = [
    ['JSON nested 100k deep', '['.repeat(100000) + ']'.repeat(100000), json, 400],
    ['JSON object nested 50k deep', '{"a":'.repeat(50000) + '1' + '}'.repeat(50000), json, 400],
    ['JSON null', 'null', json, 400],
    ['JSON number', '5', json, 400],
    ['JSON string', '"abc"', json, 400],
    ['JSON array', '[1,2,3]', json, 400],
    ['JSON __proto__ keys', '{"__proto__":{"shape":[1,3,28,28],"data":[]},"constructor":{"prototype":{"polluted":1}}}', json, 400],
    ['JSON data of strings', JSON.stringify({ shape: [1, 3, 28, 28], data: Array(2352).fill('1') }), json, 400],
    ['JSON data with null', JSON.stringify({ shape: [1, 3, 28, 28], data: [...Array(2351).fill(0), null] }), json, 400],
    ['JSON huge shape, tiny data', JSON.stringify({ shape: [1e9, 1e9, 1e9], data: [1] }), json, 400],
    ['JSON shape of floats', JSON.stringify({ shape: [1, 3, 28.5, 28], data: [] }), json, 400],
    ['JSON image not base64', JSON.stringify({ image: '!!!!' }), json, 400],
    ['JSON image of garbage', JSON.stringify({ image: Buffer.from('not an image at all').toString('base64') }), json, 400],
    ['invalid UTF-8 JSON', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), json, 400],
    ['truncated JSON', '{"shape":[1,3,28,28],"data":[1,2', json, 400],
    ['octet-stream with huge X-Shape', Buffer.alloc(16), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1048576,1048576,1048576' }, 400],
    ['octet-stream with negative X-Shape', Buffer.alloc(16), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,-3,28,28' }, 400],
    ['octet-stream with garbage X-Shape', Buffer.alloc(16), { 'Content-Type': 'application/octet-stream', 'X-Shape': '1,3,28,28,abc' }, 400],
    ['octet-stream of odd length', Buffer.alloc(9407), predictHeaders, 400],
    ['octet-stream of infinities', tensorBody(new Float32Array(2352).fill(Infinity)), predictHeaders, 400],
    ['image/png holding JSON', '{"shape":[1]}', { 'Content-Type': 'image/png' }, 400],
    ['multipart/form-data', '--x\r\n\r\nabc\r\n--x--', { 'Content-Type': 'multipart/form-data; boundary=x' }, 415],
    ['text/plain', 'hello', { 'Content-Type': 'text/plain' }, 415],
    ['no Content-Type', 'hello', {}, 415],
  ];
  test.each(cases)('%s', async (_what, body, headers, status) => {
    const r = await request(s.url, '/v1/predict', body, headers);
    expect(r.status).toBe(status);
    expect(typeof r.json?.error).toBe('string');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectCorrect(s.url);
  });

  test('garbage on the wire (not HTTP) gets a 400 or a closed socket; the server keeps answering', async () => {
    for (const junk of ['\x00\x01\x02\x03\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'POST /v1/predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
      'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n', `GET /${'a'.repeat(100000)} HTTP/1.1\r\n\r\n`,
      'POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n']) {
      const r = await raw(s.port, [junk], 10, true);
      if (r.reply) expect(r.reply).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    await expectCorrect(s.url);
  });
});

describe('slow clients (slowloris): timed out with 408, others served meanwhile', () => {
  let s: Awaited<ReturnType<typeof start>>;
  const TIMEOUT = 800;
  beforeAll(async () => { s = await start({ requestTimeoutMs: TIMEOUT }); });
  afterAll(() => s.server.close());

  test('headers trickled one byte per 100 ms, never finished; a stalled body; an idle connection: all closed, while normal requests are answered promptly', async () => {
    const head = 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nX-Shape: 1,3,28,28\r\nX-Padding: ' + 'a'.repeat(200);
    const trickle = raw(s.port, head.split(''), 100);
    const stalledBody = raw(s.port, [`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nX-Shape: 1,3,28,28\r\nContent-Length: 9408\r\n\r\n`, Buffer.alloc(100)], 50);
    const idle = raw(s.port, [], 0);
    // Meanwhile: normal requests keep getting quick, correct answers.
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) await expectCorrect(s.url, i % 8);
    expect(Date.now() - t0).toBeLessThan(5000);
    const [a, b, c] = await Promise.all([trickle, stalledBody, idle]);
    // Node closes a request not received within requestTimeout (checked every TIMEOUT/4 ms).
    for (const r of [a, b]) {
      expect(r.ms).toBeLessThan(TIMEOUT * 4);
      expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT * 0.9);
      if (r.reply) expect(r.reply).toMatch(/^HTTP\/1\.1 408 /);
    }
    expect(a.reply + b.reply).toMatch(/408/); // at least one got the JSON 408 before the close
    expect(c.ms).toBeLessThan(TIMEOUT * 4);
    await expectCorrect(s.url);
  }, 30000);
});

describe('oversize uploads: 413 without buffering them', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => { s = await start({ bodyLimit: 64 << 10 }); });
  afterAll(() => s.server.close());

  test('a body over the limit; a Content-Length claiming 10 GB; a chunked upload that never ends', async () => {
    expect((await request(s.url, '/v1/predict', Buffer.alloc(100 << 10), predictHeaders)).status).toBe(413);
    // Lying Content-Length: refused from the header alone (the body is never read).
    const lie = await raw(s.port, ['POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10000000000\r\n\r\n', 'abc'], 20);
    expect(lie.reply).toMatch(/^HTTP\/1\.1 413 /);
    // Chunked, no length: cut off once the limit is passed.
    const chunk = Buffer.alloc(16 << 10, 0x41);
    const chunked = await raw(s.port, ['POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n',
      ...Array.from({ length: 12 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]))], 5, true);
    expect(chunked.reply).toMatch(/^HTTP\/1\.1 413 /);
    await expectCorrect(s.url);
  });
});

describe('a flood beyond the queue', () => {
  test('300 concurrent requests at max-queue 8: the excess gets 503 + Retry-After, every admitted one the right answer', async () => {
    // Slow the model down (each batch waits 20 ms) so the queue fills deterministically.
    const slow = Object.create(compiled, { run: { value: async (a: Float32Array) => { await new Promise((r) => setTimeout(r, 20)); return compiled.run(a); } } }) as CompiledModel;
    const s = await start({ model: slow, maxQueue: 8, maxBatch: 4, maxWaitMs: 1 });
    try {
      const rs = await Promise.all(Array.from({ length: 300 }, (_, i) =>
        request(s.url, '/v1/predict?top_k=10', tensorBody(sample(i % 8)), predictHeaders).then((r) => ({ i, r }))));
      let ok = 0, over = 0;
      for (const { i, r } of rs) {
        if (r.status === 200) {
          ok++;
          const logits = new Float32Array(10);
          for (const p of r.json.predictions) logits[p.index] = p.logit;
          expect(Array.from(logits)).toEqual(Array.from(want[i % 8]));
        } else {
          expect(r.status).toBe(503);
          expect(r.headers['retry-after']).toBeDefined();
          expect(r.json.error).toBe('overloaded');
          over++;
        }
      }
      expect(ok).toBeGreaterThanOrEqual(8);
      expect(over).toBeGreaterThan(0);
      expect(ok + over).toBe(300);
      const health = await request(s.url, '/healthz', undefined, {}, 'GET');
      expect(health.status).toBe(200);
      await expectCorrect(s.url);
    } finally {
      await s.server.close();
    }
  }, 60000);
});
