import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import bcrypt from 'bcryptjs';

/**
 * Password hashes basic-auth credentials may hold, in their usual text forms:
 * bcrypt `$2a$`/`$2b$`/`$2y$`, argon2 PHC `$argon2id$…`, and scrypt as
 * passlib writes it: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`.
 * Used by `sluice hash-password` and, in a pool thread, by basic-auth.
 */
export type Algorithm = 'bcrypt' | 'scrypt' | 'argon2';
export const ALGORITHMS: readonly Algorithm[] = ['bcrypt', 'scrypt', 'argon2'];

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const ARGON2 = /^\$argon2(id|i|d)\$/;
const SCRYPT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** The algorithm of a stored hash, or null when it is none we verify. */
export function algorithmOf(hash: string): Algorithm | null {
  if (BCRYPT.test(hash)) return 'bcrypt';
  if (ARGON2.test(hash)) return 'argon2';
  if (SCRYPT.test(hash)) return 'scrypt';
  return null;
}

const scryptAsync = (password: string, salt: Buffer, keylen: number, N: number, r: number, p: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    // maxmem: N*r*128 plus headroom; the default 32 MB refuses ln=15 with r=8.
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err === null ? resolve(key) : reject(err)));
  });

export async function hashPassword(password: string, algorithm: Algorithm): Promise<string> {
  switch (algorithm) {
    case 'bcrypt': return bcrypt.hash(password, 12);
    case 'argon2': return argon2Hash(password);
    case 'scrypt': {
      const ln = 15;
      const salt = randomBytes(16);
      const key = await scryptAsync(password, salt, 32, 2 ** ln, 8, 1);
      return `$scrypt$ln=${ln},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
    }
  }
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  switch (algorithmOf(hash)) {
    case 'bcrypt': return bcrypt.compare(password, hash);
    case 'argon2': return argon2Verify(hash, password);
    case 'scrypt': {
      const [, ln, r, p, salt, expected] = SCRYPT.exec(hash)!;
      const want = Buffer.from(expected!, 'base64');
      const got = await scryptAsync(password, Buffer.from(salt!, 'base64'), want.length, 2 ** Number(ln), Number(r), Number(p));
      return timingSafeEqual(got, want);
    }
    case null: return false;
  }
}

/** Pool-thread entry point (env.offload): a verification never runs on a reactor. */
export default function verifyTask(input: { hash: string; password: string }): Promise<boolean> {
  return verifyPassword(input.hash, input.password);
}
