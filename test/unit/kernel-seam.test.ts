// The kernel seam holds: src/native.ts (the addon's loader) is imported by
// src/kernel/core.ts alone; every other module reaches the kernel through
// the typed functions of src/kernel/.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = path.join(ROOT, 'src');
const NATIVE = path.join(SRC, 'native.ts');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

// import ... from 'x', export ... from 'x', import 'x', import('x'), require('x')
const SPECIFIERS = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])([^'"\n]+)\1/g;

/** Whether SOURCE (the text of FILE) imports src/native.ts in any form. */
function importsNative(file: string, source: string): boolean {
  for (const m of source.matchAll(SPECIFIERS)) {
    const spec = m[2]!;
    if (!spec.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
    if (target === NATIVE || target === NATIVE.slice(0, -3)) return true;
  }
  return false;
}

describe('kernel seam', () => {
  it('only src/kernel/core.ts imports src/native.ts', () => {
    const importers = tsFiles(SRC)
      .filter((f) => f !== NATIVE && importsNative(f, readFileSync(f, 'utf8')))
      .map((f) => path.relative(ROOT, f))
      .sort();
    expect(importers).toEqual(['src/kernel/core.ts']);
  });

  it('the check sees every form of import, and nothing else', () => {
    const file = path.join(SRC, 'pod', 'x.ts');
    for (const s of [
      "import { native } from '../native.js';",
      "import type { NativeNsInfo } from '../native.js';",
      'import {\n  native,\n} from "../native.js";',
      "export { native } from '../native.js';",
      "export * from '../native';",
      "import '../native.js';",
      "const n = await import('../native.js');",
      "const n = require('../native.js');",
      "import { native } from '../pod/../native.js';",
    ]) {
      expect(importsNative(file, s), s).toBe(true);
    }
    for (const s of [
      "import { probeNs } from '../kernel/ns.js';",
      "import { native } from './native.js';", // src/pod/native.ts is another file
      "import { x } from '../native-ish.js';",
      '// the native core (src/native.ts) is loaded by src/kernel',
      "import bindings from 'bindings';",
    ]) {
      expect(importsNative(file, s), s).toBe(false);
    }
  });
});
