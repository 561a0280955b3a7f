import type { FakeHost } from '../../reconciler/hosts/fake.js';

// Releases as the specs of the release records and of `hostkit releases` lay them out:
// project shop, three release ids in creation order (v3 the newest) and their commits.

export const STATE = '/var/lib/hostkit';
export const C1 = '1a2b3c4d5e6f'.padEnd(40, '0');
export const C2 = '9f8e7d6c5b4a'.padEnd(40, '1');
export const V1 = '20261207T101500Z-1a2b3c4d5e6f-b9c8';
export const V2 = '20261207T111500Z-9f8e7d6c5b4a-b9c8';
export const V3 = '20261207T121500Z-77777777aaaa-b9c8';

/** A fake host answers `rm -rf DIR` (how a release is removed): DIR and its entries go, deepest first. */
export function answerRmRf(host: FakeHost): void {
  host.onExec((call, fake) => {
    if (call.file !== 'rm') return undefined;
    const dir = call.args.at(-1)!;
    for (const p of fake
      .paths()
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .reverse())
      void fake.remove(p); // FakeHost.remove is synchronous in all but name
    return { exitCode: 0, stdout: '', stderr: '' };
  });
}
