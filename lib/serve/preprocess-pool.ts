// Image preprocessing on worker threads: decode (sharp) + Resize/CenterCrop/Normalize (JS), off the
// event loop. Each worker takes up to two images at a time (one decoding in libvips while the other
// is transformed); a crashed worker fails its images and is replaced.
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ImageError, ImagePreprocess, loadImageTensor } from '../io/images';

interface Task {
  id: number;
  bytes: Uint8Array;
  resolve: (x: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Task>;
}

const PER_WORKER = 2;

/** The compiled worker script: next to this file (dist/), or dist/serve/ when running from lib/ (ts-jest). */
function workerScript(): string | null {
  for (const f of [path.join(__dirname, 'preprocess-worker.js'), path.join(__dirname, '..', '..', 'dist', 'serve', 'preprocess-worker.js')])
    if (fs.existsSync(f)) return f;
  return null;
}

/** Preprocesses images on `threads` worker threads (0: on the calling thread). */
export class PreprocessPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private closed = false;
  readonly threads: number;

  constructor(readonly preprocess: ImagePreprocess, threads: number) {
    const script = threads > 0 ? workerScript() : null;
    this.threads = script ? threads : 0;
    for (let i = 0; i < this.threads; i++) this.slots.push(this.spawn(script!));
  }

  private spawn(script: string): Slot {
    const slot: Slot = { worker: new Worker(script, { workerData: { preprocess: this.preprocess } }), inFlight: new Map() };
    slot.worker.on('message', (m: { id: number; data?: Float32Array; error?: { message: string; code: string | null } }) => {
      const t = slot.inFlight.get(m.id);
      if (!t) return;
      slot.inFlight.delete(m.id);
      if (m.error) t.reject(m.error.code === 'ERR_IMAGE' ? new ImageError(m.error.message) : new Error(m.error.message));
      else t.resolve(m.data!);
      this.dispatch();
    });
    const fail = (e: Error) => {
      for (const t of slot.inFlight.values()) t.reject(new Error(`image preprocessing worker failed: ${e.message}`));
      slot.inFlight.clear();
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) {
        this.slots[i] = this.spawn(script);
        this.dispatch();
      }
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => { if (!this.closed) fail(new Error(`exited with code ${code}`)); });
    slot.worker.unref();
    return slot;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let best: Slot | null = null;
      for (const s of this.slots) if (s.inFlight.size < PER_WORKER && (!best || s.inFlight.size < best.inFlight.size)) best = s;
      if (!best) return;
      const t = this.waiting.shift()!;
      best.inFlight.set(t.id, t);
      best.worker.postMessage({ id: t.id, bytes: t.bytes });
    }
  }

  /** The image's CHW float32 tensor (rejects with ImageError when it is not a usable image). */
  run(bytes: Uint8Array): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('the preprocessing pool is closed'));
    if (this.threads === 0) return loadImageTensor(bytes, this.preprocess).then((t) => t.data);
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, bytes, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops the workers (after the images in flight). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.slots.some((s) => s.inFlight.size > 0) || this.waiting.length > 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
