// Pod sandboxes without a pause container: the ipc and uts namespaces are
// pinned next to the netns and userns pins (owned by the pod's userns), no
// process runs for the pod, containers join all four by path, and create,
// delete and gc handle the two new pins like the others.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { delNetwork, toNetworkList } from '../../src/cni/index.js';
import { native } from '../../src/native.js';
import { NS_TYPES } from '../../src/kernel/ns.js';
import { createPodNetns, deletePodNetns, ensurePinDir } from '../../src/netns.js';
import { removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { containerIdOf, createSandbox, deleteSandbox, gc, loadSandbox, sandboxNamespaces } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns, sandboxDirs, testSubnet } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('sbnp');
trackLeaks(P);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/nstool.js');

type Dirs = Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir' | 'ipcPinDir' | 'utsPinDir'>>;

/** Unmounts DIRS (pin dirs ensurePinDir made mount points) until they are plain dirs again. */
function unmountAll(dirs: string[]): void {
  // -R: pins a failed test left under a dir go with it.
  for (const d of dirs) while (mountPoints().includes(d)) execFileSync('umount', ['-R', d]);
}

/** Pids of every process on the host whose KIND namespace is the one pinned at PIN. */
function processesIn(kind: string, pin: string): number[] {
  const want = `${kind}:[${statSync(pin).ino}]`;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/${kind}`) === want) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);

describeRoot('pod sandbox without a pause container', () => {
  let node: NodeNetns;
  let tmp: string;
  let rootfs: string;
  let dirs: Dirs;
  let runtime: { binary: string; root: string };
  let runc: RuncClient;
  let ctrDir: string;
  let net: ReturnType<typeof testSubnet>;
  let dataDir: string;
  let list: Record<string, unknown>;

  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
    rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs'));
    // Pins of its own: its gc must never see another test's (or a node's) pins.
    dirs = sandboxDirs(tmp);
    runtime = { binary: 'runc', root: path.join(tmp, 'runc') };
    mkdirSync(runtime.root, { mode: 0o700 });
    runc = new RuncClient({ root: runtime.root, logDir: tmp, timeoutMs: 30_000 });
    ctrDir = path.join(tmp, 'containers');
    dataDir = path.join(tmp, 'ipam');
    ({ net, list } = bridgeNetwork(`${P}-net`, dataDir));
  });
  afterAll(async () => {
    // Whatever a failed test left: gc with these dirs removes it.
    for (const c of await runc.list().catch(() => [])) await removePodContainer(c.id, { stateDir: ctrDir, runtime: runc }).catch(() => {});
    await gc({ ...dirs, runtime, nodeNetns: node.path });
    node.remove();
    unmountAll([dirs.pinDir, dirs.usernsPinDir, dirs.ipcPinDir, dirs.utsPinDir]);
    removeTree(tmp);
  });

  const opts = (id: string, extra: Partial<CreateSandboxOptions> = {}): CreateSandboxOptions => ({
    id,
    uidMap: '0:100000:65536',
    network: { list, nodeNetns: node.path },
    runtime,
    ...dirs,
    ...extra,
  });
  const gcOf = (extra: { dryRun?: boolean } = {}) => gc({ ...dirs, runtime, nodeNetns: node.path, ...extra });
  const reservedIps = () => ls(path.join(dataDir, `${P}-net`)).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
  /** Everything sandbox ID could have left, as one list. */
  const leftOf = async (id: string): Promise<string[]> => {
    const name = containerIdOf(id, dirs);
    const has = (n: string) => n.includes(id);
    return [
      ...[dirs.pinDir, dirs.usernsPinDir, dirs.ipcPinDir, dirs.utsPinDir, dirs.stateDir, dirs.bundleDir, path.join(dirs.cniCacheDir, 'results'), ctrDir].flatMap((d) =>
        ls(d).filter(has).map((n) => path.join(d, n)),
      ),
      ...mountPoints().filter((m) => m.includes(id)),
      ...(await runc.list()).map((c) => c.id).filter((c) => c === name || has(c)),
    ];
  };

  it('native createPodNs: both namespaces owned by the userns, the host name set; a failure leaves no pin', async () => {
    const pins = { pinDir: dirs.pinDir, usernsPinDir: dirs.usernsPinDir };
    const pod = await createPodNetns({ name: `${P}-native`, uidMap: '0:100000:65536', pinUserns: true, ...pins });
    const ipcPin = path.join(dirs.ipcPinDir, `${P}-native`);
    const utsPin = path.join(dirs.utsPinDir, `${P}-native`);
    try {
      ensurePinDir(dirs.ipcPinDir);
      ensurePinDir(dirs.utsPinDir);
      const r = await native.createPodNs({ userns: pod.usernsPath!, ipcPin, utsPin, hostname: 'native-host' });
      expect(r).toMatchObject({ ipcIno: statSync(ipcPin).ino, utsIno: statSync(utsPin).ino, usernsIno: pod.usernsInode });
      for (const p of [ipcPin, utsPin]) expect(native.inspectNsSync(p, true).owner?.ino).toBe(pod.usernsInode);
      expect(execFileSync('nsenter', [`--uts=${utsPin}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe('native-host');
      native.unpinSync(ipcPin);
      native.unpinSync(utsPin);

      // The second pin cannot be made: the first is undone.
      writeFileSync(utsPin, '');
      expect(() => native.createPodNsSync({ userns: pod.usernsPath!, ipcPin, utsPin, hostname: 'x' })).toThrow(expect.objectContaining({ code: 'EEXIST', path: utsPin }));
      expect(existsSync(ipcPin)).toBe(false);
      unlinkSync(utsPin);
      // Not a user namespace, the host's own (nothing to gain), nothing to make, a host name the kernel refuses.
      const bad: Array<[Parameters<typeof native.createPodNsSync>[0], string, string]> = [
        [{ userns: pod.path, ipcPin }, 'EINVAL', 'setns'],
        [{ userns: '/proc/self/ns/user', ipcPin }, 'EINVAL', 'setns'],
        [{ userns: pod.usernsPath! }, 'EINVAL', 'unshare'],
        [{ userns: pod.usernsPath!, utsPin, hostname: 'h'.repeat(65) }, 'EINVAL', 'sethostname'],
      ];
      for (const [params, code, syscall] of bad) {
        expect(() => native.createPodNsSync(params), JSON.stringify(params)).toThrow(expect.objectContaining({ code, syscall }));
        expect(existsSync(ipcPin) || existsSync(utsPin)).toBe(false);
      }
    } finally {
      for (const p of [ipcPin, utsPin]) if (existsSync(p)) native.unpinSync(p);
      await deletePodNetns(pod.path, pins);
    }
  });

  it('runs a pod with no process of its own: a container joins its net, ipc, uts and user pins; delete leaves nothing', async () => {
    const id = `${P}-life`;
    const app = `${P}-app`;
    const sb = await createSandbox(opts(id));
    try {
      expect(sb).toMatchObject({ id, phase: 'ready' });
      expect(sb.pid).toBeUndefined();
      expect(sb.containerId).toBeUndefined();
      expect(sb.ips).toHaveLength(1);
      // No pause container, and no process at all lives in the pod's namespaces: the pins alone hold them.
      expect(await runc.list()).toEqual([]);
      const ns = await sandboxNamespaces(id, dirs);
      const name = containerIdOf(id, dirs);
      expect(ns).toEqual({
        netns: path.join(dirs.pinDir, name),
        userns: path.join(dirs.usernsPinDir, name),
        ipc: path.join(dirs.ipcPinDir, name),
        uts: path.join(dirs.utsPinDir, name),
      });
      expect(sb).toMatchObject({ netnsPath: ns.netns, usernsPath: ns.userns, ipcPath: ns.ipc, utsPath: ns.uts });
      for (const [kind, pin] of [['net', ns.netns], ['ipc', ns.ipc!], ['uts', ns.uts!], ['user', ns.userns]] as const) {
        expect(processesIn(kind, pin), kind).toEqual([]);
      }
      // Both new pins are namespaces of their type owned by the sandbox's userns, as its netns is.
      const user = native.inspectNsSync(ns.userns, true);
      for (const [kind, pin] of [['net', ns.netns], ['ipc', ns.ipc!], ['uts', ns.uts!]] as const) {
        const info = native.inspectNsSync(pin, true);
        expect(info.nsfs, kind).toBe(true);
        expect(NS_TYPES[info.type], kind).toBe(kind);
        expect(info.owner, kind).toMatchObject({ ino: user.ino, dev: user.dev });
      }
      expect(execFileSync('nsenter', [`--uts=${ns.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe(id);
      expect(await loadSandbox(id, dirs)).toMatchObject({ phase: 'ready', netnsPresent: true, ipcPath: ns.ipc, utsPath: ns.uts });

      const rec = await runPodContainer({
        id: app,
        netns: ns.netns,
        ipcPath: ns.ipc!,
        utsPath: ns.uts!,
        pinDir: dirs.pinDir,
        usernsPinDir: dirs.usernsPinDir,
        rootfs,
        command: ['sleep', '1000'],
        runtime: runc,
        stateDir: ctrDir,
      });
      // It joined the sandbox's userns pin rather than making one.
      expect(rec).toMatchObject({ usernsPath: ns.userns, usernsPinned: false });
      for (const [kind, pin] of [['net', ns.netns], ['ipc', ns.ipc!], ['uts', ns.uts!], ['user', ns.userns]] as const) {
        const r = await runc.exec(app, ['readlink', `/proc/self/ns/${kind}`]);
        expect(r.stdout.trim(), kind).toBe(`${kind}:[${statSync(pin).ino}]`);
      }
      expect((await runc.exec(app, ['/bin/busybox', 'hostname'])).stdout.trim()).toBe(id);
      const ping = await runc.exec(app, ['/bin/busybox', 'ping', '-c', '1', '-W', '2', net.gateway]);
      expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);
      // The container is the only process in the pod; removing it leaves the pins holding the namespaces.
      expect(processesIn('ipc', ns.ipc!)).toEqual([rec.pid]);
      expect(await removePodContainer(app, { stateDir: ctrDir, runtime: runc })).toEqual({ id: app, existed: true });
      expect(NS_TYPES[native.inspectNsSync(ns.uts!, true).type]).toBe('uts');
      expect((await sandboxNamespaces(id, dirs)).uts).toBe(ns.uts);
    } finally {
      await removePodContainer(app, { stateDir: ctrDir, runtime: runc });
      expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: true });
    }
    expect(await leftOf(id)).toEqual([]);
    expect(ls(ctrDir)).toEqual([]);
    expect(reservedIps()).toEqual([]);
    expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: false });
  });

  it('pause: false and a hostname; a container may neither rename the pod nor join another pod or the host', async () => {
    const a = `${P}-host`;
    const b = `${P}-other`;
    await createSandbox(opts(a, { pause: false, hostname: 'web-1', network: undefined }));
    try {
      await createSandbox(opts(b, { network: undefined }));
      const na = await sandboxNamespaces(a, dirs);
      const nb = await sandboxNamespaces(b, dirs);
      expect(execFileSync('nsenter', [`--uts=${na.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe('web-1');
      expect(execFileSync('nsenter', [`--uts=${nb.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe(b);
      const run = (extra: Record<string, unknown>) =>
        runPodContainer({ id: `${P}-bad`, netns: na.netns, pinDir: dirs.pinDir, usernsPinDir: dirs.usernsPinDir, rootfs, command: ['true'], runtime: runc, stateDir: ctrDir, ...extra });
      // runc 1.1.5 would set it inside the joined namespace: the whole pod renamed.
      await expect(run({ ipcPath: na.ipc, utsPath: na.uts, hostname: 'renamed' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      // Another pod's namespaces, or the host's, are not this pod's.
      await expect(run({ ipcPath: nb.ipc, utsPath: na.uts })).rejects.toMatchObject({ code: 'ERR_NSTOOL_USERNS_MISMATCH', path: nb.ipc });
      await expect(run({ ipcPath: na.ipc, utsPath: nb.uts })).rejects.toMatchObject({ code: 'ERR_NSTOOL_USERNS_MISMATCH', path: nb.uts });
      await expect(run({ ipcPath: '/proc/self/ns/ipc' })).rejects.toMatchObject({ code: 'ERR_NSTOOL_USERNS_MISMATCH', path: '/proc/self/ns/ipc' });
      // A pin of another kind in its place.
      await expect(run({ utsPath: na.ipc })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', path: na.ipc });
      expect(ls(ctrDir)).toEqual([]);
      expect(await runc.list()).toEqual([]);
      expect(execFileSync('nsenter', [`--uts=${na.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe('web-1');
    } finally {
      await deleteSandbox(b, dirs);
      await deleteSandbox(a, dirs);
    }
    expect(await leftOf(a)).toEqual([]);
    expect(await leftOf(b)).toEqual([]);
  });

  it('checks the new options before any side effect', async () => {
    const id = `${P}-input`;
    const cases: Array<[string, Partial<CreateSandboxOptions> | Record<string, unknown>, string]> = [
      ['pause of the wrong type', { pause: 'no' }, 'ERR_INVALID_ARG_TYPE'],
      ['a bad host name', { hostname: 'not a name' }, 'ERR_INVALID_ARG_VALUE'],
      ['a host name too long', { hostname: 'h'.repeat(65) }, 'ERR_INVALID_ARG_VALUE'],
      ['two host names', { hostname: 'a', pause: { rootfs, hostname: 'b' } }, 'ERR_INVALID_ARG_VALUE'],
      ['one dir for netns and ipc pins', { ipcPinDir: dirs.pinDir }, 'ERR_INVALID_ARG_VALUE'],
      ['one dir for ipc and uts pins', { utsPinDir: dirs.ipcPinDir }, 'ERR_INVALID_ARG_VALUE'],
      ['a relative uts pin dir', { utsPinDir: 'uts' }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [what, extra, code] of cases) {
      await expect(createSandbox(opts(id, extra as Partial<CreateSandboxOptions>)), what).rejects.toMatchObject({ code });
      expect(await leftOf(id), what).toEqual([]);
    }
    // The CLI: --no-pause with --rootfs is a usage error.
    const r = spawnSync(process.execPath, [BIN, 'sandbox', 'create', id, '--no-pause', '--rootfs', rootfs, '--no-network', '--state-dir', dirs.stateDir, '--json'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(await leftOf(id)).toEqual([]);
  });

  it('rolls back from every point of create, the ipc and uts pins too', async () => {
    // after-netns and after-ipc come before the userns and uts steps, whose pins those steps made with theirs.
    for (const point of ['after-netns', 'before-userns', 'after-ipc', 'before-uts', 'after-uts', 'after-network']) {
      const id = `${P}-rb-${point}`;
      const name = containerIdOf(id, dirs);
      let there: string[] = [];
      await expect(
        createSandbox(
          opts(id, {
            onStep: async (p) => {
              if (p !== point) return;
              there = await leftOf(id);
              throw Object.assign(new Error(`injected at ${p}`), { code: 'ERR_TEST_INJECTED' });
            },
          }),
        ),
        point,
      ).rejects.toMatchObject({ code: 'ERR_TEST_INJECTED' });
      if (point === 'after-netns') expect(there, point).toContain(path.join(dirs.usernsPinDir, name));
      if (point === 'after-ipc') expect(there, point).toContain(path.join(dirs.utsPinDir, name));
      expect(await leftOf(id), point).toEqual([]);
    }
    // A missing plugin: refused before anything exists.
    const missing = { ...list, plugins: [{ type: `${P}-nosuchplugin` }] };
    await expect(createSandbox(opts(`${P}-rb-cni`, { network: { list: missing, nodeNetns: node.path } }))).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI' });
    expect(await leftOf(`${P}-rb-cni`)).toEqual([]);
    expect(reservedIps()).toEqual([]);
  });

  it('gc cleans up after a caller SIGKILLed at each point of create; --dry-run only reports', async () => {
    for (const point of ['after-userns', 'before-ipc', 'after-ipc', 'before-uts', 'after-uts', 'after-network']) {
      const id = `${P}-crash-${point}`;
      const script = `
        import { createSandbox } from ${JSON.stringify(path.join(ROOT, 'dist/sandbox/index.js'))};
        await createSandbox({ ...JSON.parse(process.argv[1]), onStep: (p) => { if (p === process.argv[2]) process.kill(process.pid, 'SIGKILL'); } });`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(opts(id)), point], { encoding: 'utf8', timeout: 60_000 });
      expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
      const made = await leftOf(id);
      if (point === 'after-ipc') expect(made).toContain(path.join(dirs.ipcPinDir, containerIdOf(id, dirs)));
      if (point === 'after-uts') expect(made).toContain(path.join(dirs.utsPinDir, containerIdOf(id, dirs)));
      const dry = await gcOf({ dryRun: true });
      expect(dry.some((a) => a.kind === 'sandbox' && a.target === id), point).toBe(true);
      expect(await leftOf(id), point).toEqual(made);
      const done = await gcOf();
      expect(done.filter((a) => a.error).map((a) => a.error), point).toEqual([]);
      expect(await leftOf(id), point).toEqual([]);
      expect(reservedIps(), point).toEqual([]);
    }
  });

  it('gc removes the ipc and uts pins, with the others, of a sandbox whose state is lost', async () => {
    const id = `${P}-orphan`;
    await createSandbox(opts(id));
    // Lose the state file as a crash between steps of a delete could.
    unlinkSync(path.join(dirs.stateDir, `${id}.json`));
    const actions = await gcOf();
    expect(actions.map((a) => a.kind).sort()).toEqual(['cni-result', 'ipc-pin', 'pin', 'userns-pin', 'uts-pin']);
    expect(actions.every((a) => a.done && a.id === id)).toBe(true);
    expect(await leftOf(id)).toEqual([]);
    expect(reservedIps()).toEqual([]);
  });

  it('a CNI cache entry a power cut left empty or cut short reads as absent: delete still releases the IP, gc skips the entry', async () => {
    // The entry is written without fsync (as libcni does): what the power can leave of it.
    const entryOf = (id: string) => path.join(dirs.cniCacheDir, 'results', `${String(list['name'])}-${containerIdOf(id, dirs)}-eth0`);
    for (const [i, text] of ['', '{"kind":"cniCacheV1","result":{"cniVers'].entries()) {
      const id = `${P}-pcut${i}`;
      await createSandbox(opts(id));
      expect(existsSync(entryOf(id))).toBe(true);
      writeFileSync(entryOf(id), text);
      expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: true });
      expect(await leftOf(id), JSON.stringify(text)).toEqual([]);
      expect(reservedIps(), JSON.stringify(text)).toEqual([]);
    }
    // After a reboot the state (on /run) is gone too: gc has only the entry, cannot read it and acts on nothing it names.
    const id = `${P}-pcutgc`;
    await createSandbox(opts(id));
    writeFileSync(entryOf(id), '');
    unlinkSync(path.join(dirs.stateDir, `${id}.json`));
    const actions = await gcOf();
    expect(actions.filter((a) => a.error).map((a) => a.error)).toEqual([]);
    expect(actions.map((a) => a.kind).sort()).toEqual(['ipc-pin', 'pin', 'userns-pin', 'uts-pin']);
    expect(await leftOf(id)).toEqual([entryOf(id)]);
    // Here the reservation outlived the entry (no power cut): a DEL by container id alone releases it, and removes the entry.
    await delNetwork(toNetworkList(list), { containerId: containerIdOf(id, dirs), netns: '', ifName: 'eth0' }, { cacheDir: dirs.cniCacheDir, nodeNetns: node.path });
    expect(reservedIps()).toEqual([]);
    expect(await leftOf(id)).toEqual([]);
  });

  it('a lost uts pin breaks the sandbox: no namespaces are handed out and gc deletes it', async () => {
    const id = `${P}-broken`;
    const sb = await createSandbox(opts(id));
    execFileSync('umount', [sb.utsPath!]);
    await expect(sandboxNamespaces(id, dirs)).rejects.toMatchObject({ code: 'ERR_NSTOOL_SANDBOX_BROKEN', path: sb.utsPath });
    unlinkSync(sb.utsPath!);
    await expect(sandboxNamespaces(id, dirs)).rejects.toMatchObject({ code: 'ERR_NSTOOL_SANDBOX_BROKEN', path: sb.utsPath });
    const actions = await gcOf();
    expect(actions.filter((a) => a.id === id)).toMatchObject([{ kind: 'sandbox', reason: 'uts pin missing', done: true }]);
    expect(await leftOf(id)).toEqual([]);
    expect(reservedIps()).toEqual([]);
  });

  it("another instance's gc leaves this instance's ipc and uts pins alone", async () => {
    const id = `${P}-mine`;
    const other = { ...dirs, stateDir: path.join(tmp, 'state-other') };
    const sb = await createSandbox(opts(id, { network: undefined }));
    try {
      // The other instance has no state for it, and sees its pins under a name without its tag.
      expect(await gc({ ...other, runtime })).toEqual([]);
      for (const p of [sb.netnsPath!, sb.usernsPath!, sb.ipcPath!, sb.utsPath!]) expect(native.inspectNsSync(p, true).nsfs, p).toBe(true);
      // Its own sandbox of the same id gets pins of its own name.
      const theirs = await createSandbox(opts(id, { ...other, network: undefined }));
      expect(theirs.ipcPath).not.toBe(sb.ipcPath);
      await deleteSandbox(id, other);
      expect(await sandboxNamespaces(id, dirs)).toMatchObject({ ipc: sb.ipcPath, uts: sb.utsPath });
    } finally {
      await deleteSandbox(id, dirs);
    }
    expect(await leftOf(id)).toEqual([]);
    expect(ls(other.stateDir).filter((n) => n.includes(id))).toEqual([]);
  });

  it('gc removes an empty ipc pin file of its own and leaves a uts file with content alone', async () => {
    // An empty plain file with this instance's name but no state: litter of a killed create.
    const id = `${P}-litter`;
    mkdirSync(dirs.ipcPinDir, { recursive: true });
    const litter = path.join(dirs.ipcPinDir, containerIdOf(id, dirs));
    writeFileSync(litter, '');
    // A file with content is not a pin: reported, never removed.
    const notPin = path.join(dirs.utsPinDir, containerIdOf(`${P}-notpin`, dirs));
    mkdirSync(dirs.utsPinDir, { recursive: true });
    writeFileSync(notPin, 'data');
    const actions = await gcOf();
    expect(actions.find((a) => a.target === litter)).toMatchObject({ kind: 'ipc-pin', done: true });
    expect(existsSync(litter)).toBe(false);
    expect(actions.find((a) => a.target === notPin)).toMatchObject({ kind: 'uts-pin', done: false });
    expect(existsSync(notPin)).toBe(true);
    unlinkSync(notPin);
  });

  it('creates and deletes 10 sandboxes concurrently', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `${P}-c${i}`);
    const made = await Promise.all(ids.map((id) => createSandbox(opts(id))));
    expect(new Set(made.map((m) => m.ips[0])).size).toBe(10);
    expect(new Set(made.map((m) => statSync(m.ipcPath!).ino)).size).toBe(10);
    expect(await runc.list()).toEqual([]);
    const gone = await Promise.all(ids.map((id) => deleteSandbox(id, dirs)));
    expect(gone.every((g) => g.existed)).toBe(true);
    for (const id of ids) expect(await leftOf(id)).toEqual([]);
    expect(reservedIps()).toEqual([]);
  });
});
