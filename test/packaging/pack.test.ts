// The package as users get it: `npm pack` of a fresh copy of the sources
// (prepack builds the prebuild), then `npm install` of the tarball in a new
// project with PATH holding only node, npm and sh (no python3, make or
// compiler). It installs from the prebuild and the README's quick start works
// with the installed CLI. With --ignore-scripts and no binary at all, pure
// modules still import and work, and a native call is one typed error.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deletePodNetns } from '../../src/netns.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { REPO } from './consumer.js';

const P = testPrefix('pack');
trackLeaks(P);

const PREBUILD = `prebuilds/${process.platform}-${process.arch}`;

let work: string;
let tarball: string;
let bin: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ARGV with PATH = our bin dir only, HOME kept (npm's cache and config). */
function bare(argv: string[], cwd: string, extra: Record<string, string> = {}): Run {
  const env: Record<string, string> = { PATH: bin, HOME: process.env['HOME'] ?? '/root', LANG: 'C.UTF-8', ...extra };
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function onPath(name: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return realpathSync(p);
  }
  throw new Error(`${name} is not on PATH`);
}

function hasCrossCompiler(): boolean {
  try {
    onPath('aarch64-linux-gnu-g++');
    return true;
  } catch {
    return false;
  }
}

/** A new project that installs the tarball; ARGS go to npm install. */
function install(name: string, args: string[] = [], extra: Record<string, string> = {}): { dir: string; r: Run } {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  const r = bare(['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error', ...args, tarball], dir, extra);
  return { dir, r };
}

describeRoot('the packed package, installed where only node and npm exist', () => {
  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), `${P}-`));

    // A fresh clone's files: what `files` ships, less what packing builds, plus what builds it.
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    const src = path.join(work, 'src');
    mkdirSync(src);
    const entries = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'scripts', ...pkg.files];
    for (const e of new Set(entries.map((f) => f.replace(/\/$/, '')))) {
      if (e === 'dist' || e === 'prebuilds') continue;
      cpSync(path.join(REPO, e), path.join(src, e), { recursive: true });
    }
    symlinkSync(path.join(REPO, 'node_modules'), path.join(src, 'node_modules'));
    // Not npm's own variables: under `npm test` they name this checkout as the project.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const packed = spawnSync('npm', ['pack', '--pack-destination', work, '--loglevel=error'], { cwd: src, env, encoding: 'utf8', timeout: 240_000 });
    expect(packed.status, `npm pack failed:\n${packed.stdout}\n${packed.stderr}`).toBe(0);
    const tgz = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    expect(tgz).toHaveLength(1);
    tarball = path.join(work, tgz[0]!);

    // Only node, npm/npx and a shell: an image with nothing but Node installed.
    bin = path.join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    symlinkSync(onPath('npm'), path.join(bin, 'npm'));
    symlinkSync(onPath('npx'), path.join(bin, 'npx'));
    symlinkSync('/bin/sh', path.join(bin, 'sh'));
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the prebuild (addon and spawn helper), the license and the built JS, not the sources of tests', () => {
    const t = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
    expect(t.status).toBe(0);
    const files = t.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(
      expect.arrayContaining([
        `${PREBUILD}/nstool.glibc.node`,
        `${PREBUILD}/nstool-spawn`,
        'LICENSE',
        'CHANGELOG.md',
        'README.md',
        'dist/index.js',
        'dist/index.d.ts',
        'scripts/install.js',
        'binding.gyp',
        'native/spawn/nstool-spawn.cc',
      ]),
    );
    expect(files.filter((f) => /^(build|test|src|bench|node_modules)\//.test(f))).toEqual([]);
    // linux-arm64 as well where Debian's cross compiler is installed (CI installs it).
    if (process.arch === 'x64' && hasCrossCompiler()) {
      expect(files).toEqual(expect.arrayContaining(['prebuilds/linux-arm64/nstool.glibc.node', 'prebuilds/linux-arm64/nstool-spawn']));
    }
  });

  it('installs from the prebuild and runs the quick start with the installed CLI', async () => {
    const { dir, r } = install('app');
    expect(r.status, r.stderr).toBe(0);
    const installed = path.join(dir, 'node_modules/nstool');
    expect(existsSync(path.join(installed, 'build')), 'built from source although a prebuild matches').toBe(false);
    expect(statSync(path.join(installed, PREBUILD, 'nstool-spawn')).mode & 0o111).not.toBe(0);

    const nstool = (...args: string[]) => bare([path.join(dir, 'node_modules/.bin/nstool'), ...args], dir);
    const name = `${P}-quick`;
    try {
      const c = nstool('create-pod-netns', name, '--uidmap', '0:100000:65536');
      expect(c.status, c.stderr).toBe(0);
      const i = nstool('inspect', name, '--json');
      expect(i.status, i.stderr).toBe(0);
      expect(JSON.parse(i.stdout)).toMatchObject({ type: 'net', owner: { host: false } });
      // Through the shipped nstool-spawn: a program in the pod's namespaces, as its root.
      const e = nstool('exec', name, '--', '/bin/cat', '/proc/self/uid_map');
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout.trim().split(/\s+/)).toEqual(['0', '100000', '65536']);
      const d = nstool('delete', name);
      expect(d.status, d.stderr).toBe(0);
    } finally {
      await deletePodNetns(name).catch(() => undefined);
    }
    expect(existsSync(`/run/netns/${name}`)).toBe(false);

    // require(esm): CommonJS consumers load it too (Node >= 20.19).
    const cjs = bare(['node', '-e', "const m = require('nstool'); console.log(m.formatIdMap(m.parseIdMap('0:100000:65536')))"], dir);
    expect(cjs.status, cjs.stderr).toBe(0);
    expect(cjs.stdout.trim()).toBe('0:100000:65536');
  });

  it('with --ignore-scripts the prebuild still serves; with no binary at all pure modules work and a native call is one ERR_NSTOOL_NATIVE', () => {
    const { dir, r } = install('app-noscripts', ['--ignore-scripts']);
    expect(r.status, r.stderr).toBe(0);
    // Scripts skipped (as npm may do for unapproved packages): the prebuild serves at run time.
    const withPrebuild = bare(
      ['node', '--input-type=module', '-e', `import * as n from 'nstool';
const i = await n.inspectNetns('/proc/self/ns/net');
const r = await n.runInNamespaces(['/bin/cat', '/proc/self/comm']);
console.log(i.type, r.stdout.trim());`],
      dir,
    );
    expect(withPrebuild.status, withPrebuild.stderr).toBe(0);
    expect(withPrebuild.stdout.trim()).toBe('net cat');
    // As on a platform with no prebuild.
    rmSync(path.join(dir, 'node_modules/nstool/prebuilds'), { recursive: true });
    expect(existsSync(path.join(dir, 'node_modules/nstool/build'))).toBe(false);

    writeFileSync(
      path.join(dir, 'probe.js'),
      `import * as n from 'nstool';
const out = {};
const caught = (f) => { try { f(); return null; } catch (e) { return { code: e.code, hint: e.hint, lines: e.message.split('\\n').length }; } };
out.map = n.formatIdMap(n.parseIdMap('0:100000:65536'));
out.name = n.validatePinName('web-1');
out.cni = n.parseNetworkList({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'loopback' }] }).plugins.length;
out.hooks = n.cniHooks({ conflist: '/etc/cni/net.d/pod.conflist' }).createRuntime.length;
out.spec = caught(() => n.buildSpec({ rootfs: '/nonexistent-rootfs', command: ['/bin/true'] }));
try { await n.inspectNetns('x'); } catch (e) { out.inspect = { code: e.code, hint: e.hint, lines: e.message.split('\\n').length }; }
try { await n.runInNamespaces(['/bin/true']); } catch (e) { out.run = { code: e.code, hint: e.hint, lines: e.message.split('\\n').length }; }
console.log(JSON.stringify(out));
`,
    );
    const probe = bare(['node', 'probe.js'], dir);
    expect(probe.status, probe.stderr).toBe(0);
    const out = JSON.parse(probe.stdout) as Record<string, unknown>;
    const typed = { code: 'ERR_NSTOOL_NATIVE', hint: expect.any(String), lines: 1 };
    expect(out).toEqual({ map: '0:100000:65536', name: 'web-1', cni: 1, hooks: 1, spec: typed, inspect: typed, run: typed });

    // The CLI: one line on stderr and the typed error in --json, no stack of paths.
    const cli = bare([path.join(dir, 'node_modules/.bin/nstool'), 'inspect', 'x', '--json'], dir);
    expect(cli.status).toBe(1);
    expect((JSON.parse(cli.stdout) as { error: { code: string } }).error.code).toBe('ERR_NSTOOL_NATIVE');
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('without a usable prebuild and no compiler, the install fails with one actionable message', () => {
    const { r } = install('app-nobuild', [], { npm_config_build_from_source: 'true' });
    expect(r.status).not.toBe(0);
    const out = `${r.stdout}${r.stderr}`;
    // The apt-get line that fixes it, and none of gyp's own failure.
    expect(out).toContain('apt-get install -y python3 make g++');
    expect(out).not.toMatch(/gyp (ERR|info)|Could not find any Python/);
  });
});
