import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Real certificates for TLS tests, made with the openssl CLI (node:crypto
 * cannot issue them): a private CA and ECDSA P-256 leaves it signs, each
 * with its SAN names, as an operator's would be.
 */
export interface TestCa {
  readonly cert: string;
  readonly key: string;
  /** The CA certificate's PEM, for clients' `ca`. */
  readonly pem: string;
}

const openssl = (args: string[]): void => {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

export function makeCa(dir: string, name = 'test-ca'): TestCa {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '30']);
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}

export interface TestCert {
  readonly cert: string;
  readonly key: string;
  /** Hex serial: tells a renewed certificate from the one it replaces. */
  readonly serial: string;
}

/** A leaf for `names` (the first is its CN), signed by `ca`, valid `days`; written to `<dir>/<file>.pem|.key`. */
export function makeCert(dir: string, file: string, names: readonly string[], ca: TestCa, days = 30): TestCert {
  const cert = join(dir, `${file}.pem`);
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]!}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', String(days), '-extfile', ext]);
  return { cert, key, serial: new X509Certificate(readFileSync(cert)).serialNumber };
}
