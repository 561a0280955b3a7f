import { createHash } from 'node:crypto';
import { armor, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { FakeHost } from '../hosts/fake.js';
import { fingerprinter, fingerprintKeyPath, loadFingerprintKey, Redactor, REDACTED, SecretResolver, storeFingerprintKey } from './secrets.js';

async function ageArmored(plaintext: string, recipient: string): Promise<string> {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return armor.encode(await e.encrypt(plaintext));
}

describe('reconciler/core/secrets', () => {
  it('resolves file, env and age references, and registers each value with the redactor', async () => {
    const identity = await generateIdentity();
    const host = new FakeHost({ '/etc/hostkit/secret': 'from-file-value\n', '/etc/hostkit/age.key': `# created: now\n${identity}\n` });
    const redactor = new Redactor();
    const resolver = new SecretResolver({ host, redactor, env: { TOKEN: 'from-env-value' }, ageIdentityFile: '/etc/hostkit/age.key' });
    const age = await ageArmored('from-age-value', await identityToRecipient(identity));
    expect(await resolver.resolve({ file: '/etc/hostkit/secret' })).toEqual({ ok: true, value: 'from-file-value' });
    expect(await resolver.resolve({ env: 'TOKEN' })).toEqual({ ok: true, value: 'from-env-value' });
    expect(await resolver.resolve({ age })).toEqual({ ok: true, value: 'from-age-value' });
    expect(redactor.scrub('a from-file-value b from-env-value c from-age-value')).toBe(`a ${REDACTED} b ${REDACTED} c ${REDACTED}`);
  });

  it('scrubs each line of a multi-line secret alone and its JSON-escaped form, not the short lines of it', () => {
    const redactor = new Redactor();
    const key = [
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ',
      'AAAAC3NzaC1lZDI1NTE5AAAAIE',
      '}',
      '-----END OPENSSH PRIVATE KEY-----',
      '',
    ].join('\n');
    redactor.add(key);
    expect(redactor.scrub(`whole: ${key}`)).toBe(`whole: ${REDACTED}`);
    expect(redactor.scrub(JSON.stringify({ msg: 'build', out: `x ${key} y` }))).toBe(JSON.stringify({ msg: 'build', out: `x ${REDACTED} y` }));
    expect(redactor.scrub('Load key: invalid format near b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\r\n')).toBe(
      `Load key: invalid format near ${REDACTED}\r\n`,
    );
    expect(redactor.scrub('{ a } and AAAAC3NzaC1lZDI1NTE5AAAAIE')).toBe(`{ a } and ${REDACTED}`);
    const single = new Redactor();
    single.add('pass"word');
    expect(single.scrub('{"v":"pass\\"word"} pass"word')).toBe(`{"v":"${REDACTED}"} ${REDACTED}`);
  });

  it('says why a secret cannot be read, without failing the run', async () => {
    const other = await generateIdentity();
    const host = new FakeHost({ '/etc/hostkit/age.key': `${await generateIdentity()}\n` });
    const resolver = new SecretResolver({ host, redactor: new Redactor(), env: {}, ageIdentityFile: '/etc/hostkit/age.key' });
    expect(await resolver.resolve({ file: '/nope' })).toMatchObject({ ok: false, reason: 'secret file /nope does not exist on fake' });
    expect(await resolver.resolve({ env: 'MISSING' })).toMatchObject({ ok: false, reason: 'environment variable MISSING is not set for the agent' });
    const forOther = await ageArmored('x', await identityToRecipient(other));
    expect(await resolver.resolve({ age: forOther })).toMatchObject({ ok: false, reason: expect.stringContaining('could not decrypt') });
  });

  it('fingerprints are stable under one key, short, differ per value, and are no plain hash of the value', () => {
    const fingerprint = fingerprinter(Buffer.alloc(32, 1));
    expect(fingerprint('a')).toBe(fingerprint('a'));
    expect(fingerprint('a')).not.toBe(fingerprint('b'));
    expect(fingerprint('a')).toMatch(/^hmac:[0-9a-f]{12}$/);
    // Another host (key) shows the same secret differently, and neither is a hash anyone can recompute.
    expect(fingerprinter(Buffer.alloc(32, 2))('a')).not.toBe(fingerprint('a'));
    for (const plain of [createHash('sha256').update('a').digest('hex'), createHash('sha256').update('hostkit-secret\0').update('a').digest('hex')]) {
      expect(fingerprint('a')).not.toContain(plain.slice(0, 12));
    }
  });

  it('the fingerprint key: a new one until stored (root, 0600), then the stored one in every mode', async () => {
    const host = new FakeHost();
    const fresh = await loadFingerprintKey(host, '/var/lib/hostkit', 'apply');
    expect(fresh.stored).toBe(false);
    expect(fresh.key).toHaveLength(32);
    expect(await host.stat(fingerprintKeyPath('/var/lib/hostkit'))).toBeUndefined();
    await storeFingerprintKey(host, '/var/lib/hostkit', fresh.key);
    expect(await host.stat(fingerprintKeyPath('/var/lib/hostkit'))).toMatchObject({ mode: 0o600, uid: 0, gid: 0 });
    expect(await loadFingerprintKey(host, '/var/lib/hostkit', 'apply')).toEqual({ key: fresh.key, stored: true });
    expect(await loadFingerprintKey(host, '/var/lib/hostkit', 'plan')).toEqual({ key: fresh.key, stored: true });
    const made = fresh.key;
    // Through the resolver: one key, one fingerprint per value.
    const resolver = new SecretResolver({ host, redactor: new Redactor(), fingerprintKey: made });
    expect(resolver.fingerprint('s3cret')).toBe(fingerprinter(made)('s3cret'));
  });

  it('the redactor removes the longest value first', () => {
    const r = new Redactor();
    r.add('abcd');
    r.add('abcdefgh');
    expect(r.scrub('xx abcdefgh yy abcd')).toBe(`xx ${REDACTED} yy ${REDACTED}`);
  });
});
