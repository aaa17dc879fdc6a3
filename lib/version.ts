// The package version, read from package.json (one level above lib/ and dist/).
import * as fs from 'fs';
import * as path from 'path';

let cached: string | undefined;

/** The version field of ptq-node's package.json. */
export function packageVersion(): string {
  if (!cached) cached = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version as string;
  return cached;
}
