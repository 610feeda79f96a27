// The native core loads on the first call that needs it: without it, the
// package still imports, pure helpers work, and a native call is one typed
// error (ERR_NSTOOL_NATIVE, one line, a hint) rather than a failed import.
// Runs the built package (dist/) in child processes, as a consumer would.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './consumer.js';

const PROBE = `
const out = {};
const typed = (e) => ({ code: e.code, hint: typeof e.hint, lines: e.message.split('\\n').length });
let n;
try { n = await import(process.argv[1]); } catch (e) { console.log(JSON.stringify({ importFailed: typed(e) })); process.exit(0); }
out.map = n.formatIdMap(n.parseIdMap('0:100000:65536'));
out.cni = n.parseNetworkList({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'loopback' }] }).name;
try { await n.inspectNetns('x'); } catch (e) { out.async = typed(e); }
// Sync, and without side effects should the core load after all: users are read inside the rootfs.
try { n.buildSpec({ rootfs: '/nonexistent-rootfs', command: ['/bin/true'] }); } catch (e) { out.sync = typed(e); }
try { await n.runInNamespaces(['/bin/true']); } catch (e) { out.spawn = typed(e); }
console.log(JSON.stringify(out));
`;

function probe(entry: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, entry], { env, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const typed = { code: 'ERR_NSTOOL_NATIVE', hint: 'string', lines: 1 };
const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the native core, loaded lazily', () => {
  it('a package with no binary at all: pure helpers work, native calls are ERR_NSTOOL_NATIVE', () => {
    // The package as installed with --ignore-scripts where no prebuild matches.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nstool-lazy-'));
    temps.push(dir);
    cpSync(path.join(REPO, 'dist'), path.join(dir, 'dist'), { recursive: true });
    cpSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
    symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    const env = { ...process.env };
    delete env['NSTOOL_ADDON'];
    delete env['NSTOOL_SPAWN'];
    const out = probe(path.join(dir, 'dist/index.js'), env);
    expect(out).toEqual({ map: '0:100000:65536', cni: 'net', async: typed, sync: typed, spawn: typed });
  });

  it('NSTOOL_ADDON naming a file that does not load: the same one error', () => {
    const out = probe(path.join(REPO, 'dist/index.js'), { ...process.env, NSTOOL_ADDON: '/nonexistent/nstool.node', NSTOOL_SPAWN: '/nonexistent/nstool-spawn' });
    expect(out).toEqual({ map: '0:100000:65536', cni: 'net', async: typed, sync: typed, spawn: typed });
  });
});
