import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { parseManifest } from './load.js';

// Worker side of parse-pool.ts: parse the given files, post back plain data.
const { root, files } = workerData as { root: string; files: string[] };
parentPort!.postMessage(files.map((file) => parseManifest({ file, bytes: readFileSync(path.join(root, file)) })));
