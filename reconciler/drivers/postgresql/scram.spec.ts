import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatVerifier, makeVerifier, parseVerifier, saslprep, scramKeys, storedPasswordKind, verifierMatches } from './scram.js';

// Verifiers PostgreSQL 15 computed itself (ALTER ROLE ... PASSWORD 'plain text'
// with password_encryption = scram-sha-256), for passwords that exercise each
// SASLprep rule: HostKit must reach the same keys, or a role would be planned
// as changed on every run, or a password set by HostKit would not log in.
const POSTGRES_VERIFIERS: [password: string, rule: string, verifier: string][] = [
  ['pencil', 'ASCII', 'SCRAM-SHA-256$4096:DiUNYC50CaDA/KaeEPmfLA==$kCgcUX+Hi9KGvnXYmu3yjEmmiIo6uV2sab8/WheyXC8=:Jx0ERiTOWk2rg7toT69ZQmgggHMdgAnJAzH6aMAChu8='],
  [
    '\ufb01sh',
    'ligature folded by NFKC',
    'SCRAM-SHA-256$4096:deTCuJ6AXhsUvOEmNyk9MQ==$SWqOdUbGwJKim5VDIvPED4wWnvNYt5/tA14kHhhEcgE=:t7SE/vNY7kUhgoBaQiu4v7F1VMQMOYoz2HUa9UP64Ro=',
  ],
  [
    'a\u00a0b',
    'NBSP mapped to a space',
    'SCRAM-SHA-256$4096:B99oL6OrrDhpzKPIL59fVQ==$7AaxtpIpkC/xNPMBi2CH5624/AP4CivimvrBS5Pz+RM=:vBx1KS0r7Zo7/J6VqcgQGFiPFFPRN5dk+i+2DPj2bTM=',
  ],
  [
    'so\u00adft',
    'soft hyphen mapped to nothing',
    'SCRAM-SHA-256$4096:hSTUcxd6H2Jb3ZX2TjefZQ==$iYnJIKyl66LxWZiqh3JWHyDdNDcE44WjAvnl9fpLMEM=:7P2CgPsN51GzdPfw6I4bWMnZB793XePOtm8PFwm0f6s=',
  ],
  [
    'x\u0221y',
    'unassigned in Unicode 3.2: raw bytes',
    'SCRAM-SHA-256$4096:1LteDC8R7IhWccTeVn6mWQ==$BnGDtBkJNyrVHGePI8MQjPPCNXFwJFxn/hSRVablXCo=:x6Ejrn1LM6Lw6YX3T+o64gOSr326OVPpdTSEz1gfT6k=',
  ],
  [
    '\u05d0a',
    'RandALCat with LCat: raw bytes',
    'SCRAM-SHA-256$4096:eFIkmCzEOnR9L80OfUU5fw==$ws+YunBkRHYwuNK/kgamDNFIzPzwZ4cYxKdKS1FvDbY=:N7C8usv3P1BqhA0MMYmpKX8tUXvsq/YHOIaJOkEYJFI=',
  ],
  [
    '\u05d0\u05d1\u05d2',
    'right-to-left only',
    'SCRAM-SHA-256$4096:QahBZoWGxheeHcFdXdGflA==$ttPSOH1xS2QbCUtJ1yZlA9Xrzwrg01kW0fL/+XX+5RY=:OTOrrLyCSE7NgEYQ3LAhLXqru+U8Qz1XuPtk++nE0dw=',
  ],
  [
    'e\u0301t\u00e9',
    'decomposed e + acute composed by NFKC',
    'SCRAM-SHA-256$4096:BAG6q0y6pJC3t4qMmsbfag==$DuAUmv3yjHYdjv35QsF1DcIuNcw46/cMtGQ890nOjtg=:vELwjzPXRtUDHU+8bQjAJUDIVqjVmP/FmjnDpVKmgPU=',
  ],
  [
    '\u2168',
    'roman numeral folded to IX',
    'SCRAM-SHA-256$4096:fYCkCxCDYq5nbSX07BZkUg==$wKztUsgTuP4tFT37r8ys4kaC6T+oojCFp9h6+JzPTpg=:PZ/MpLGPvEiF8H2CQyA9YLEnvPL1aUS0zXIsemEflcI=',
  ],
  [
    'k\ue000',
    'private use: raw bytes',
    'SCRAM-SHA-256$4096:WAoPAFzHhEs1igWLThIsSA==$njfZgA+LJgpnLTnhjqqnQbAqAFSIdVOnuknYBIbNBkw=:DVthNEfouFP3r8oyzfYsmggG5Jss8VP4Ah5X/TrO6DM=',
  ],
  [
    '\ufb01\u0221',
    'prohibited after a foldable character: raw bytes, not folded',
    'SCRAM-SHA-256$4096:iSHR3uKrXkOCIECLZTg7Ug==$+irhUsXeWN3fvBzWiqbtrDOii38GUX6poy9Wrk1eU98=:zC+/XsHe8MphueJabJKAFrNzaduOV8ZxvXMz8nXLEPw=',
  ],
  [
    '\u{1f511}key',
    'astral code point (unassigned in 3.2): raw bytes',
    'SCRAM-SHA-256$4096:+B5oYBTuNRSCJAqj2wvPpw==$t1xvFMOslc1itFmVexm0/iRTDj27rG0L39sPVkxakUs=:MVhWO2p0GDjzgB4O2P1O0+LGgdECQXFqRz8yuN8t7js=',
  ],
  [
    '\u3000a',
    'ideographic space mapped to a space',
    'SCRAM-SHA-256$4096:NEpU3W5KsqgnYpQstDrQ/Q==$vabmzb7HuGnfHavaRoiMzqryoeauYGic0X9uSEOvNmQ=:Mn5kxIFTo3sRYQ+6p+9BOkksmZLZhicMAR2MfEsv+Tk=',
  ],
  [
    "with'quote\\and$dollar",
    'quote, backslash, dollar',
    'SCRAM-SHA-256$4096:QSrSF/BnGi1zguOMpv/tAQ==$ZdT13Gbq98+Uu5tbOR63/REfvf8K68+ZXDgAhljUoOs=:MucnOMsCy/UUIjyOzcvFut0yQ46/ufXH2W5ZPUarCW0=',
  ],
];

