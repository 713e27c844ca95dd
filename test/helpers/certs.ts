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

/** A validity window in the past or the future, which `x509 -days` cannot make. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** openssl's UTCTime/GeneralizedTime as `ca -startdate` takes it: YYYYMMDDHHMMSSZ. */
const asn1Time = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

/**
 * A leaf for `names` (the first is its CN), signed by `ca`, valid `days` from
 * now or within `Validity`; written to `<dir>/<file>.pem|.key`. It serves a
 * server or, presented by a client, mTLS (no extendedKeyUsage limits it).
 */
export function makeCert(dir: string, file: string, names: readonly string[], ca: TestCa, validity: number | Validity = 30): TestCert {
  const cert = join(dir, `${file}.pem`);
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]!}`]);
  if (typeof validity === 'number') {
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', String(validity), '-extfile', ext]);
  } else {
    // `openssl ca` is the one 3.0 command that takes explicit dates; it wants a database and a policy.
    const conf = join(dir, `${file}.ca.cnf`);
    const db = join(dir, `${file}.index`);
    writeFileSync(db, '');
    writeFileSync(join(dir, `${file}.serial`), '01\n');
    writeFileSync(conf, `[ca]\ndefault_ca = d\n[d]\ndatabase = ${db}\nnew_certs_dir = ${dir}\nserial = ${join(dir, `${file}.serial`)}\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n`);
    openssl(['ca', '-batch', '-notext', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
      '-startdate', asn1Time(validity.notBefore), '-enddate', asn1Time(validity.notAfter), '-extfile', ext]);
  }
  return { cert, key, serial: new X509Certificate(readFileSync(cert)).serialNumber };
}
