// A consumer's project in a temp dir: node_modules/nstool is a fresh build of
// this checkout laid out as npm installs it (package.json + dist/), next to
// node_modules/@types/node, and README blocks are type-checked there with
// `tsc --strict`, on TypeScript 5.9 (the repo's) and TypeScript 7.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TsBlock } from './readme-blocks.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const COMPILERS = {
  'TypeScript 5.9': path.join(REPO, 'node_modules/typescript/bin/tsc'),
  'TypeScript 7': path.join(REPO, 'node_modules/typescript7/bin/tsc'),
} as const;
export type CompilerName = keyof typeof COMPILERS;

export interface Run {
  status: number | null;
  out: string;
}

export function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

export function tscVersion(name: CompilerName): string | null {
  if (!existsSync(COMPILERS[name])) return null;
  const r = run([process.execPath, COMPILERS[name], '--version'], REPO);
  return r.status === 0 ? r.out.trim() : null;
}

export class Consumer {
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'nstool-consumer-'));
    const pkg = path.join(this.dir, 'node_modules/nstool');
    mkdirSync(path.join(this.dir, 'node_modules/@types'), { recursive: true });
    mkdirSync(pkg);
    symlinkSync(path.join(REPO, 'node_modules/@types/node'), path.join(this.dir, 'node_modules/@types/node'));
    copyFileSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
    // Its dependencies (commander, node-gyp-build) and native build, for blocks that run.
    symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
    if (existsSync(path.join(REPO, 'build'))) symlinkSync(path.join(REPO, 'build'), path.join(pkg, 'build'));
    const b = run([process.execPath, COMPILERS['TypeScript 5.9'], '-p', path.join(REPO, 'tsconfig.json'), '--outDir', path.join(pkg, 'dist')], REPO);
    if (b.status !== 0) throw new Error(`building nstool failed:\n${b.out}`);
    writeFileSync(path.join(this.dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  }

  /** Writes each block as its own module; returns the file names. */
  writeBlocks(blocks: TsBlock[], tag: string): string[] {
    return blocks.map((b) => {
      const file = `${tag}-${b.line}.ts`;
      // A block without import/export would be a script sharing globals with the others.
      const code = /^\s*(import|export)\s/m.test(b.code) ? b.code : `${b.code}export {};\n`;
      writeFileSync(path.join(this.dir, file), code);
      return file;
    });
  }

  /** tsc --strict over FILES as a consumer's project (types left at the compiler's default). */
  typecheck(compiler: CompilerName, files: string[]): Run {
    const tsconfig = path.join(this.dir, `tsconfig.check.json`);
    writeFileSync(
      tsconfig,
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false },
        files,
      }),
    );
    return run([process.execPath, COMPILERS[compiler], '-p', tsconfig], this.dir);
  }

  /** Compiles FILE to JS (TypeScript 5.9) and runs it with node. */
  execute(file: string): Run {
    const tsconfig = path.join(this.dir, `tsconfig.run.json`);
    writeFileSync(
      tsconfig,
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', outDir: 'out' },
        files: [file],
      }),
    );
    const c = run([process.execPath, COMPILERS['TypeScript 5.9'], '-p', tsconfig], this.dir);
    if (c.status !== 0) return c;
    return run([process.execPath, path.join(this.dir, 'out', file.replace(/\.ts$/, '.js'))], this.dir);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
