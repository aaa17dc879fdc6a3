// Worker thread of PreprocessPool: decodes and preprocesses images (sharp + the JS transforms of
// lib/io/images.ts) so the server's event loop only parses HTTP and batches.
import { parentPort, workerData } from 'worker_threads';
import { ImagePreprocess, loadImageTensor } from '../io/images';

const preprocess = (workerData as { preprocess: ImagePreprocess }).preprocess;

parentPort!.on('message', (m: { id: number; bytes: Uint8Array }) => {
  loadImageTensor(m.bytes, preprocess).then(
    (t) => parentPort!.postMessage({ id: m.id, data: t.data }, [t.data.buffer as ArrayBuffer]),
    (e: Error & { code?: string }) => parentPort!.postMessage({ id: m.id, error: { message: e.message, code: e.code ?? null } }),
  );
});
