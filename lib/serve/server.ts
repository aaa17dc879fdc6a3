// `ptq serve`'s HTTP server (fastify): POST /v1/predict (an image, or a raw float32 tensor) -> top-k
// labels and scores; dynamic batching of concurrent requests (lib/serve/batcher.ts) into
// CompiledModel.run() (a worker thread: the event loop stays free), a bounded queue (503 +
// Retry-After beyond it), body size limits, 400 with a JSON message on bad input, GET /healthz,
// GET /metrics (Prometheus text), and a graceful close that finishes in-flight requests.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as os from 'os';
import type { CompiledModel } from '../inference';
import { ImageError, ImagePreprocess, preprocessShape } from '../io/images';
import { packageVersion } from '../version';
import { DynamicBatcher, OverloadError } from './batcher';
import { PreprocessPool } from './preprocess-pool';
import { Counter, Gauge, Histogram, Registry } from './metrics';

/** Options of createServer. */
export interface ServeOptions {
  /** The compiled model; its maxBatch bounds the batch size. */
  model: CompiledModel;
  /** How images become the model's input; its output shape must be the model's input shape. */
  preprocess: ImagePreprocess;
  /** Class names by output index (default: the index as a string). */
  labels?: string[];
  /** Predictions returned (default 5; a request may ask for fewer or more with ?top_k=). */
  topK?: number;
  /** Most requests per batch (default: the model's maxBatch; 1 disables batching). */
  maxBatch?: number;
  /** Longest wait for a batch to fill (ms, default 2). */
  maxWaitMs?: number;
  /** Most requests waiting (decoding or queued) before 503 (default 64). */
  maxQueue?: number;
  /** Largest request body in bytes (default 8 MiB); larger is 413. */
  bodyLimit?: number;
  /** Worker threads decoding and preprocessing images (default: cores - 1, at least 1, at most 4; 0: on the event loop). */
  preprocessThreads?: number;
  /**
   * A request whose headers and body have not fully arrived within this time gets a 408 and its
   * connection is closed (default 30000): slow or stalled clients cannot hold connections open.
   * Idle connections (no request started) are closed after the same time.
   */
  requestTimeoutMs?: number;
  /** Fastify's logger option (default false). */
  logger?: boolean;
}

/** A created, not yet listening, server. */
export interface PredictServer {
  app: FastifyInstance;
  batcher: DynamicBatcher;
  metrics: Registry;
  /** Image preprocessing worker threads in use (0: on the event loop). */
  preprocessThreads: number;
  /** Starts listening; resolves with the bound address (e.g. http://127.0.0.1:8080). */
  listen(port: number, host?: string): Promise<string>;
  /** Stops accepting connections, finishes in-flight requests, then resolves. */
  close(): Promise<void>;
}

/** A 4xx with a code and a clear message, sent as {"error": code, "message": ...}. */
class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
  }
}

const bad = (message: string) => new HttpError(400, 'bad_input', message);

function parseShape(s: unknown): number[] {
  const parts = Array.isArray(s) ? s : typeof s === 'string' ? s.split(',').map((x) => x.trim()) : null;
  if (!parts || parts.length === 0) throw bad('the tensor shape is missing: send X-Shape: N,C,H,W (or C,H,W) with application/octet-stream, or {"shape": [...], "data": [...]}');
  const shape = parts.map(Number);
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) throw bad(`bad tensor shape ${JSON.stringify(s)}: expected positive integers`);
  return shape;
}

function softmaxTopK(logits: Float32Array, k: number, labels: string[] | undefined): Array<{ index: number; label: string; score: number; logit: number }> {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  return order.slice(0, k).map((i) => ({ index: i, label: labels?.[i] ?? String(i), score: Math.exp(logits[i] - max) / sum, logit: logits[i] }));
}

