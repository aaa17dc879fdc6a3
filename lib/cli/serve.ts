// `ptq serve M.safetensors --port N`: the HTTP inference server (lib/serve/server.ts).
import { Command } from 'commander';
import { compileModel } from '../inference';
import { preprocessShape } from '../io/images';
import { loadQuantizedModel } from '../io/model-file';
import { loadNative } from '../kernels/native';
import { createServer } from '../serve/server';
import { addPreprocessOptions, positiveInt, preprocessFromArgs, PreprocessArgs, readLabels } from './options';

interface ServeArgs extends PreprocessArgs {
  port: string;
  host: string;
  maxBatch: string;
  maxWaitMs: string;
  maxQueue: string;
  labels?: string;
  topK: string;
  threads: string;
  bodyLimit: string;
  requestTimeoutMs: string;
  preprocessThreads?: string;
  log?: boolean;
}

function nonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number >= 0, got '${v}'`);
  return n;
}

/** Registers `ptq serve` on the program. */
export function registerServe(p: Command): void {
  const c = p.command('serve <model>')
    .description('serve a quantized model over HTTP: POST /v1/predict (image or float32 tensor) -> top-k JSON; GET /healthz, GET /metrics')
    .option('--port <n>', 'TCP port (0: any free port)', '8080')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--max-batch <n>', 'most requests per inference batch (1: no batching)', '16')
    .option('--max-wait-ms <ms>', 'longest wait for a batch to fill', '2')
    .option('--max-queue <n>', 'most requests waiting; more get 503 with Retry-After', '64')
    .option('--labels <file>', "class names, one per line (default: the model file's labels, else indices)")
    .option('--top-k <n>', 'predictions per response (a request may pass ?top_k=)', '5')
    .option('--threads <n>', 'intra-op threads per batch (0: all cores)', '0')
    .option('--body-limit <bytes>', 'largest request body', String(8 << 20))
    .option('--request-timeout-ms <ms>', 'a request (headers and body) not received within this time gets 408 and its connection closed', '30000')
    .option('--preprocess-threads <n>', 'worker threads decoding and preprocessing images (default: cores - 1, 1..4; 0: on the event loop)')
    .option('--log', 'log requests (fastify/pino JSON lines on stdout)');
  addPreprocessOptions(c)
    .action(async (file: string, a: ServeArgs) => {
      const { model, info } = loadQuantizedModel(file);
      const preprocess = preprocessFromArgs(a, info.preprocess);
      const inputShape = preprocessShape(preprocess);
      if (!inputShape) throw new Error('the image preprocessing needs a crop (--crop) so every input has the same shape');
      const maxBatch = positiveInt('--max-batch', a.maxBatch);
      const threads = Number(a.threads);
      if (!Number.isInteger(threads) || threads < 0) throw new Error(`--threads must be an integer >= 0, got '${a.threads}'`);
      const compiled = compileModel(model, { inputShape, maxBatch, threads });
      const labels = a.labels ? readLabels(a.labels) : info.labels;
      const server = createServer({
        model: compiled, preprocess, labels, topK: positiveInt('--top-k', a.topK), maxBatch,
        maxWaitMs: nonNegative('--max-wait-ms', a.maxWaitMs), maxQueue: positiveInt('--max-queue', a.maxQueue),
        bodyLimit: positiveInt('--body-limit', a.bodyLimit), logger: !!a.log,
        requestTimeoutMs: positiveInt('--request-timeout-ms', a.requestTimeoutMs),
        preprocessThreads: a.preprocessThreads !== undefined ? nonNegative('--preprocess-threads', a.preprocessThreads) : undefined,
      });
      const port = Number(a.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got '${a.port}'`);
      const url = await server.listen(port, a.host);
      console.log(`ptq serve: listening on ${url} (model ${file}, input [${inputShape}], ${compiled.outputShape} outputs, ` +
        `max batch ${maxBatch}, max wait ${a.maxWaitMs} ms, max queue ${a.maxQueue}, isa ${loadNative().isa}, ` +
        `${server.preprocessThreads} image threads, ` +
        `labels ${labels ? (a.labels ? a.labels : 'from the model file') : 'none (indices)'})`);
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) {
          console.error(`ptq serve: ${sig} again, exiting now`);
          process.exit(1);
        }
        stopping = true;
        console.log(`ptq serve: ${sig}: no new connections; finishing in-flight requests`);
        server.close().then(() => {
          console.log('ptq serve: stopped');
          process.exit(0);
        }, (e) => {
          console.error(`ptq serve: error while closing: ${(e as Error).message}`);
          process.exit(1);
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
