// SCRAM-SHA-256 password verifiers as PostgreSQL stores them in
// pg_authid.rolpassword (RFC 5802, RFC 7677):
//
//   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>   (base64 parts)
//
// HostKit computes verifiers here, so a password never reaches the server (or
// its statement log) in plain text, and compares a password with the stored
// verifier by deriving the keys again from its salt and iteration count, so an
// unchanged password is never set again (the "always changed" bug of
// ansible/ansible#49878; community.postgresql's postgresql_user does the same).
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { L_CAT, MAPPED_TO_NOTHING, NON_ASCII_SPACE, PROHIBITED, RAND_AL_CAT, UNASSIGNED } from './saslprep-tables.js';

/** PostgreSQL's defaults for new verifiers (scram_iterations, SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_ITERATIONS = 4096;
export const SCRAM_SALT_BYTES = 16;

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** What kind of password a role has, from pg_authid.rolpassword (never the value). */
export type StoredPasswordKind = 'none' | 'scram-sha-256' | 'md5' | 'unknown';

const VERIFIER = /^SCRAM-SHA-256\$(\d{1,10}):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;
const MD5 = /^md5[0-9a-f]{32}$/;

export function storedPasswordKind(rolpassword: string | null): StoredPasswordKind {
  if (rolpassword === null) return 'none';
  if (rolpassword.startsWith('SCRAM-SHA-256$')) return 'scram-sha-256';
  if (MD5.test(rolpassword)) return 'md5';
  return 'unknown';
}

/** A stored verifier or undefined when the text is not a well-formed SCRAM-SHA-256 verifier. */
export function parseVerifier(text: string): ScramVerifier | undefined {
  const m = VERIFIER.exec(text);
  if (!m) return undefined;
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 0x7fffffff) return undefined;
  const [salt, storedKey, serverKey] = [m[2]!, m[3]!, m[4]!].map((b) => Buffer.from(b, 'base64'));
  if (salt!.length === 0 || storedKey!.length !== 32 || serverKey!.length !== 32) return undefined;
  return { iterations, salt: salt!, storedKey: storedKey!, serverKey: serverKey! };
}

export function formatVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

/** StoredKey and ServerKey of a password for a salt and iteration count. */
export function scramKeys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** A new verifier with a random salt: what `ALTER ROLE ... PASSWORD` is given instead of the password. */
export function makeVerifier(password: string, options: { salt?: Buffer; iterations?: number } = {}): string {
  const salt = options.salt ?? randomBytes(SCRAM_SALT_BYTES);
  const iterations = options.iterations ?? SCRAM_ITERATIONS;
  return formatVerifier({ iterations, salt, ...scramKeys(password, salt, iterations) });
}

/**
 * Whether `password` is the one `stored` was made from. Only SCRAM-SHA-256
 * verifiers can match: an md5 hash or no password means the password must be
 * set (again), as SCRAM, for scram-sha-256 authentication to accept it.
 */
export function verifierMatches(password: string, stored: string | null): boolean {
  const v = stored === null ? undefined : parseVerifier(stored);
  if (!v) return false;
  const keys = scramKeys(password, v.salt, v.iterations);
  return timingSafeEqual(keys.serverKey, v.serverKey) && timingSafeEqual(keys.storedKey, v.storedKey);
}

// Code point sets from the RFC 3454 tables, searched by bisection.
class CodePoints {
  private readonly bounds: number[] = [];

  constructor(table: string) {
    for (const run of table.split(',')) {
      const [from, to] = run.split('-');
      this.bounds.push(parseInt(from!, 16), parseInt(to ?? from!, 16));
    }
  }

  has(cp: number): boolean {
    let lo = 0;
    let hi = this.bounds.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cp < this.bounds[2 * mid]!) hi = mid - 1;
      else if (cp > this.bounds[2 * mid + 1]!) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

let sets: Record<'space' | 'nothing' | 'prohibited' | 'unassigned' | 'randAL' | 'l', CodePoints> | undefined;
function tables() {
  sets ??= {
    space: new CodePoints(NON_ASCII_SPACE),
    nothing: new CodePoints(MAPPED_TO_NOTHING),
    prohibited: new CodePoints(PROHIBITED),
    unassigned: new CodePoints(UNASSIGNED),
    randAL: new CodePoints(RAND_AL_CAT),
    l: new CodePoints(L_CAT),
  };
  return sets;
}

/**
 * The string PostgreSQL derives SCRAM keys from: SASLprep (RFC 4013) exactly as
 * PostgreSQL's pg_saslprep applies it, including where it differs from the RFC
 * (ASCII is taken as it is; prohibited and bidi checks look at the mapped
 * input, before normalization), and, like PostgreSQL and libpq, the password
 * unchanged when SASLprep rejects it (a prohibited character, an empty result).
 */
export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const t = tables();
  const mapped: number[] = [];
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (t.space.has(cp)) mapped.push(0x20);
    else if (!t.nothing.has(cp)) mapped.push(cp);
  }
  if (mapped.length === 0) return password;
  if (mapped.some((cp) => t.prohibited.has(cp) || t.unassigned.has(cp))) return password;
  if (mapped.some((cp) => t.randAL.has(cp))) {
    if (mapped.some((cp) => t.l.has(cp))) return password;
    if (!t.randAL.has(mapped[0]!) || !t.randAL.has(mapped[mapped.length - 1]!)) return password;
  }
  return String.fromCodePoint(...mapped).normalize('NFKC');
}
