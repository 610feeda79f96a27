// Shared facts for tests: root or not, and the CI rule that a test needing
// root must fail, not skip, when it cannot run.
import { describe, it } from 'vitest';

export const isRoot = process.getuid?.() === 0;
export const inCI = process.env['CI'] === 'true' || process.env['CI'] === '1';

/**
 * describe() for suites that need root. Without root they are skipped on a
 * developer machine, and fail under CI (CI=true).
 */
export function describeRoot(name: string, fn: () => void): void {
  if (isRoot) {
    describe(name, fn);
  } else if (inCI) {
    describe(name, () => {
      it_fail(name);
    });
  } else {
    describe.skip(name, fn);
  }
}

function it_fail(name: string): void {
  it(`${name} needs root`, () => {
    throw new Error(`"${name}" needs root (uid 0) and CI=true forbids skipping it`);
  });
}
