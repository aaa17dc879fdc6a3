// Progress bars on stderr for long work (calibration, evaluation); silent when not a TTY or --json.
import { SingleBar, Presets } from 'cli-progress';

/** A progress reporter: update(done) then stop(). */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A bar on stderr labelled `label` with `total` steps (a no-op when quiet or stderr is not a TTY). */
export function progressBar(label: string, total: number, quiet = false): Progress {
  if (quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} {eta_formatted}`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  bar.start(total, 0);
  return { update: (d) => bar.update(d), stop: () => bar.stop() };
}
