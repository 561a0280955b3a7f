// How the packaging steps wait for a tool they spawned (tar, dpkg-deb).
import type { ChildProcess } from 'node:child_process';

/** Resolves once the child exits, with its exit code (or signal) and what it wrote to stderr. */
export function finished(child: ChildProcess): Promise<{ code: number | string; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', stderr }));
  });
}