/** Builds the server around a compiled model (call listen() to start it). */
export function createServer(o: ServeOptions): PredictServer {
  const model = o.model;
  const inShape = [...model.inputShape], inPer = inShape.reduce((a, b) => a * b, 1);
  const outPer = model.outputShape.reduce((a, b) => a * b, 1);
  const pshape = preprocessShape(o.preprocess);
  if (!pshape || pshape.join() !== inShape.join())
    throw new RangeError(`the image preprocessing gives [${pshape ?? 'no fixed shape (it needs a crop)'}] but the model takes [${inShape}]`);
  if (o.labels && o.labels.length !== outPer) throw new RangeError(`${o.labels.length} labels for a model with ${outPer} outputs`);
  const topK = o.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`topK must be a positive integer, got ${topK}`);
  const maxBatch = Math.min(o.maxBatch ?? model.maxBatch, model.maxBatch);
  const maxQueue = o.maxQueue ?? 64;

  const metrics = new Registry();
  const requests = metrics.add(new Counter('ptq_http_requests_total', 'HTTP requests by route and status code'));
  const latency = metrics.add(new Histogram('ptq_predict_latency_seconds', 'POST /v1/predict latency (receipt of the body to the response)',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]));
  const batchSizes = metrics.add(new Histogram('ptq_batch_size', 'samples per inference batch', [1, 2, 4, 8, 16, 32, 64, 128]));
  const inferSeconds = metrics.add(new Histogram('ptq_batch_inference_seconds', 'run time of one inference batch',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]));
  const rejected = metrics.add(new Counter('ptq_rejected_total', 'requests rejected by reason (overload, bad_input, ...)'));
  let preparing = 0;
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const pool = new PreprocessPool(o.preprocess, o.preprocessThreads ?? Math.max(1, Math.min(4, cores - 1)));
  const batcher = new DynamicBatcher(async (x, n) => (await model.run(new Float32Array(x.buffer, x.byteOffset, n * inPer))).data,
    inPer, outPer, { maxBatch, maxWaitMs: o.maxWaitMs ?? 2, maxQueue }, (n, ms) => {
      batchSizes.observe(n);
      inferSeconds.observe(ms / 1000);
    });
  metrics.add(new Gauge('ptq_queue_depth', 'requests queued for a batch', () => batcher.queueDepth));
  metrics.add(new Gauge('ptq_requests_preparing', 'requests admitted and being decoded', () => preparing));
  metrics.add(new Gauge('ptq_batches_in_flight', 'inference batches running', () => batcher.inFlight));

  // fastify is loaded here, not at import: `require('ptq-node')` stays light for library users.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Fastify = require('fastify') as typeof import('fastify').default;
  const requestTimeout = o.requestTimeoutMs ?? 30000;
  if (!Number.isInteger(requestTimeout) || requestTimeout < 1) throw new RangeError(`requestTimeoutMs must be a positive integer, got ${requestTimeout}`);
  const app = Fastify({
    logger: o.logger ?? false, bodyLimit: o.bodyLimit ?? 8 << 20, requestTimeout, return503OnClosing: true,
    // Node checks request/header timeouts every connectionsCheckingInterval (30 s by default):
    // check often enough that the timeout is honoured within ~25%.
    http: { headersTimeout: requestTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeout / 4))) },
    // A connection that goes quiet (no bytes either way) is closed after twice the request timeout.
    connectionTimeout: 2 * requestTimeout,
    keepAliveTimeout: Math.min(72000, requestTimeout),
    // Malformed or cut-off HTTP (e.g. a body shorter than its Content-Length, then EOF): a JSON 400.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy(err);
        return;
      }
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const body = JSON.stringify({ error: timeout ? 'request_timeout' : 'bad_request', message: `malformed, truncated or too slow HTTP request (${err.code ?? err.message})` });
      rejected.inc({ reason: timeout ? 'request_timeout' : 'bad_http' });
      socket.end(`HTTP/1.1 ${timeout ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });
  app.addContentTypeParser(/^image\//, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  let closing = false;

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    let status = err.statusCode ?? 500, code = err.code ?? 'internal_error', message = err.message;
    if (err instanceof OverloadError) {
      status = 503;
      code = 'overloaded';
      reply.header('Retry-After', String(err.retryAfterSeconds));
    } else if (err instanceof ImageError) {
      status = 400;
      code = 'bad_image';
    } else if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') code = 'body_too_large';
    else if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      code = 'unsupported_media_type';
      message = `${message}; send image/jpeg, image/png, image/webp, application/octet-stream (float32 + X-Shape) or application/json`;
    } else if (code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') code = 'client_aborted';
    else if (status >= 400 && status < 500 && code.startsWith('FST_')) code = 'bad_request';
    else if (status >= 500) code = 'internal_error';
    if (status >= 500 && status !== 503) app.log.error(err);
    rejected.inc({ reason: code });
    void reply.code(status).send({ error: code, message });
  });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unknown', code: String(reply.statusCode) });
  });

  /** The request's single sample as the model's input floats. */
  async function inputOf(req: FastifyRequest): Promise<Float32Array> {
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const body = req.body;
    if (type.startsWith('image/')) {
      if (!Buffer.isBuffer(body) || body.length === 0) throw bad('the request body is empty; send the image bytes');
      return pool.run(body);
    }
    let shape: number[], data: Float32Array;
    if (type === 'application/octet-stream') {
      if (!Buffer.isBuffer(body)) throw bad('expected a binary body');
      shape = parseShape(req.headers['x-shape']);
      const want = shape.reduce((a, b) => a * b, 1) * 4;
      if (body.length !== want) throw bad(`the body has ${body.length} bytes but shape [${shape}] needs ${want} (float32, little-endian)${body.length < want ? ': truncated?' : ''}`);
      data = new Float32Array(new Uint8Array(body).buffer);
    } else if (type === 'application/json') {
      const j = body as { shape?: unknown; data?: unknown; image?: unknown } | null;
      if (!j || typeof j !== 'object') throw bad('expected a JSON object {"shape": [...], "data": [...]} or {"image": "<base64>"}');
      if (typeof j.image === 'string') {
        const bytes = Buffer.from(j.image, 'base64');
        if (bytes.length === 0) throw bad('"image" is empty or not base64');
        return pool.run(bytes);
      }
      shape = parseShape(j.shape);
      if (!Array.isArray(j.data)) throw bad('"data" must be an array of numbers');
      const want = shape.reduce((a, b) => a * b, 1);
      if (j.data.length !== want) throw bad(`"data" has ${j.data.length} numbers but shape [${shape}] needs ${want}`);
      if (!j.data.every((v) => typeof v === 'number' && Number.isFinite(v))) throw bad('"data" must contain finite numbers only');
      data = Float32Array.from(j.data as number[]);
    } else throw new HttpError(415, 'unsupported_media_type', `unsupported Content-Type '${type}'`);
    const sample = shape.length === inShape.length + 1 && shape[0] === 1 ? shape.slice(1) : shape;
    if (sample.join() !== inShape.join()) throw bad(`wrong tensor shape [${shape}]: the model takes [1,${inShape}] (or [${inShape}]), one sample per request`);
    if (!data.every(Number.isFinite)) throw bad('the tensor contains NaN or infinite values');
    return data;
  }

  app.post('/v1/predict', async (req: FastifyRequest<{ Querystring: { top_k?: string } }>, reply: FastifyReply) => {
    const t0 = performance.now();
    const k = req.query.top_k !== undefined ? Number(req.query.top_k) : topK;
    if (!Number.isInteger(k) || k < 1) throw bad(`top_k must be a positive integer, got '${req.query.top_k}'`);
    if (preparing + batcher.queueDepth >= maxQueue) throw new OverloadError(`the queue is full (${maxQueue} requests waiting); retry later`);
    preparing++;
    let x: Float32Array;
    try {
      x = await inputOf(req);
    } finally {
      preparing--;
    }
    const r = await batcher.submit(x);
    latency.observe((performance.now() - t0) / 1000);
    void reply.header('Cache-Control', 'no-store');
    return { predictions: softmaxTopK(r.output, Math.min(k, outPer), o.labels), batch_size: r.batchSize, queue_ms: r.queueMs, inference_ms: r.runMs };
  });

  app.get('/healthz', async (_req, reply) => {
    if (closing) return reply.code(503).send({ status: 'shutting_down' });
    return { status: 'ok', version: packageVersion(), input_shape: inShape, classes: outPer, queue_depth: batcher.queueDepth, max_batch: maxBatch };
  });

  app.get('/metrics', async (_req, reply) => {
    void reply.header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return metrics.render();
  });

  app.addHook('onClose', async () => {
    batcher.close();
    await batcher.drain();
    await pool.close();
  });

  return {
    app, batcher, metrics, preprocessThreads: pool.threads,
    async listen(port: number, host = '127.0.0.1') {
      return app.listen({ port, host });
    },
    async close() {
      closing = true;
      await app.close();
    },
  };
}
