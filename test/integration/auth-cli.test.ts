import { spawn } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { algorithmOf, verifyPassword } from '../../src/plugins/basic-auth/hash.ts';
import { SLUICE } from '../helpers/gateway.ts';

function hashCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(SLUICE, ['hash-password', ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

describe.concurrent('sluice hash-password', () => {
  test.each(['bcrypt', 'scrypt', 'argon2'])('--algorithm %s prints a hash basic-auth verifies', async (alg) => {
    const r = await hashCli(['--algorithm', alg], 'pw with spaces\n');
    expect(r.code).toBe(0);
    const hash = r.stdout.trim();
    expect(algorithmOf(hash)).toBe(alg);
    expect(await verifyPassword(hash, 'pw with spaces')).toBe(true);
    expect(r.stdout + r.stderr).not.toContain('pw with spaces');
  });
  test('an unknown algorithm or an empty password exits 2', async () => {
    expect((await hashCli(['--algorithm', 'md5'], 'x\n')).code).toBe(2);
    expect((await hashCli([], '')).code).toBe(2);
  });
});
