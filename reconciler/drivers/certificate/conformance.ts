import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { many, type ConformanceFixture } from '../../../test/support/conformance.js';
import type { FakeHost } from '../../hosts/fake.js';
import type { Host } from '../../hosts/types.js';
import { TLS_DIR } from '../shared/web.js';

// Self-signed certificates (no CA needed), in a TLS directory that exists before them (no manifest may declare it).
const name = (set: string, i: number) => `ck-${set}-c${i}`;

async function tlsDirectory(host: Host): Promise<void> {
  await host.mkdir(path.posix.dirname(TLS_DIR), { uid: 0, gid: 0, mode: 0o755 });
  await host.mkdir(TLS_DIR, { uid: 0, gid: 0, mode: 0o700 });
}

// openssl on the fake host: this machine's openssl writes the key and certificate it asks for, so they parse.
function fakeOpenssl(host: FakeHost): void {
  host.onExec((call) => {
    if (call.file !== 'openssl') return undefined;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hk-ck-openssl-'));
    try {
      const outputs = new Map<string, string>();
      const args = call.args.map((a, i) => {
        if (call.args[i - 1] !== '-keyout' && call.args[i - 1] !== '-out') return a;
        const local = path.join(dir, String(outputs.size));
        outputs.set(a, local);
        return local;
      });
      execFileSync('openssl', args, { stdio: 'ignore' });
      for (const [onHost, local] of outputs) host.seedFile(onHost, readFileSync(local), { mode: 0o600 });
      return { exitCode: 0, stdout: '', stderr: '' };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'certificate',
    prepare: tlsDirectory,
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'Certificate',
        name: name(set, i),
        spec: { domains: [`${name(set, i)}.test`, ...(change ? [`www.${name(set, i)}.test`] : [])], issuer: 'self-signed' },
      })),
    paths: () => [TLS_DIR],
    fake: (host) => (fakeOpenssl(host), {}),
  },
];
