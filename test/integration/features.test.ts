// nstool features, checked against what this test finds on its own: its
// own idmapped mounts and overlay, max_user_namespaces read here, runc's
// --version and features run here, every plugin's VERSION run here, a
// userns made by nobody through util-linux. The cache is checked by a
// runtime wrapper that counts how often it is run.
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { features, formatFeatures, PROBE_UID_BASE } from '../../src/features/index.js';
import type { FeaturesReport, FsProbe } from '../../src/features/index.js';
import { native } from '../../src/native.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { which } from '../../src/process.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('features');
trackLeaks(prefix);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
const MAP_BASE = 100000;
const IDMAP_FEATURES = { ociVersionMin: '1.0.0', ociVersionMax: '1.1.0', linux: { mountExtensions: { idmap: { enabled: true } } } };

function run(argv: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: o.env ?? process.env, ...(o.input !== undefined ? { input: o.input } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = os.release().split('.').map((x) => parseInt(x, 10)) as [number, number];
  return a > major || (a === major && b >= minor);
}

function fsProbe(r: FeaturesReport, role: FsProbe['role']): FsProbe {
  const f = r.idmap.filesystems.find((x) => x.role === role);
  expect(f, `${role} probe`).toBeDefined();
  return f!;
}

/** Work dirs the probe made under DIR (each must be gone once features() returns). */
function workDirs(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.nstool-features-'));
}

describeRoot('nstool features', () => {
  let dir: string;
  let stateDir: string;
  let cacheDir: string;
  let pod: PodNetns;
  const mounted: string[] = [];

  /** The test's own idmapped mount of SRC (read-only, the pod's map): the uid FILE shows as, or the error code. */
  function ownIdmap(src: string, file: string, target: string): number | string {
    mkdirSync(target);
    try {
      native.idmapMountSync(src, target, pod.usernsPath!, false, true, true, true);
    } catch (err) {
      return (err as { code: string }).code;
    }
    mounted.push(target);
    return statSync(path.join(target, file)).uid;
  }

  function unmount(target: string): void {
    native.unmountSync(target);
    mounted.splice(mounted.indexOf(target), 1);
  }

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    // The probe works in stateDir's parent: here, named with the prefix.
    stateDir = path.join(dir, 'containers');
    cacheDir = path.join(dir, 'cache');
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: `0:${MAP_BASE}:65536`, pinUserns: true });
  });

  afterAll(async () => {
    for (const m of [...mounted].reverse()) native.unmountSync(m);
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
  });

  it('reports what the test finds itself: userns, sysctls, syscalls, idmapped mounts, overlay, runc, CNI', async () => {
    const r = await features({ stateDir, cacheDir });
    expect(r.cache.hit).toBe(false);
    expect(workDirs(dir)).toEqual([]);
    expect(mountPoints().filter((m) => m.startsWith(`${dir}/`))).toEqual([]);

    // The test made a userns+netns (beforeAll); so did the probe.
    expect(r.userns.create).toMatchObject({ ok: true, netnsOwnedByUserns: true });
    expect(r.kernel.sysctl.maxUserNamespaces).toBe(Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')));
    expect(r.kernel.setgroups).toBe(existsSync('/proc/self/setgroups'));
    const clone = existsSync('/proc/sys/kernel/unprivileged_userns_clone') ? Number(readFileSync('/proc/sys/kernel/unprivileged_userns_clone', 'utf8')) : null;
    expect(r.kernel.sysctl.unprivilegedUsernsClone).toBe(clone);

    // nobody making a userns, through util-linux.
    const nobody = run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '--user', 'true']);
    expect(r.userns.unprivileged).toMatchObject({ allowed: nobody.code === 0, uid: 65534 });

    // Syscalls, by the kernel releases that brought them.
    expect(r.kernel.syscalls.pidfd_open.available).toBe(kernelAtLeast(5, 3));
    expect(r.kernel.syscalls.clone3.available).toBe(kernelAtLeast(5, 3));
    expect(r.kernel.syscalls.clone_into_cgroup.available).toBe(kernelAtLeast(5, 7));
    expect(r.kernel.syscalls.mount_setattr.available).toBe(kernelAtLeast(5, 12));
    const cg2 = run(['findmnt', '-n', '-t', 'cgroup2', '-o', 'TARGET']).out.split('\n').filter(Boolean);
    expect(r.kernel.cgroup2).toBe(cg2[0] ?? null);

    // The bundles' filesystem: the test idmaps a dir of its own there.
    const src = path.join(dir, 'own-src');
    mkdirSync(src, { mode: 0o700 });
    writeFileSync(path.join(src, 'file'), '');
    const ownBundle = ownIdmap(src, 'file', path.join(dir, 'own-idmap'));
    const bundle = fsProbe(r, 'bundle');
    expect(bundle.path).toBe(dir);
    expect(bundle.fsType).toBe(run(['findmnt', '-n', '-o', 'FSTYPE', '-T', dir]).out.trim());
    expect(ownBundle).toBe(MAP_BASE);
    expect(bundle).toMatchObject({ ok: true, diskUid: 0, shownUid: PROBE_UID_BASE, expectedUid: PROBE_UID_BASE });

    // A fresh tmpfs, mounted and idmapped by the test.
    const tmp = path.join(dir, 'own-tmpfs');
    mkdirSync(tmp);
    expect(run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', tmp]).code).toBe(0);
    mounted.push(tmp);
    mkdirSync(path.join(tmp, 'src'));
    writeFileSync(path.join(tmp, 'src', 'file'), '');
    const ownTmpfs = ownIdmap(path.join(tmp, 'src'), 'file', path.join(dir, 'own-tmpfs-idmap'));
    const tmpfs = fsProbe(r, 'tmpfs');
    expect(tmpfs.ok).toBe(ownTmpfs === MAP_BASE);
    if (tmpfs.ok) expect(tmpfs.shownUid).toBe(PROBE_UID_BASE);
    else expect(tmpfs.code).toBe(ownTmpfs);
    unmount(path.join(dir, 'own-tmpfs-idmap'));
    unmount(tmp);

    // Overlay over the test's own idmapped lower (util-linux mount): a copy-up takes the lower's mapped owner.
    const lower = path.join(dir, 'own-idmap');
    for (const d of ['ov-upper', 'ov-work', 'ov-merged']) mkdirSync(path.join(dir, d), { mode: 0o700 });
    const ov = run(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${dir}/ov-upper,workdir=${dir}/ov-work`, `${dir}/ov-merged`]);
    let ownCopyUp: number | undefined;
    if (ov.code === 0) {
      mounted.push(`${dir}/ov-merged`);
      appendFileSync(`${dir}/ov-merged/file`, 'x');
      ownCopyUp = statSync(`${dir}/ov-upper/file`).uid;
      unmount(`${dir}/ov-merged`);
    }
    unmount(lower);
    expect(r.idmap.overlay.ok).toBe(ownCopyUp === MAP_BASE);
    expect(r.idmap.overlay).toMatchObject({ copyUpUid: PROBE_UID_BASE, expectedUid: PROBE_UID_BASE });

    // runc, asked by the test.
    const runc = realpathSync(which('runc'));
    const version = /^runc version (\S+)/m.exec(run(['runc', '--version']).out)?.[1];
    const runcFeatures = JSON.parse(run(['runc', 'features']).out) as Record<string, unknown>;
    expect(r.runtime).toMatchObject({ binary: 'runc', path: runc, found: true, name: 'runc', version });
    expect(r.runtime.features).toEqual(runcFeatures);
    // Debian's runc 1.1.5 has no mountExtensions: nstool stages idmapped mounts itself.
    expect(r.runtime.idmap.supported).toBe(false);
    expect(r.idmap.strategy).toBe('native');
    const rroListed = ((runcFeatures['mountOptions'] as string[] | undefined) ?? []).includes('rro');
    expect(r.rro).toMatchObject({ runtime: rroListed, supported: rroListed && kernelAtLeast(5, 12), kernel: { ok: kernelAtLeast(5, 12) } });

    // Every plugin's VERSION, run by the test.
    const dirs = ['/usr/lib/cni', '/opt/cni/bin'];
    const own: Record<string, string[]> = {};
    for (const d of dirs) {
      if (!existsSync(d)) continue;
      for (const n of readdirSync(d).sort()) {
        const p = path.join(d, n);
        try {
          if (!statSync(p).isFile() || n in own) continue;
          accessSync(p, constants.X_OK);
        } catch {
          continue;
        }
        const v = run([p], { env: { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' });
        own[n] = (JSON.parse(v.out) as { supportedVersions: string[] }).supportedVersions;
      }
    }
    expect(Object.keys(own).length).toBeGreaterThan(0);
    expect(r.cni.pluginPath).toEqual(dirs);
    expect(r.cni.dirs).toEqual(dirs.map((d) => ({ path: d, exists: existsSync(d) })));
    expect(Object.fromEntries(r.cni.plugins.map((p) => [p.name, p.supportedVersions]))).toEqual(own);

    // The summary follows from the parts.
    expect(r.cri).toEqual({
      userNamespaces: r.userns.create.ok && bundle.ok && r.idmap.overlay.ok && r.idmap.strategy !== 'none',
      recursiveReadOnlyMounts: r.rro.supported,
    });
    expect(r.cri.userNamespaces).toBe(true);
    const ids = r.checks.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(r.checks.find((c) => c.id === 'idmap_strategy')).toMatchObject({ verdict: 'degraded' });
    for (const c of r.checks) expect(['ok', 'degraded', 'missing']).toContain(c.verdict);
    const text = formatFeatures(r);
    for (const c of r.checks) expect(text).toMatch(new RegExp(`^${c.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +${c.verdict} `, 'm'));
    expect(text).toContain('CRI: user_namespaces=true');
  });

  it('probes an idmapped mount of a given rootfs, owner included', async () => {
    const rootfs = path.join(dir, 'rootfs');
    mkdirSync(rootfs, { mode: 0o755 });
    chownSync(rootfs, 1000, 1000);
    const own = ownIdmap(rootfs, '', path.join(dir, 'own-rootfs-idmap'));
    unmount(path.join(dir, 'own-rootfs-idmap'));
    expect(own).toBe(MAP_BASE + 1000);
    const r = await features({ stateDir, cacheDir, rootfs, noCache: true });
    expect(fsProbe(r, 'rootfs')).toMatchObject({ ok: true, path: rootfs, diskUid: 1000, shownUid: PROBE_UID_BASE + 1000 });
    expect(workDirs(dir)).toEqual([]);
    expect(readdirSync(rootfs)).toEqual([]);

    // A filesystem that cannot be idmapped (proc): the test's own mount fails the same way, and pods are off.
    const ownProc = ownIdmap('/proc', '', path.join(dir, 'own-proc-idmap'));
    expect(typeof ownProc).toBe('string');
    rmSync(path.join(dir, 'own-proc-idmap'), { recursive: true });
    const p = await features({ stateDir, cacheDir, rootfs: '/proc' });
    expect(fsProbe(p, 'rootfs')).toMatchObject({ ok: false, path: '/proc', fsType: 'proc', code: ownProc });
    expect(p.checks.find((c) => c.id === 'idmap_rootfs')).toMatchObject({ verdict: 'missing' });
    expect(p.cri.userNamespaces).toBe(false);
    expect(workDirs(dir)).toEqual([]);
  });

  it('a runtime whose features say idmap is enabled gives strategy runtime; answers are cached until the binary changes', async () => {
    const counter = path.join(dir, 'runtime-calls');
    const wrapper = path.join(dir, 'idmap-runtime');
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        `echo "$*" >> '${counter}'`,
        'for a in "$@"; do',
        `  if [ "$a" = features ]; then echo '${JSON.stringify(IDMAP_FEATURES)}'; exit 0; fi`,
        'done',
        'exec runc "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const calls = (): number => (existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);
    const o = { stateDir, cacheDir, runtime: wrapper };

    const first = await features(o);
    expect(first.cache.hit).toBe(false);
    expect(first.idmap.strategy).toBe('runtime');
    expect(first.runtime).toMatchObject({ path: wrapper, found: true, name: 'runc', idmap: { supported: true } });
    expect(first.runtime.features).toEqual(IDMAP_FEATURES);
    // No mountOptions in its features: no rro.
    expect(first.rro).toMatchObject({ runtime: false, supported: false });
    expect(first.cri).toEqual({ userNamespaces: true, recursiveReadOnlyMounts: false });
    // --version and features, once each: the idmap gate reused them.
    expect(calls()).toBe(2);

    const cached = await features(o);
    expect(cached.cache).toEqual({ hit: true, file: first.cache.file });
    expect(calls()).toBe(2);
    const { cache: _a, ...restFirst } = first;
    const { cache: _b, ...restCached } = cached;
    expect(restCached).toEqual(restFirst);

    // The cache file: 0600 in a 0700 dir.
    const file = first.cache.file!;
    expect(path.dirname(file)).toBe(cacheDir);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    expect(lstatSync(cacheDir).mode & 0o777).toBe(0o700);

    // A new mtime on the binary is a new runtime.
    const t = statSync(wrapper).mtime;
    utimesSync(wrapper, t, new Date(t.getTime() + 10_000));
    const changed = await features(o);
    expect(changed.cache.hit).toBe(false);
    expect(calls()).toBe(4);
    expect((await features(o)).cache.hit).toBe(true);
    expect(calls()).toBe(4);

    // A corrupt, forged, misshapen, world-readable or linked cache file is ignored, and replaced.
    const cacheFile = changed.cache.file!;
    const good = readFileSync(cacheFile, 'utf8');
    const doc = JSON.parse(good) as { key: string; data: Record<string, unknown> };
    const bad: Array<[string, () => void]> = [
      ['torn', () => writeFileSync(cacheFile, good.slice(0, good.length / 2), { mode: 0o600 })],
      ['garbage', () => writeFileSync(cacheFile, '\0\0not json', { mode: 0o600 })],
      ['other inputs', () => writeFileSync(cacheFile, JSON.stringify({ ...doc, key: doc.key.replace('"boot":"', '"boot":"x') }), { mode: 0o600 })],
      ['misshapen', () => writeFileSync(cacheFile, JSON.stringify({ ...doc, data: { ...doc.data, cri: { userNamespaces: 'yes' } } }), { mode: 0o600 })],
      ['forged path', () => writeFileSync(cacheFile, JSON.stringify({ ...doc, data: { ...doc.data, runtime: { ...(doc.data['runtime'] as object), path: 'relative' } } }), { mode: 0o600 })],
      [
        'world-readable',
        () => {
          writeFileSync(cacheFile, good);
          spawnSync('chmod', ['0644', cacheFile]);
        },
      ],
      [
        'symlink',
        () => {
          writeFileSync(path.join(dir, 'elsewhere.json'), good, { mode: 0o600 });
          rmSync(cacheFile);
          symlinkSync(path.join(dir, 'elsewhere.json'), cacheFile);
        },
      ],
    ];
    let expected = calls();
    for (const [what, spoil] of bad) {
      spoil();
      const r = await features(o);
      expect(r.cache.hit, what).toBe(false);
      expect(r.idmap.strategy, what).toBe('runtime');
      expected += 2;
      expect(calls(), what).toBe(expected);
      expect(lstatSync(cacheFile).isFile(), what).toBe(true);
      expect(lstatSync(cacheFile).mode & 0o777, what).toBe(0o600);
      expect((await features(o)).cache.hit, what).toBe(true);
    }
    expect(workDirs(dir)).toEqual([]);
  });

  it('a missing runtime is a verdict, not a crash', async () => {
    const r = await features({ stateDir, cacheDir, runtime: path.join(dir, 'no-such-runtime') });
    expect(r.runtime).toMatchObject({ found: false, path: null, version: null, features: null });
    expect(r.checks.find((c) => c.id === 'runtime')).toMatchObject({ verdict: 'missing' });
    expect(r.idmap.strategy).toBe('none');
    expect(r.cri.userNamespaces).toBe(false);
    const byName = await features({ stateDir, cacheDir, runtime: `${prefix}-not-in-path` });
    expect(byName.runtime.found).toBe(false);
  });

  it('refuses bad options before any side effect', async () => {
    const fresh = path.join(dir, 'never-made');
    const o = { stateDir, cacheDir: fresh };
    const aFile = path.join(dir, 'a-file');
    writeFileSync(aFile, '');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...o, rootfs: 'relative/rootfs' }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, rootfs: path.join(dir, 'missing-rootfs') }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, rootfs: aFile }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, pluginPath: 'relative:/usr/lib/cni' }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, stateDir: 'containers' }, 'ERR_INVALID_ARG_VALUE'],
      [{ cacheDir: 'cache' }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, runtime: '' }, 'ERR_INVALID_ARG_VALUE'],
      [{ ...o, runtime: 'runc\0x' }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [opts, code] of cases) {
      await expect(features(opts as never), JSON.stringify(opts)).rejects.toMatchObject({ code });
    }
    await expect(features(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(existsSync(fresh)).toBe(false);
    expect(workDirs(dir)).toEqual([]);
  });

  it('removes work dirs (and their mounts) that a killed probe left, and only those', async () => {
    const stale = path.join(dir, `.nstool-features-${process.pid}-1-0123456789ab`);
    const start = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]!;
    const live = path.join(dir, `.nstool-features-${process.pid}-${start}-ba9876543210`);
    const young = path.join(dir, `.nstool-features-${process.pid}-2-0123456789ab`);
    const other = path.join(dir, '.nstool-features-not-ours');
    for (const d of [stale, live, other, young]) mkdirSync(d, { mode: 0o700 });
    mkdirSync(path.join(stale, 'tmpfs'));
    expect(run(['mount', '-t', 'tmpfs', 'tmpfs', path.join(stale, 'tmpfs')]).code).toBe(0);
    mounted.push(path.join(stale, 'tmpfs'));
    // Only dirs older than a minute: a young one may be a probe in another pid namespace.
    const old = new Date(Date.now() - 120_000);
    for (const d of [stale, live, other]) utimesSync(d, old, old);
    await features({ stateDir, cacheDir, noCache: true });
    expect(existsSync(stale)).toBe(false);
    expect(mountPoints()).not.toContain(path.join(stale, 'tmpfs'));
    mounted.splice(mounted.indexOf(path.join(stale, 'tmpfs')), 1);
    expect(workDirs(dir).sort()).toEqual([path.basename(other), path.basename(live), path.basename(young)].sort());
    for (const d of [live, other, young]) rmSync(d, { recursive: true });
  });

  it('nstool features: a table for people, one JSON document for machines, exit 2 on bad flags', () => {
    const args = ['--state-dir', stateDir, '--cache-dir', cacheDir];
    const j = run([process.execPath, BIN, 'features', '--json', ...args]);
    expect(j.code, j.err).toBe(0);
    const doc = JSON.parse(j.out) as FeaturesReport;
    expect(doc.cri).toEqual({ userNamespaces: true, recursiveReadOnlyMounts: doc.rro.supported });
    expect(doc.schema).toBe(1);
    expect(doc.runtime.binary).toBe('runc');
    const t = run([process.execPath, BIN, 'features', ...args]);
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/^FEATURE +VERDICT +DETAIL$/m);
    expect(t.out).toMatch(/^user namespaces +ok /m);
    expect(t.out).toMatch(/^idmap strategy +degraded +native: /m);
    expect(t.out).toContain('(cached: probed at');
    const fresh = run([process.execPath, BIN, 'features', '--no-cache', '--json', ...args]);
    expect(fresh.code, fresh.err).toBe(0);
    expect((JSON.parse(fresh.out) as FeaturesReport).cache.hit).toBe(false);
    const bad = run([process.execPath, BIN, 'features', '--json', '--rootfs', path.join(dir, 'missing-rootfs'), ...args]);
    expect(bad.code).toBe(2);
    expect((JSON.parse(bad.out) as { error: { code: string } }).error.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(workDirs(dir)).toEqual([]);
  });
});
