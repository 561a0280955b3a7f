import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FakeHost } from '../../hosts/fake.js';
import { driverContext } from '../../../test/support/context.js';
import { fileDigest, inputsDigest } from './inputs.js';

// The inputs digest is written into unit and site files (0644) and shown in plans:
// it must not let anyone who knows the rest of an env file test guesses of its secret.
describe('drivers/shared/inputs', () => {
  const ENV = '/etc/hostkit/env/api.env';
  const bytes = 'NODE_ENV=production\nDB_PASSWORD=hunter2\n';
  const host = () => {
    const h = new FakeHost();
    h.seedFile(ENV, bytes, { mode: 0o640 });
    return h;
  };

  it('is keyed by the host fingerprint key: the same key gives the same digest, another key another', async () => {
    const a = driverContext(host(), { fingerprintKey: Buffer.alloc(32, 1) });
    const again = driverContext(host(), { fingerprintKey: Buffer.alloc(32, 1) });
    const other = driverContext(host(), { fingerprintKey: Buffer.alloc(32, 2) });
    const digest = await inputsDigest(a, [ENV]);
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
    expect(await inputsDigest(again, [ENV])).toBe(digest);
    expect(await inputsDigest(other, [ENV])).not.toBe(digest);
  });

  it('cannot be computed from the file bytes alone (a guessed secret cannot be checked against it)', async () => {
    const ctx = driverContext(host(), { fingerprintKey: Buffer.alloc(32, 1) });
    const unkeyed = (content: string) =>
      createHash('sha256')
        .update(`${ENV}:${createHash('sha256').update(content).digest('hex')}`)
        .digest('hex')
        .slice(0, 16);
    const digest = await inputsDigest(ctx, [ENV]);
    expect(digest).not.toBe(unkeyed(bytes));
    expect(fileDigest(ctx, bytes)).not.toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('counts a file this run writes with the bytes it will have, and a missing one as missing', async () => {
    const ctx = driverContext(new FakeHost(), { fingerprintKey: Buffer.alloc(32, 1) });
    const missing = await inputsDigest(ctx, [ENV]);
    ctx.fileDigests.set(ENV, fileDigest(ctx, bytes));
    const planned = await inputsDigest(ctx, [ENV]);
    expect(planned).not.toBe(missing);
    expect(await inputsDigest(driverContext(host(), { fingerprintKey: Buffer.alloc(32, 1) }), [ENV])).toBe(planned);
  });
});
