import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALFORMED, VALID, mutants } from '../../../fixtures/response-corpus.ts';
import type { Case } from '../../../fixtures/response-corpus.ts';
import { LlhttpOracle, ourVerdict } from '../../../helpers/response-verdicts.ts';
import type { Verdict } from '../../../helpers/response-verdicts.ts';

/**
 * Where llhttp (as node:http's client runs it: no lenient flags) accepts a
 * response and our parser refuses it on purpose, by our refusal's reason.
 * Any other disagreement fails the test.
 */
const STRICTER: Readonly<Record<string, string>> = {
  'HTTP version other than 1.0 and 1.1': 'llhttp takes HTTP/2.0 and 0.9 status lines; an upstream on HTTP/1.1 that sends one is not framing its responses as we read them',
  'status code below 100': 'llhttp takes 000-099; RFC 9110 §15 has none',
  'control character in the reason phrase': 'llhttp does not check the reason phrase; a CTL there (NUL, DEL) is not HTTP',
  'Transfer-Encoding other than one chunked': 'llhttp reads a body whose Transfer-Encoding does not end in chunked to the close, and takes chunked twice; both are request-smuggling gaps in a proxy, which nginx closes the same way (502)',
  'bad chunk extension': 'llhttp lets a quoted string follow a token in an extension value (`q=4"a"`); we hold extensions to RFC 9112 §7.1.1',
  'too many header fields': 'a bound on fields (256) beside the 16 KiB bound on the head; llhttp has none',
  'bytes after the response': 'bytes no request asked for: node:http drops them after a Content-Length body; we keep the response but never reuse the connection',
};

const CORPUS: readonly (Case & { readonly stricter?: string })[] = [...VALID, ...MALFORMED, ...mutants(500)];

const same = (a: Verdict, b: Verdict): boolean => a.ok === b.ok && (!a.ok || JSON.stringify(a) === JSON.stringify(b));

describe('the upstream response parser agrees with llhttp on a corpus of valid and malformed responses', () => {
  let oracle: LlhttpOracle;
  const verdicts = new Map<Case, Verdict>();

  beforeAll(async () => {
    oracle = await LlhttpOracle.start();
    // A few at a time: each case is a connection to the raw server.
    for (let i = 0; i < CORPUS.length; i += 16) {
      const batch = CORPUS.slice(i, i + 16);
      const got = await Promise.all(batch.map((c) => oracle.verdict(c.bytes, c.head)));
      batch.forEach((c, j) => verdicts.set(c, got[j]!));
    }
  }, 60_000);

  afterAll(() => oracle.close());

  it(`holds ${CORPUS.length} cases, both kinds well represented`, () => {
    const accepted = [...verdicts.values()].filter((v) => v.ok).length;
    expect(CORPUS.length).toBeGreaterThanOrEqual(500);
    expect(accepted).toBeGreaterThan(100);
    expect(CORPUS.length - accepted).toBeGreaterThan(150);
  });

  it('every valid case is accepted by both, with the same status, fields and body', () => {
    for (const c of VALID) {
      const ours = ourVerdict(c.bytes, c.head);
      expect(ours, c.name).toEqual(verdicts.get(c));
      expect(ours.ok, c.name).toBe(true);
    }
  });

  it('every hand-written malformed case is refused by both, but those marked stricter, which only llhttp accepts', () => {
    for (const c of MALFORMED) {
      const ours = ourVerdict(c.bytes, c.head);
      const theirs = verdicts.get(c)!;
      expect(ours.ok, c.name).toBe(false);
      expect(theirs.ok, `${c.name}: llhttp ${c.stricter === undefined ? 'refuses' : 'accepts'} it`).toBe(c.stricter !== undefined);
    }
  });

  it('every mutant gets the same verdict, or a refusal for one of the reasons we are stricter than llhttp', () => {
    const differ: string[] = [];
    for (const c of CORPUS) {
      const ours = ourVerdict(c.bytes, c.head);
      const theirs = verdicts.get(c)!;
      if (same(ours, theirs)) continue;
      if (!ours.ok && theirs.ok && STRICTER[ours.reason] !== undefined) continue;
      differ.push(`${c.name}: ours ${JSON.stringify(ours)}, llhttp ${JSON.stringify(theirs)}`);
    }
    expect(differ).toEqual([]);
  });
});

describe('a response cut anywhere gets the verdict it gets whole', () => {
  it('for every case (up to 5 KB) and every cut, and for each byte fed alone', () => {
    for (const c of [...VALID, ...MALFORMED, ...mutants(200, 99)]) {
      if (c.bytes.length > 5000) continue;
      const whole = ourVerdict(c.bytes, c.head);
      for (let cut = 1; cut < c.bytes.length; cut++) {
        const v = ourVerdict(c.bytes, c.head, [cut]);
        if (whole.ok ? !same(v, whole) : v.ok) expect.fail(`${c.name} cut at ${cut}: ${JSON.stringify(v)} vs ${JSON.stringify(whole)}`);
      }
      const bytewise = ourVerdict(c.bytes, c.head, Array.from({ length: c.bytes.length }, (_, i) => i));
      expect(bytewise.ok ? bytewise : bytewise.ok, c.name).toEqual(whole.ok ? whole : false);
    }
  });
});
