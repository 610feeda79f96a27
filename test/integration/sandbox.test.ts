import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execInNetns } from '../../src/exec.js';
import { RuncClient } from '../../src/runc/client.js';
import { containerIdOf, createSandbox, deleteSandbox, gc, listSandboxes, loadSandbox } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions } from '../../src/sandbox/index.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeName, bridgeNetwork, makeNodeNetns, NodeNetns, sandboxDirs, testSubnet } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('sb');
/** Unmounts DIRS (pin dirs ensurePinDir made mount points) until they are plain dirs again. */
function unmountAll(dirs: string[]): void {
  for (const d of dirs) while (mountPoints().includes(d)) execFileSync('umount', [d]);
}
trackLeaks(P);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describeRoot('pod sandbox: netns + CNI + pause container', () => {
  let node: NodeNetns;
  let tmp: string;
  let rootfs: string;
  let dirs: Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir'>>;
  let runtime: { binary: string; root: string };
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
    dataDir = path.join(tmp, 'ipam');
    ({ net, list } = bridgeNetwork(`${P}-net`, dataDir));
  });
  afterAll(async () => {
    // Whatever a failed test left: gc with these dirs removes it.
    await gc({ ...dirs, runtime, nodeNetns: node.path });
    node.remove();
    unmountAll([dirs.pinDir, dirs.usernsPinDir]);
    removeTree(tmp);
  });

  const opts = (id: string, extra: Partial<CreateSandboxOptions> = {}): CreateSandboxOptions => ({
    id,
    uidMap: '0:100000:65536',
    network: { list, nodeNetns: node.path },
    pause: { rootfs },
    runtime,
    ...dirs,
    ...extra,
  });
  const reservedIps = () => (existsSync(path.join(dataDir, `${P}-net`)) ? readdirSync(path.join(dataDir, `${P}-net`), { withFileTypes: true }) : []).filter((d) => /^\d+\.\d+\.\d+\.\d+$/.test(d.name)).map((d) => d.name);
  const containers = () => new RuncClient({ root: runtime.root }).list().then((l) => l.map((c) => c.id));
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  const nothingLeft = async (id: string) => {
    const name = containerIdOf(id, dirs);
    expect(ls(dirs.pinDir).filter((n) => n.includes(id))).toEqual([]);
    expect(ls(dirs.usernsPinDir).filter((n) => n.includes(id))).toEqual([]);
    expect(mountPoints().filter((m) => m.includes(id))).toEqual([]);
    expect(ls(dirs.stateDir).filter((n) => n.includes(id))).toEqual([]);
    expect(ls(dirs.bundleDir).filter((n) => n.includes(id))).toEqual([]);
    expect(ls(path.join(dirs.cniCacheDir, 'results')).filter((f) => f.includes(id))).toEqual([]);
    expect(await containers()).not.toContain(name);
  };

  it('runs a pod: pause container in the pod netns with the CNI IP, reaching the gateway', async () => {
    const id = `${P}-life`;
    const sb = await createSandbox(opts(id));
    try {
      expect(sb.phase).toBe('ready');
      expect(sb.ips).toHaveLength(1);
      const ip = sb.ips[0]!.split('/')[0]!;
      expect(ip.startsWith(net.base)).toBe(true);
      expect(reservedIps()).toEqual([ip]);
      // The pause process lives in the pinned netns and the pod userns.
      expect(statSync(`/proc/${sb.pid}/ns/net`).ino).toBe(statSync(sb.netnsPath!).ino);
      expect(statSync(`/proc/${sb.pid}/ns/user`).ino).toBe(statSync(sb.usernsPath!).ino);
      const addr = await execInNetns(sb.netnsPath!, ['ip', '-o', '-4', 'addr', 'show', 'eth0']);
      expect(addr.stdout).toContain(`inet ${sb.ips[0]}`);
      const ping = await execInNetns(sb.netnsPath!, ['ping', '-c', '1', '-W', '2', net.gateway], { timeoutMs: 10_000 });
      expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);
      const details = await loadSandbox(id, dirs);
      expect(details).toMatchObject({ id, status: 'running', netnsPresent: true, ips: sb.ips });
      expect((await listSandboxes(dirs)).map((s) => s.id)).toContain(id);
    } finally {
      expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: true });
    }
    expect(reservedIps()).toEqual([]);
    await nothingLeft(id);
    expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: false });
  });

  it('survives a restart of the caller: a new process lists, inspects and deletes it', async () => {
    const id = `${P}-restart`;
    const script = `
      import { createSandbox } from ${JSON.stringify(path.join(ROOT, 'dist/sandbox/index.js'))};
      const sb = await createSandbox(JSON.parse(process.argv[1]));
      process.stdout.write(JSON.stringify(sb));
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(opts(id))], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const made = JSON.parse(r.stdout) as { ips: string[]; pid: number };
    const listed = await listSandboxes(dirs);
    expect(listed.find((s) => s.id === id)).toMatchObject({ ips: made.ips, pid: made.pid });
    const loaded = await loadSandbox(id, dirs);
    expect(loaded).toMatchObject({ status: 'running', netnsPresent: true, ips: made.ips });
    await deleteSandbox(id, dirs);
    expect(reservedIps()).toEqual([]);
    await nothingLeft(id);
    // The IP is free again: a new sandbox gets an address from the same range.
    const again = await createSandbox(opts(`${id}2`));
    try {
      expect(again.ips[0]!.startsWith(net.base)).toBe(true);
    } finally {
      await deleteSandbox(`${id}2`, dirs);
    }
  });

  it('rolls back every step when CNI fails: missing plugin, bad IPAM range', async () => {
    const missing = { ...list, name: `${P}-net`, plugins: [{ type: `${P}-nosuchplugin` }] };
    const id1 = `${P}-rb1`;
    await expect(createSandbox(opts(id1, { network: { list: missing, nodeNetns: node.path } }))).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI' });
    await nothingLeft(id1);

    const badRange = {
      ...list,
      plugins: [{ type: 'bridge', bridge: bridgeName(), isGateway: true, ipam: { type: 'host-local', subnet: '10.123.0.0/33', dataDir } }],
    };
    const id2 = `${P}-rb2`;
    await expect(createSandbox(opts(id2, { network: { list: badRange, nodeNetns: node.path } }))).rejects.toMatchObject({ code: 'ERR_NSTOOL_CNI' });
    await nothingLeft(id2);
    expect(reservedIps()).toEqual([]);
  });

  it('rolls back when the pause container cannot start, releasing the IP', async () => {
    const broken = path.join(tmp, 'broken-rootfs');
    mkdirSync(broken, { mode: 0o755 });
    const id = `${P}-rb3`;
    await expect(createSandbox(opts(id, { pause: { rootfs: broken } }))).rejects.toMatchObject({ code: 'ERR_NSTOOL_RUNTIME' });
    await nothingLeft(id);
    expect(reservedIps()).toEqual([]);
  });

  it('refuses an occupied id and leaves the existing sandbox intact', async () => {
    const id = `${P}-dup`;
    const first = await createSandbox(opts(id, { network: undefined }));
    try {
      await expect(createSandbox(opts(id, { network: undefined }))).rejects.toMatchObject({ code: 'EEXIST' });
      expect(await loadSandbox(id, dirs)).toMatchObject({ status: 'running', netnsPresent: true, pid: first.pid });
    } finally {
      await deleteSandbox(id, dirs);
    }
    await nothingLeft(id);
  });

  it('gc cleans up after a caller SIGKILLed at each point of create; --dry-run only reports', async () => {
    for (const point of ['state', 'after-netns', 'after-network', 'after-pause']) {
      const id = `${P}-crash-${point}`;
      const script = `
        import { createSandbox } from ${JSON.stringify(path.join(ROOT, 'dist/sandbox/index.js'))};
        await createSandbox({ ...JSON.parse(process.argv[1]), onStep: (p) => { if (p === process.argv[2]) process.kill(process.pid, 'SIGKILL'); } });`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(opts(id)), point], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
      const dry = await gc({ ...dirs, runtime, nodeNetns: node.path, dryRun: true });
      expect(dry.some((a) => a.kind === 'sandbox' && a.target === id), point).toBe(true);
      expect(dry.every((a) => !a.done)).toBe(true);
      expect(existsSync(path.join(dirs.stateDir, `${id}.json`)), point).toBe(true);
      const done = await gc({ ...dirs, runtime, nodeNetns: node.path });
      expect(done.filter((a) => a.error).map((a) => a.error), point).toEqual([]);
      await nothingLeft(id);
      expect(reservedIps(), point).toEqual([]);
    }
  });

  it('gc removes pins, containers and CNI results that have no state', async () => {
    const id = `${P}-orphan`;
    await createSandbox(opts(id));
    // Lose the state file as a crash between steps of a delete could.
    execFileSync('rm', ['-f', path.join(dirs.stateDir, `${id}.json`)]);
    const actions = await gc({ ...dirs, runtime, nodeNetns: node.path });
    expect(new Set(actions.map((a) => a.kind))).toEqual(new Set(['container', 'cni-result', 'userns-pin', 'pin']));
    expect(actions.every((a) => a.done)).toBe(true);
    await nothingLeft(id);
    expect(reservedIps()).toEqual([]);
  });

  it('creates and deletes 20 sandboxes concurrently', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `${P}-c${i}`);
    const made = await Promise.all(ids.map((id) => createSandbox(opts(id))));
    expect(new Set(made.map((m) => m.ips[0])).size).toBe(20);
    expect(made.every((m) => m.phase === 'ready')).toBe(true);
    const gone = await Promise.all(ids.map((id) => deleteSandbox(id, dirs)));
    expect(gone.every((g) => g.existed)).toBe(true);
    for (const id of ids) await nothingLeft(id);
    expect(reservedIps()).toEqual([]);
  });
});
