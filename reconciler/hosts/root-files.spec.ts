import { describe, expect, it } from 'vitest';
import { FakeHost } from './fake.js';
import { ensureRootDirectory, holdKnownDirectory, writeRootFile } from './root-files.js';

// A FakeHost that records the paths stat() was asked about.
function countingHost(): { host: FakeHost; stats: string[] } {
  const host = new FakeHost();
  const stats: string[] = [];
  const stat = host.stat.bind(host);
  host.stat = (p: string) => (stats.push(p), stat(p));
  return { host, stats };
}

describe('reconciler/hosts/root-files', () => {
  it('makes every missing level root 0700 from the top, asking about all levels at once', async () => {
    const { host, stats } = countingHost();
    await ensureRootDirectory(host, '/var/lib/hostkit/runs/r1');
    expect(stats).toEqual(['/var', '/var/lib', '/var/lib/hostkit', '/var/lib/hostkit/runs', '/var/lib/hostkit/runs/r1']);
    expect(await host.stat('/var/lib/hostkit/runs/r1')).toMatchObject({ type: 'directory', uid: 0, gid: 0, mode: 0o700 });
    // An existing level keeps its mode.
    expect((await host.stat('/var/lib'))?.mode).toBe(0o755);
  });

  it('a directory held as known (the run lock) is not looked at again, nor anything above it, until released', async () => {
    const { host, stats } = countingHost();
    await ensureRootDirectory(host, '/var/lib/hostkit');
    stats.length = 0;
    const forget = holdKnownDirectory(host, '/var/lib/hostkit');
    await writeRootFile(host, '/var/lib/hostkit/inventory.json', '{}\n');
    await writeRootFile(host, '/var/lib/hostkit/runs/r2/run.json', '{}\n');
    expect(stats).toEqual(['/var/lib/hostkit/runs', '/var/lib/hostkit/runs/r2']);
    expect(await host.stat('/var/lib/hostkit/runs/r2/run.json')).toMatchObject({ type: 'file', mode: 0o600 });
    forget();
    stats.length = 0;
    await writeRootFile(host, '/var/lib/hostkit/inventory.json', '{}\n');
    expect(stats).toEqual(['/var', '/var/lib', '/var/lib/hostkit']);
    // Another host object knows nothing of it.
    const other = countingHost();
    holdKnownDirectory(host, '/var/lib/hostkit');
    await ensureRootDirectory(other.host, '/var/lib/hostkit');
    expect(other.stats).toHaveLength(3);
  });
});
