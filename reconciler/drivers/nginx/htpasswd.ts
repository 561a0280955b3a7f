// The htpasswd file of a gated site, built from a secret. nginx checks
// passwords with the system crypt(3) (libxcrypt on Debian), so entries are
// SHA-512 crypt ($6$), computed here. The salt is derived from the secret, the
// site and the user: the same credentials give the same bytes on every run, so
// an unchanged secret never rewrites the file or reloads nginx.
import { createHash, createHmac } from 'node:crypto';

const USER = /^[A-Za-z0-9._@-]{1,64}$/;
/** Hashes nginx (crypt(3) or its own code) understands, taken as they are. */
const HASHED = /^(?:\$(?:6|5|y|2[aby]|apr1)\$[./A-Za-z0-9$]{8,200}|\{SSHA\}[A-Za-z0-9+/=]{20,200})$/;
const B64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export interface HtpasswdResult {
  content?: string;
  users: string[];
  problem?: string;
}

/**
 * The secret holds one `user:password` per line (or `user:HASH` with a crypt
 * or {SSHA} hash, kept as is). Problems name the line, never its content.
 */
export function buildHtpasswd(secret: string, site: string): HtpasswdResult {
  const lines = secret.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  if (lines.length === 0) return { users: [], problem: 'the secret has no user:password line' };
  const out: string[] = [];
  const users: string[] = [];
  for (const [i, line] of lines.entries()) {
    const colon = line.indexOf(':');
    const user = colon > 0 ? line.slice(0, colon) : '';
    const password = line.slice(colon + 1);
    if (!USER.test(user)) return { users, problem: `line ${i + 1} of the secret does not start with a plain user name and ":"` };
    if (password === '' || /[\r\n\0]/.test(password)) return { users, problem: `line ${i + 1} of the secret has an empty password` };
    if (users.includes(user)) return { users, problem: `user ${user} appears twice in the secret` };
    users.push(user);
    out.push(`${user}:${HASHED.test(password) ? password : sha512Crypt(password, derivedSalt(password, site, user))}`);
  }
  return { content: out.join('\n') + '\n', users };
}

function derivedSalt(password: string, site: string, user: string): string {
  const digest = createHmac('sha256', 'hostkit-htpasswd-salt').update(`${site}\0${user}\0${password}`).digest();
  return [...digest.subarray(0, 16)].map((b) => B64[b & 63]).join('');
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

function repeatTo(bytes: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = bytes[i % bytes.length]!;
  return out;
}

/** SHA-512 crypt (Drepper, "Unix crypt using SHA-256 and SHA-512"), default 5000 rounds. */
export function sha512Crypt(password: string, saltText: string): string {
  const key = Buffer.from(password, 'utf8');
  const salt = Buffer.from(saltText.slice(0, 16), 'utf8');
  const rounds = 5000;
  const b = sha512(key, salt, key);
  const a = createHash('sha512').update(key).update(salt);
  a.update(repeatTo(b, key.length));
  for (let n = key.length; n > 0; n >>= 1) a.update(n & 1 ? b : key);
  let c = a.digest();
  const dp = (() => {
    const h = createHash('sha512');
    for (let i = 0; i < key.length; i++) h.update(key);
    return repeatTo(h.digest(), key.length);
  })();
  const ds = (() => {
    const h = createHash('sha512');
    for (let i = 0; i < 16 + c[0]!; i++) h.update(salt);
    return repeatTo(h.digest(), salt.length);
  })();
  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? dp : c);
    if (i % 3 !== 0) h.update(ds);
    if (i % 7 !== 0) h.update(dp);
    h.update(i & 1 ? c : dp);
    c = h.digest();
  }
  const order = [
    [0, 21, 42],
    [22, 43, 1],
    [44, 2, 23],
    [3, 24, 45],
    [25, 46, 4],
    [47, 5, 26],
    [6, 27, 48],
    [28, 49, 7],
    [50, 8, 29],
    [9, 30, 51],
    [31, 52, 10],
    [53, 11, 32],
    [12, 33, 54],
    [34, 55, 13],
    [56, 14, 35],
    [15, 36, 57],
    [37, 58, 16],
    [59, 17, 38],
    [18, 39, 60],
    [40, 61, 19],
    [62, 20, 41],
  ];
  let encoded = '';
  const emit = (value: number, chars: number) => {
    for (let i = 0; i < chars; i++) {
      encoded += B64[value & 63];
      value >>= 6;
    }
  };
  for (const [x, y, z] of order) emit((c[x!]! << 16) | (c[y!]! << 8) | c[z!]!, 4);
  emit(c[63]!, 2);
  return `$6$${salt.toString('utf8')}$${encoded}`;
}
