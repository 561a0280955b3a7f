import { createHash } from 'node:crypto';

/** A well-formed ed25519 public key line (its 32 key bytes derived from `label`), as ssh-keygen prints one. */
export function testKey(label: string, comment = `${label}@test`): string {
  const type = Buffer.from('ssh-ed25519');
  const key = createHash('sha256').update(label).digest();
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const blob = Buffer.concat([u32(type.length), type, u32(key.length), key]);
  return `ssh-ed25519 ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}
