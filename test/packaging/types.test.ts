// The shipped declarations and the README's TypeScript, as a consumer
// compiles them: every ```ts block of README.md type-checks with
// `tsc --strict` against the built package (its .d.ts files checked too, no
// skipLibCheck) on TypeScript 5.9 and TypeScript 7; blocks marked
// ```ts runnable are also run. A fixture proves the check can fail.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inCI } from '../helpers/env.js';
import { COMPILERS, Consumer, REPO, tscVersion, type CompilerName } from './consumer.js';
import { tsBlocks } from './readme-blocks.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const readme = tsBlocks(path.join(REPO, 'README.md'));
const fixture = tsBlocks(path.join(HERE, 'fixtures/blocks.md'));

let consumer: Consumer;
beforeAll(() => {
  consumer = new Consumer();
}, 120_000);
afterAll(() => consumer?.remove());

describe('README TypeScript against the built package', () => {
  it('has TypeScript blocks to check', () => {
    expect(readme.length).toBeGreaterThan(0);
  });

  for (const name of Object.keys(COMPILERS) as CompilerName[]) {
    const version = tscVersion(name);
    // The compilers are devDependencies: missing means `npm ci` was not run, which CI must not skip.
    const runIt = version || inCI ? it : it.skip;
    runIt(`type-checks under --strict with ${name} (${version ?? 'not installed'})`, () => {
      expect(version, `${name} is not installed: run npm ci`).toBeTruthy();
      const files = consumer.writeBlocks(readme, 'readme');
      const r = consumer.typecheck(name, files);
      expect(r.out.trim(), `README.md blocks (readme-<line>.ts, <line> of the fence) under ${name}`).toBe('');
      expect(r.status).toBe(0);
    });
  }

  for (const b of readme.filter((x) => x.flags.includes('runnable'))) {
    it(`runs the block at README.md:${b.line}`, () => {
      const [file] = consumer.writeBlocks([b], 'run');
      const r = consumer.execute(file!);
      expect(r.status, r.out).toBe(0);
    });
  }
});

describe('the block check itself', () => {
  it('fails a block that does not compile under --strict, on both compilers', () => {
    const bad = fixture.filter((b) => b.flags.includes('bad'));
    expect(bad).toHaveLength(1);
    const files = consumer.writeBlocks(bad, 'fixture');
    for (const name of Object.keys(COMPILERS) as CompilerName[]) {
      if (!tscVersion(name)) continue;
      const r = consumer.typecheck(name, files);
      expect(r.status, name).not.toBe(0);
      expect(r.out, name).toContain('TS18047'); // owner is possibly null
    }
  });

  it('runs a runnable block and reports its output and exit status', () => {
    const [ok] = fixture.filter((b) => b.flags.includes('runnable'));
    const [file] = consumer.writeBlocks([ok!], 'fixture-run');
    const r = consumer.execute(file!);
    expect(r.status, r.out).toBe(0);
    expect(r.out.trim()).toBe('0:100000:65536');
  });
});
