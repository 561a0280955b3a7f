import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseManifest, type ParseResult } from './load.js';

/** Below this many files, starting workers costs more than it saves. */
export const WORKER_THRESHOLD = 200;

// Parse manifest files on all cores: YAML parsing is CPU-bound and is most of
// the time a large repository takes to load. Workers run the same
// parseManifest and return plain data (values and location indexes).
// Running from TypeScript sources (tests) there is no compiled worker; parse inline.
export async function parseInWorkers(root: string, files: readonly string[]): Promise<ParseResult[]> {
  const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'parse-worker.js');
  const available = await fs.stat(workerFile).then(
    () => import.meta.url.endsWith('.js'),
    () => false,
  );
  const count = Math.min(os.availableParallelism(), 4, Math.ceil(files.length / 100));
  if (!available || count < 2) {
    return Promise.all(files.map(async (file) => parseManifest({ file, bytes: await fs.readFile(path.join(root, file)) })));
  }
  const chunks: string[][] = Array.from({ length: count }, () => []);
  files.forEach((f, i) => chunks[i % count]!.push(f));
  const results = await Promise.all(
    chunks.map(
      (chunk) =>
        new Promise<ParseResult[]>((resolve, reject) => {
          const worker = new Worker(workerFile, { workerData: { root, files: chunk } });
          worker.once('message', (m: ParseResult[]) => {
            resolve(m);
            void worker.terminate();
          });
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code !== 0) reject(new Error(`manifest parser worker exited with code ${code}`));
          });
        }),
    ),
  );
  // Back to the sorted file order.
  const byFile = new Map<string, ParseResult>();
  chunks.forEach((chunk, c) => chunk.forEach((f, i) => byFile.set(f, results[c]![i]!)));
  return files.map((f) => byFile.get(f)!);
}