describe('reconciler/drivers/postgresql/scram', () => {
  it('derives the keys of RFC 7677: the server signature and client proof of its example exchange', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const { storedKey, serverKey } = scramKeys('pencil', salt, 4096);
    const clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    const clientFinalBare = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const authMessage = `${clientFirstBare},${serverFirst},${clientFinalBare}`;
    expect(createHmac('sha256', serverKey).update(authMessage).digest('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    // ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage); XOR with the signature gives ClientKey back, whose SHA-256 is StoredKey.
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
    expect(createHash('sha256').update(clientKey).digest()).toEqual(storedKey);
    expect(parseVerifier(formatVerifier({ iterations: 4096, salt, storedKey, serverKey }))).toEqual({ iterations: 4096, salt, storedKey, serverKey });
  });

  it.each(POSTGRES_VERIFIERS)('matches the verifier PostgreSQL made for %j (%s)', (password, _rule, verifier) => {
    expect(verifierMatches(password, verifier)).toBe(true);
    expect(verifierMatches(`${password} `, verifier)).toBe(false);
    // Same salt and iterations: exactly PostgreSQL's verifier.
    const v = parseVerifier(verifier)!;
    expect(makeVerifier(password, { salt: v.salt, iterations: v.iterations })).toBe(verifier);
  });

  it.each([
    ['pencil', 'pencil'],
    ['\u00e9t\u00e9', '\u00e9t\u00e9'],
    ['e\u0301t\u00e9', '\u00e9t\u00e9'],
    ['\ufb01sh', 'fish'],
    ['\u2168', 'IX'],
    ['a\u00a0b\u3000c', 'a b c'],
    ['so\u00adft', 'soft'],
    // U+200B is in both tables; PostgreSQL checks the space table first.
    ['zero\u200bwidth', 'zero width'],
    ['\u00ad', '\u00ad'],
    ['x\u0221y', 'x\u0221y'],
    ['\ufb01\u0221', '\ufb01\u0221'],
    ['k\ue000', 'k\ue000'],
    ['\u05d0a', '\u05d0a'],
    ['a\u05d0', 'a\u05d0'],
    ['\u05d0\u05d1\u05d2', '\u05d0\u05d1\u05d2'],
    ['\u05d01\u05d2', '\u05d01\u05d2'],
    ['tab\there', 'tab\there'],
    ['\u{1f511}key', '\u{1f511}key'],
  ])('SASLprep as PostgreSQL applies it: %j -> %j', (input, output) => {
    expect(saslprep(input)).toBe(output);
  });

  it.each(['pencil', 'p\u00e4ssw\u00f6rd', '\ufb01sh', "it's \\ $x", 'x'.repeat(200), '\u{1f511}'])(
    'round trip: a new verifier for %j matches it and nothing else',
    (password) => {
      const verifier = makeVerifier(password);
      expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
      expect(verifierMatches(password, verifier)).toBe(true);
      expect(verifierMatches(password.toUpperCase() === password ? `${password}a` : password.toUpperCase(), verifier)).toBe(false);
      expect(makeVerifier(password)).not.toBe(verifier); // a fresh salt each time
    },
  );

  it.each([
    [null, false, 'none'],
    ['md5' + 'a'.repeat(32), false, 'md5'],
    ['SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB', false, 'scram-sha-256'],
    [
      'SCRAM-SHA-256$0:' + Buffer.alloc(16).toString('base64') + '$' + Buffer.alloc(32).toString('base64') + ':' + Buffer.alloc(32).toString('base64'),
      false,
      'scram-sha-256',
    ],
    ['plain text password', false, 'unknown'],
  ] as const)('a stored password %j never matches unless it is a well-formed SCRAM verifier of the password', (stored, matches, kind) => {
    expect(verifierMatches('pencil', stored)).toBe(matches);
    expect(storedPasswordKind(stored)).toBe(kind);
  });
});
