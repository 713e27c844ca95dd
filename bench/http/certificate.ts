import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './processes.ts';

/**
 * The certificate both sides of the HTTPS scenarios serve: one ECDSA P-256
 * key and a self-signed certificate for 127.0.0.1, made once per bench run
 * with the openssl CLI, so nginx and Sluice do the same handshake work (the
 * load generator does not verify it, as it would not in a lab either).
 */
export interface BenchCertificate {
  readonly cert: string;
  readonly key: string;
}

let made: BenchCertificate | null = null;

export function benchCertificate(): BenchCertificate {
  if (made !== null) return made;
  const dir = tempDir(mkdtempSync(join(tmpdir(), 'sluice-bench-tls-')));
  const cert = join(dir, 'bench.pem');
  const key = join(dir, 'bench.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  made = { cert, key };
  return made;
}
