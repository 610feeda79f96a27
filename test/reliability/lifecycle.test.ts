// The sandbox lifecycle converges: bad input leaves nothing; a create or
// delete killed or interrupted at any step leaves a state that one delete
// and one gc finish; gc after a reboot releases every IP from the CNI cache
// alone; gc touches only its own instance, tolerates entries that vanish
// while it looks, and a dry run changes nothing on disk.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuncClient } from '../../src/runc/client.js';
import { containerIdOf, createSandbox, deleteSandbox, gc, loadSandbox, SandboxError } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions, GcAction } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { cli } from '../helpers/paused-cli.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('life');
trackLeaks(P);

type Dirs = Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir'>>;

/** path -> mode, size, mtime, inode of everything under DIR (lstat, no links followed). */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    out.set(p, `${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.ino}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return out;
}

const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);

describeRoot('sandbox lifecycle: every path converges', () => {
  let node: NodeNetns;
  let tmp: string;
  let rootfs: string;
  let runtime: { binary: string; root: string };
  let dataDir: string;
  let list: Record<string, unknown>;
  let netName: string;
  let conflist: string;
  const instances = new Set<Dirs>();

  /** An instance: a state dir of its own; pins, bundles, CNI cache and runtime root shared, as on a node. */
  const instance = (tag: string): Dirs => {
    const d = {
      stateDir: path.join(tmp, `state-${tag}`),
      bundleDir: path.join(tmp, 'bundles'),
      cniCacheDir: path.join(tmp, 'cni'),
      pinDir: path.join(tmp, 'netns'),
      usernsPinDir: path.join(tmp, 'userns'),
    };
    instances.add(d);
    return d;
  };
  const flags = (d: Dirs) => [
    '--state-dir', d.stateDir,
    '--bundle-dir', d.bundleDir,
    '--pin-dir', d.pinDir,
    '--userns-pin-dir', d.usernsPinDir,
    '--cni-cache-dir', d.cniCacheDir,
    '--runtime-root', runtime.root,
  ];
  const opts = (d: Dirs, id: string, extra: Partial<CreateSandboxOptions> = {}): CreateSandboxOptions => ({
    id,
    uidMap: '0:100000:65536',
    network: { list, nodeNetns: node.path },
    pause: { rootfs },
    runtime,
    ...d,
    ...extra,
  });
  const gcOf = (d: Dirs, extra: { dryRun?: boolean } = {}) => gc({ ...d, runtime, nodeNetns: node.path, ...extra });
  const containers = async () => (await new RuncClient({ root: runtime.root }).list()).map((c) => c.id);
  /** IPs host-local holds, each with the container id it holds it for. */
  const reservations = (): string[] =>
    ls(path.join(dataDir, netName))
      .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n))
      .map((n) => `${n} ${readFileSync(path.join(dataDir, netName, n), 'utf8').split(/\s/)[0]}`);

  /** Everything sandbox ID of instance D could have left, as one list (empty when nothing is left). */
  const leftOf = async (d: Dirs, id: string): Promise<string[]> => {
    const name = containerIdOf(id, d);
    const has = (n: string) => n === name || n.includes(`${name}-`) || n.includes(`-${name}`) || n.startsWith(`${id}.`) || n.startsWith(`.${id}.`);
    return [
      ...ls(d.stateDir).filter(has).map((n) => `state ${n}`),
      ...ls(d.pinDir).filter(has).map((n) => `pin ${n}`),
      ...ls(d.usernsPinDir).filter(has).map((n) => `userns ${n}`),
      ...ls(d.bundleDir).filter(has).map((n) => `bundle ${n}`),
      ...ls(path.join(d.cniCacheDir, 'results')).filter(has).map((n) => `cache ${n}`),
      ...mountPoints().filter((m) => m.includes(name)).map((m) => `mount ${m}`),
      ...(await containers()).filter((c) => c === name).map((c) => `container ${c}`),
      ...reservations().filter((r) => r.endsWith(` ${name}`)).map((r) => `ip ${r}`),
    ];
  };
  const errorsOf = (a: GcAction[]) => a.filter((x) => x.error).map((x) => `${x.kind} ${x.target}: ${x.error}`);

  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
    rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs'));
    runtime = { binary: 'runc', root: path.join(tmp, 'runc') };
    mkdirSync(runtime.root, { mode: 0o700 });
    dataDir = path.join(tmp, 'ipam');
    netName = `${P}-net`;
    ({ list } = bridgeNetwork(netName, dataDir));
    conflist = path.join(tmp, 'net.conflist');
    writeFileSync(conflist, JSON.stringify(list));
  });
  afterAll(async () => {
    for (const d of instances) await gcOf(d).catch(() => {});
    node.remove();
    for (const d of [path.join(tmp, 'netns'), path.join(tmp, 'userns')]) while (mountPoints().includes(d)) execFileSync('umount', [d]);
    removeTree(tmp);
  });

  describe('(a) bad input: a typed error before any side effect', () => {
    const cases: Array<[string, (d: Dirs) => Partial<CreateSandboxOptions>, string]> = [
      ['an ifname of 16 bytes', () => ({ network: { list, nodeNetns: node.path, ifName: 'abcdefghijklmnop' } }), 'ERR_INVALID_ARG_VALUE'],
      ['an ifname with a colon', () => ({ network: { list, nodeNetns: node.path, ifName: 'eth0:1' } }), 'ERR_INVALID_ARG_VALUE'],
      ['a network name with a slash', () => ({ network: { list: { ...list, name: 'a/b' }, nodeNetns: node.path } }), 'ERR_NSTOOL_CNI_CONFIG'],
      ['a missing plugin', () => ({ network: { list: { ...list, plugins: [{ type: `${P}-nosuchplugin` }] }, nodeNetns: node.path } }), 'ERR_NSTOOL_CNI'],
      ['a relative plugin path', () => ({ network: { list, nodeNetns: node.path, pluginPath: 'usr/lib/cni' } }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative node netns', () => ({ network: { list, nodeNetns: 'run/netns/x' } }), 'ERR_INVALID_ARG_VALUE'],
      ['a uid map missing its size', () => ({ uidMap: '0:100000' }), 'ERR_INVALID_ARG_VALUE'],
      ['a uid map without the pod root', () => ({ uidMap: '1:100001:65535' }), 'ERR_INVALID_ARG_VALUE'],
      ['setgroups neither allow nor deny', () => ({ setgroups: 'maybe' as 'allow' }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative state dir', () => ({ stateDir: 'state' }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative bundle dir', () => ({ bundleDir: 'bundles' }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative pin dir', () => ({ pinDir: 'netns' }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative userns pin dir', () => ({ usernsPinDir: 'userns' }), 'ERR_INVALID_ARG_VALUE'],
      ['one dir for both pins', (d) => ({ usernsPinDir: d.pinDir }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative CNI cache dir', () => ({ cniCacheDir: 'cni' }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative pause rootfs', () => ({ pause: { rootfs: 'rootfs' } }), 'ERR_INVALID_ARG_VALUE'],
      ['a missing pause rootfs', () => ({ pause: { rootfs: path.join(tmp, 'no-rootfs') } }), 'ENOENT'],
      ['an empty pause command', () => ({ pause: { rootfs, command: [] } }), 'ERR_INVALID_ARG_VALUE'],
      ['a pause hostname with a space', () => ({ pause: { rootfs, hostname: 'a b' } }), 'ERR_INVALID_ARG_VALUE'],
      ['a missing runtime binary', () => ({ runtime: { binary: `${P}-no-runc`, root: runtime.root } }), 'ENOENT'],
      ['a relative runtime binary', () => ({ runtime: { binary: 'sbin/runc', root: runtime.root } }), 'ERR_INVALID_ARG_VALUE'],
      ['a relative runtime root', () => ({ runtime: { binary: 'runc', root: 'runc' } }), 'ERR_INVALID_ARG_VALUE'],
      ['an id with a slash', () => ({ id: 'bad/id' }), 'ERR_INVALID_ARG_VALUE'],
      ['an id too long for its names', () => ({ id: `${P}-${'x'.repeat(200)}` }), 'ERR_INVALID_ARG_VALUE'],
    ];
    it.each(cases.map((c, i) => [...c, i] as const))('%s', async (what, extra, code, i) => {
      const d = instance(`bad${i}`);
      const id = `${P}-bad${i}`;
      await expect(createSandbox(opts(d, id, extra(d)))).rejects.toMatchObject({ code });
      // Not even the state dir: nothing was made.
      expect(existsSync(d.stateDir), what).toBe(false);
      expect(await leftOf(d, id)).toEqual([]);
      expect(mountPoints().filter((m) => m.includes(id))).toEqual([]);
    });

    it('the CLI says so with exit 2 and leaves nothing', async () => {
      const d = instance('badcli');
      const id = `${P}-badcli`;
      const r = await cli(['sandbox', 'create', id, '--rootfs', rootfs, '--conflist', conflist, '--node-netns', node.path, '--ifname', 'abcdefghijklmnop', ...flags(d), '--json']);
      expect(r.code, r.err).toBe(2);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
      expect(existsSync(d.stateDir)).toBe(false);
      expect(await leftOf(d, id)).toEqual([]);
    });
  });

  describe('(b) killed or interrupted at each step, then delete and gc leave nothing', () => {
    const CREATE_POINTS = ['state', ...['netns', 'userns', 'network', 'pause'].flatMap((s) => [`before-${s}`, `after-${s}`])];
    const DELETE_POINTS = ['pause', 'network', 'userns', 'netns'].flatMap((s) => [`before-remove-${s}`, `after-remove-${s}`]);

    /** sandbox delete, then gc, through the CLI: both succeed and nothing of ID is left. */
    const converge = async (d: Dirs, id: string, why: string) => {
      const del = await cli(['sandbox', 'delete', id, ...flags(d), '--json']);
      expect(del.code, `${why}: delete: ${del.err}`).toBe(0);
      const g = await cli(['gc', ...flags(d), '--node-netns', node.path, '--json']);
      expect(g.code, `${why}: gc: ${g.out}${g.err}`).toBe(0);
      expect(await leftOf(d, id), why).toEqual([]);
    };
    const create = (d: Dirs, id: string, env: Record<string, string>, onPause?: (c: ReturnType<typeof spawn>) => void) =>
      cli(['sandbox', 'create', id, '--rootfs', rootfs, '--conflist', conflist, '--node-netns', node.path, ...flags(d), '--json'], env, onPause);

    it.each(CREATE_POINTS)('create SIGKILLed at %s', async (point) => {
      const d = instance('kill');
      const id = `${P}-k-${point}`;
      const r = await create(d, id, { NSTOOL_TEST_STEP: `${point}:kill` });
      expect(r.signal, r.err).toBe('SIGKILL');
      expect(await leftOf(d, id)).not.toEqual([]);
      await converge(d, id, point);
    });

    it.each(CREATE_POINTS)('create SIGTERMed at %s rolls back by itself', async (point) => {
      const d = instance('term');
      const id = `${P}-t-${point}`;
      const r = await create(d, id, { NSTOOL_TEST_STEP: `${point}:pause` }, (c) => c.kill('SIGTERM'));
      expect(r.code, r.err).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ABORT_ERR' } });
      expect(await leftOf(d, id), point).toEqual([]);
      await converge(d, id, point);
    });

    it('create interrupted twice exits at once; delete and gc finish', async () => {
      const d = instance('term2');
      const id = `${P}-t2`;
      const r = await create(d, id, { NSTOOL_TEST_STEP: 'after-pause:pause' }, (c) => {
        c.kill('SIGINT');
        // Signals do not queue: the second comes a little later, during the rollback or after it.
        setTimeout(() => c.kill('SIGINT'), 30);
      });
      expect(r.code === 130 || r.code === 1, r.err).toBe(true);
      await converge(d, id, 'twice');
    });

    it('an AbortSignal: aborted first, nothing is made; aborted between steps, all is undone', async () => {
      const d = instance('abort');
      const id = `${P}-abort`;
      const before = new AbortController();
      before.abort();
      await expect(createSandbox(opts(d, id, { signal: before.signal }))).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
      expect(existsSync(d.stateDir)).toBe(false);
      const ac = new AbortController();
      const onStep = (point: string) => {
        if (point === 'after-network') ac.abort();
      };
      await expect(createSandbox(opts(d, id, { signal: ac.signal, onStep }))).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
      expect(await leftOf(d, id)).toEqual([]);
    });

    it.each(DELETE_POINTS)('delete SIGKILLed at %s', async (point) => {
      const d = instance('dkill');
      const id = `${P}-dk-${point}`;
      await createSandbox(opts(d, id));
      const r = await cli(['sandbox', 'delete', id, ...flags(d)], { NSTOOL_TEST_STEP: `${point}:kill` });
      expect(r.signal, r.err).toBe('SIGKILL');
      expect(await leftOf(d, id)).not.toEqual([]);
      await converge(d, id, point);
    });

    it('delete SIGTERMed mid-way finishes that sandbox', async () => {
      const d = instance('dterm');
      const id = `${P}-dt`;
      await createSandbox(opts(d, id));
      const r = await cli(['sandbox', 'delete', id, ...flags(d), '--json'], { NSTOOL_TEST_STEP: 'after-remove-network:pause' }, (c) => c.kill('SIGTERM'));
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out)).toEqual([{ id, existed: true }]);
      expect(await leftOf(d, id)).toEqual([]);
    });
  });

  it('(c) after a reboot (empty /run, CNI cache kept) gc releases every IP', async () => {
    const d = instance('reboot');
    const ids = [`${P}-rb1`, `${P}-rb2`];
    for (const id of ids) await createSandbox(opts(d, id));
    const names = ids.map((id) => containerIdOf(id, d));
    expect(reservations().filter((r) => names.some((n) => r.endsWith(` ${n}`)))).toHaveLength(2);
    // The reboot: containers, mounts, pins, bundles and the state dir go; /var stays.
    for (const n of names) {
      execFileSync('runc', ['--root', runtime.root, 'delete', '--force', n]);
      for (const m of mountPoints().filter((x) => x.includes(n)).sort().reverse()) execFileSync('umount', [m]);
      execFileSync('rm', ['-rf', path.join(d.bundleDir, n), path.join(d.pinDir, n), path.join(d.usernsPinDir, n)]);
    }
    execFileSync('rm', ['-rf', d.stateDir]);
    for (const id of ids) expect((await leftOf(d, id)).filter((l) => l.startsWith('cache') || l.startsWith('ip'))).toHaveLength(2);
    const actions = await gcOf(d);
    expect(errorsOf(actions)).toEqual([]);
    expect(actions.filter((a) => a.kind === 'cni-result' && a.done).map((a) => a.id).sort()).toEqual(ids);
    for (const id of ids) expect(await leftOf(d, id)).toEqual([]);
  });

  it('(d) gc of one instance never touches another instance on the same node', async () => {
    const a = instance('A');
    const b = instance('B');
    const id = `${P}-two`;
    // The same id in both: their names differ, so neither create trips over the other.
    const sa = await createSandbox(opts(a, id));
    const sb = await createSandbox(opts(b, id));
    try {
      expect(sa.containerId).not.toBe(sb.containerId);
      // B loses its state: its resources are orphans to B's gc, and A's must stay.
      execFileSync('rm', ['-f', path.join(b.stateDir, `${id}.json`)]);
      expect(errorsOf(await gcOf(b))).toEqual([]);
      expect(await leftOf(b, id)).toEqual([]);
      expect(await loadSandbox(id, a)).toMatchObject({ phase: 'ready', status: 'running', netnsPresent: true, ips: sa.ips });
      expect(reservations()).toContain(`${sa.ips[0]!.split('/')[0]} ${sa.containerId}`);
      expect(await gcOf(a, { dryRun: true })).toEqual([]);
      expect(await gcOf(b, { dryRun: true })).toEqual([]);
      // A state file copied into B's dir does not make A's sandbox B's to delete.
      const copy = path.join(b.stateDir, `${id}.json`);
      writeFileSync(copy, readFileSync(path.join(a.stateDir, `${id}.json`)));
      await expect(deleteSandbox(id, b)).rejects.toMatchObject({ code: 'ERR_NSTOOL_STATE' });
      expect((await gcOf(b)).map((x) => `${x.kind} ${x.reason}`)).toEqual(['sandbox state unreadable']);
      execFileSync('rm', ['-f', copy]);
      expect(await loadSandbox(id, a)).toMatchObject({ status: 'running', netnsPresent: true });
    } finally {
      await deleteSandbox(id, a);
    }
    expect(await leftOf(a, id)).toEqual([]);
  });

  it('(e) gc while sandboxes are deleted under it never throws', async () => {
    const d = instance('race');
    for (let round = 0; round < 4; round++) {
      const ids = [0, 1, 2].map((i) => `${P}-r${round}-${i}`);
      await Promise.all(ids.map((id, i) => createSandbox(opts(d, id, i === 0 ? {} : { network: undefined }))));
      const gcs = (async () => {
        const out: GcAction[][] = [];
        for (let i = 0; i < 3; i++) out.push(await gcOf(d));
        return out;
      })();
      await Promise.all([...ids.map((id) => deleteSandbox(id, d)), gcs]);
      for (const id of ids) expect(await leftOf(d, id)).toEqual([]);
    }
    // The whole state dir vanishing under gc (an admin's rm -rf, a reboot):
    // gc goes on, and later runs treat what is left as orphans.
    const ids = [0, 1].map((i) => `${P}-rv-${i}`);
    for (const id of ids) await createSandbox(opts(d, id, { network: undefined }));
    await Promise.all([
      (async () => {
        for (let i = 0; i < 3; i++) await gcOf(d);
      })(),
      (async () => {
        await new Promise((r) => setTimeout(r, 5));
        execFileSync('rm', ['-rf', d.stateDir]);
      })(),
    ]);
    expect(errorsOf(await gcOf(d))).toEqual([]);
    for (const id of ids) expect(await leftOf(d, id)).toEqual([]);
    // No lock file or tmp file is left behind either.
    expect(ls(d.stateDir)).toEqual([]);
  });

  it('(f) gc --dry-run changes nothing on disk', async () => {
    const d = instance('dry');
    const live = `${P}-dlive`;
    const orphan = `${P}-dorph`;
    const broken = `${P}-dbroken`;
    await createSandbox(opts(d, live));
    await createSandbox(opts(d, orphan));
    await createSandbox(opts(d, broken, { network: undefined }));
    execFileSync('rm', ['-f', path.join(d.stateDir, `${orphan}.json`)]);
    execFileSync('runc', ['--root', runtime.root, 'kill', containerIdOf(broken, d), 'KILL']);
    // A tmp file of a killed atomic write, and a lock file of an id without state.
    const litter = path.join(d.stateDir, `.${broken}.json.tmp-999999-0123456789ab`);
    writeFileSync(litter, '{');
    utimesSync(litter, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    writeFileSync(path.join(d.stateDir, `${P}-nostate.lock`), '');
    // A bundle a create killed before its rename left (this instance's), and another instance's.
    const old = new Date(Date.now() - 3600_000);
    const tmpBundle = (name: string): string => {
      const b = path.join(d.bundleDir, `.${name}.tmp-0123456789ab`);
      mkdirSync(b, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(b, 'nstool-container.json'), '{}', { mode: 0o600 });
      utimesSync(b, old, old);
      return b;
    };
    const ourTmp = tmpBundle(containerIdOf(`${P}-dtmp`, d));
    const theirTmp = tmpBundle(containerIdOf(`${P}-dtmp`, instance('dry-other')));
    for (const id of [orphan, broken]) expect(await leftOf(d, id)).not.toEqual([]);
    const before = tree(tmp);
    const dry = await gcOf(d, { dryRun: true });
    const cli_ = await cli(['gc', ...flags(d), '--node-netns', node.path, '--dry-run', '--json']);
    expect(tree(tmp)).toEqual(before);
    expect(cli_.code, cli_.err).toBe(0);
    expect(JSON.parse(cli_.out)).toEqual(dry);
    expect(dry.every((a) => !a.done)).toBe(true);
    expect(dry.map((a) => `${a.kind} ${a.id ?? ''}`).sort()).toEqual(
      [`sandbox ${broken}`, `container ${orphan}`, `cni-result ${orphan}`, `userns-pin ${orphan}`, `pin ${orphan}`, 'tmp-file ', 'bundle '].sort(),
    );
    expect(dry.find((a) => a.kind === 'bundle' && a.id === undefined)?.target).toBe(ourTmp);
    // The real run removes exactly that, and the lock file.
    const done = await gcOf(d);
    expect(errorsOf(done)).toEqual([]);
    expect(done.map((a) => `${a.kind} ${a.target}`)).toEqual(dry.map((a) => `${a.kind} ${a.target}`));
    for (const id of [orphan, broken]) expect(await leftOf(d, id)).toEqual([]);
    expect(existsSync(ourTmp)).toBe(false);
    expect(existsSync(theirTmp)).toBe(true);
    execFileSync('rm', ['-rf', theirTmp]);
    expect(ls(d.stateDir).sort()).toEqual([`${live}.json`, `${live}.lock`]);
    expect(await loadSandbox(live, d)).toMatchObject({ status: 'running', netnsPresent: true });
    await deleteSandbox(live, d);
    expect(await leftOf(d, live)).toEqual([]);
  });

  it('(g) on a fresh /run the default layout works: the parent of the state dir is made 0711', async () => {
    const fresh = path.join(tmp, 'fresh', 'nstool');
    const d = { ...instance('fresh'), stateDir: path.join(fresh, 'sandboxes'), bundleDir: path.join(fresh, 'bundles') };
    instances.add(d);
    const id = `${P}-fresh`;
    const sb = await createSandbox(opts(d, id, { network: undefined }));
    try {
      expect(sb.phase).toBe('ready');
      expect(statSync(fresh).mode & 0o777).toBe(0o711);
      expect(statSync(path.join(tmp, 'fresh')).mode & 0o777).toBe(0o711);
      expect(statSync(d.stateDir).mode & 0o777).toBe(0o700);
    } finally {
      await deleteSandbox(id, d);
    }
    expect(await leftOf(d, id)).toEqual([]);
  });

  it('(h) a stored network that CNI would refuse does not block delete for ever', async () => {
    const d = instance('stored');
    const id = `${P}-stored`;
    await createSandbox(opts(d, id, { network: undefined }));
    // What an older create left when its ifname was checked only inside ADD.
    const file = path.join(d.stateDir, `${id}.json`);
    const st = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    st['phase'] = 'failed';
    st['network'] = { list, ifName: 'abcdefghijklmnop', cacheDir: d.cniCacheDir, pluginPath: ['/usr/lib/cni'], nodeNetns: node.path };
    writeFileSync(file, JSON.stringify(st));
    expect(await deleteSandbox(id, d)).toEqual({ id, existed: true });
    expect(await leftOf(d, id)).toEqual([]);
  });

  it('(i) a rollback that stops names its step, keeps every failure, and delete finishes once the cause is gone', async () => {
    const d = instance('stop');
    const id = `${P}-stop`;
    const plugins = path.join(tmp, 'plugins');
    mkdirSync(plugins, { recursive: true, mode: 0o755 });
    const ok = path.join(tmp, 'del-ok');
    const type = `${P}-refuse`;
    // ADD fails; DEL fails too (in other words) until del-ok exists.
    writeFileSync(
      path.join(plugins, type),
      `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
ADD) echo '{"cniVersion":"1.0.0","code":11,"msg":"add refused"}'; exit 1 ;;
DEL) [ -e ${ok} ] && exit 0; echo '{"cniVersion":"1.0.0","code":11,"msg":"del refused"}'; exit 1 ;;
esac
`,
    );
    chmodSync(path.join(plugins, type), 0o755);
    const network = { list: { cniVersion: '1.0.0', name: `${P}-refusing`, plugins: [{ type }] }, pluginPath: [plugins] };
    const err = (await createSandbox(opts(d, id, { network })).catch((e: unknown) => e)) as SandboxError;
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'ERR_NSTOOL_CNI', step: 'network' });
    expect(err.suppressed.map((s) => s.undo)).toEqual(['network']);
    expect(err.suppressed[0]!.cause).toMatchObject({ cniMsg: 'del refused' });
    expect(err.rollbackErrors).toBe(err.suppressed);
    const st = JSON.parse(readFileSync(path.join(d.stateDir, `${id}.json`), 'utf8')) as { phase: string; pendingUndo: string[] };
    expect(st).toMatchObject({ phase: 'failed', pendingUndo: ['state file', 'netns', 'userns', 'network'] });
    writeFileSync(ok, '');
    expect(await deleteSandbox(id, d)).toEqual({ id, existed: true });
    expect(await leftOf(d, id)).toEqual([]);
  });
});
