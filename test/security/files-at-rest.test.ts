// Files nstool leaves on disk for a pod container: none readable by another
// local user (config.json carries the env), and a record read back is
// validated before any of its paths is acted on.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('secfiles');
trackLeaks(prefix);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
const POD_ROOT = 100000;

/** Runs ARGV as uid/gid 65534 with no groups (through a shell, so no path is looked up with root's capabilities). */
function asNobody(argv: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

function modeOf(p: string): [number, number, number] {
  const st = lstatSync(p);
  return [st.mode & 0o7777, st.uid, st.gid];
}

describeRoot('files at rest', () => {
  let dir: string;
  let rootfs: string;
  let runc: RuncClient;
  let pod: PodNetns;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 30_000 });
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP });
  });

  afterAll(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
    const left = await runc.list().catch(() => []);
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  it('after run-pod no file under the bundle or the dirs above it is readable by another user, nor the env', async () => {
    // The dirs above the bundle do not exist yet: nstool makes them.
    const top = path.join(dir, 'run');
    const stateDir = path.join(top, 'nstool', 'containers');
    const secret = `token-${randomBytes(12).toString('hex')}`;
    const id = `${prefix}-c`;
    cleanup.push(() => removePodContainer(id, { stateDir, runtime: runc }));
    const rec = await runPodContainer({
      id,
      netns: pod.name,
      rootfs,
      command: ['sh', '-c', 'echo out; echo err >&2; exec sleep 1000'],
      env: { API_TOKEN: secret },
      runtime: runc,
      stateDir,
    });
    // The secret is at rest (so the checks below mean something) ...
    expect(readFileSync(path.join(rec.bundle, 'config.json'), 'utf8')).toContain(secret);

    // ... and no other user reads it, or anything else there.
    const files = walk(top).filter((p) => lstatSync(p).isFile());
    expect(files).toEqual(expect.arrayContaining(['config.json', 'nstool-container.json', 'pid', 'stdout.log', 'stderr.log'].map((f) => path.join(rec.bundle, f))));
    const read = asNobody(['/bin/sh', '-c', 'for f in "$@"; do cat -- "$f" >/dev/null 2>&1 && echo "$f"; done; exit 0', 'sh', ...files]);
    expect(read).toEqual({ status: 0, stdout: '' });
    expect(asNobody(['grep', '-rl', secret, top]).stdout).toBe('');
    for (const d of [top, path.join(top, 'nstool'), stateDir, rec.bundle]) expect(asNobody(['ls', d]).status, d).not.toBe(0);

    // Modes: the dirs nstool made above the bundle let the pod's root pass
    // (0711); the bundle only it and root (0710 root:pod gid); every file 0600.
    for (const d of [top, path.join(top, 'nstool'), stateDir]) expect(modeOf(d), d).toEqual([0o711, 0, 0]);
    expect(modeOf(rec.bundle)).toEqual([0o710, 0, POD_ROOT]);
    for (const f of ['config.json', 'nstool-container.json', 'pid']) expect(modeOf(path.join(rec.bundle, f)), f).toEqual([0o600, 0, 0]);
    for (const f of ['stdout.log', 'stderr.log']) expect(modeOf(path.join(rec.bundle, f)), f).toEqual([0o600, POD_ROOT, POD_ROOT]);
    expect(modeOf(path.join(rec.bundle, 'overlay'))).toEqual([0o700, 0, 0]);
    // The container works through all that: its root reached the bundle.
    expect(await runc.state(id)).toMatchObject({ status: 'running' });
    expect(readFileSync(rec.stdout, 'utf8')).toBe('out\n');
    expect((await runc.exec(id, ['sh', '-c', 'echo $API_TOKEN'])).stdout).toBe(`${secret}\n`);

    expect(await removePodContainer(id, { stateDir, runtime: runc })).toEqual({ id, existed: true });
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('on a fresh /run where /run/nstool was made 0700, run-pod makes it 0711 and the container runs', async () => {
    // A private mount namespace with an empty tmpfs on /run/nstool: the host's stays untouched.
    const id = `${prefix}-fresh`;
    const runcRoot = path.join(dir, 'runc-root');
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=0700 nstool-test /run/nstool',
      `node ${BIN} run-pod ${pod.name} --id ${id} --rootfs ${rootfs} --runtime-root ${runcRoot} --json -- sleep 1000 >/dev/null`,
      `stat -c '%a %u %g' /run/nstool /run/nstool/containers /run/nstool/containers/${id}`,
      `runc --root ${runcRoot} state ${id} | grep -q '"status": "running"' && echo running`,
      `node ${BIN} rm-pod ${id} --runtime-root ${runcRoot}`,
    ].join('\n');
    cleanup.push(() => runc.delete(id, { force: true }));
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script], { encoding: 'utf8' });
    expect(out).toBe(`711 0 0\n711 0 0\n710 0 ${POD_ROOT}\nrunning\n${id}: removed\n`);
  });

  it('a record that names anything outside its bundle is no record: nothing is removed on its word', async () => {
    // Victims: a mount and a namespace pin that are not the container's.
    const victimMount = path.join(dir, `${prefix}-victim-mnt`);
    mkdirSync(victimMount);
    execFileSync('mount', ['--bind', path.join(rootfs, 'etc'), victimMount]);
    cleanup.push(async () => execFileSync('umount', [victimMount]));
    const victim = await createPodNetns({ name: `${prefix}-victim`, uidMap: MAP });
    cleanup.push(() => deletePodNetns(victim.name));

    const stateDir = path.join(dir, 'forged');
    mkdirSync(stateDir, { mode: 0o700 });
    const id = `${prefix}-forged`;
    const bundle = path.join(stateDir, id);
    const good = {
      id,
      bundle,
      netnsPath: pod.path,
      usernsPath: `/run/nstool/userns/${pod.name}`,
      usernsPinned: false,
      uidMap: MAP,
      gidMap: MAP,
      runtime: { binary: 'runc', root: path.join(dir, 'runc-root') },
      staged: [path.join(bundle, 'rootfs')],
      stdout: path.join(bundle, 'stdout.log'),
      stderr: path.join(bundle, 'stderr.log'),
    };
    const forged: Array<[string, Record<string, unknown>]> = [
      ['a staged path outside the bundle', { staged: [victimMount] }],
      ['a staged path climbing out', { staged: [path.join(bundle, '..', '..', path.basename(victimMount))] }],
      ['a pin outside the userns pin dir', { usernsPinned: true, usernsPath: victim.path }],
      ['another bundle', { bundle: path.dirname(victimMount), staged: [victimMount] }],
      ['another id', { id: `${prefix}-other`, staged: [victimMount] }],
      ['a relative runtime path', { runtime: { binary: '../../tmp/evil' } }],
    ];
    for (const [what, change] of forged) {
      mkdirSync(bundle, { mode: 0o700 });
      writeFileSync(path.join(bundle, 'nstool-container.json'), JSON.stringify({ ...good, ...change }), { mode: 0o600 });
      // No runtime given: the one the record names is not run either.
      expect(await removePodContainer(id, { stateDir }), what).toEqual({ id, existed: false });
      expect(mountPoints(), what).toContain(victimMount);
      expect(existsSync(path.join(victimMount, 'passwd')), what).toBe(true);
      expect(existsSync(victim.path), what).toBe(true);
      // With no record and no container, the bundle is not taken as nstool's either.
      expect(existsSync(path.join(bundle, 'nstool-container.json')), what).toBe(true);
      removeTree(bundle);
    }
    // The same record unforged is taken at its word.
    mkdirSync(bundle, { mode: 0o700 });
    writeFileSync(path.join(bundle, 'nstool-container.json'), JSON.stringify(good), { mode: 0o600 });
    expect(await removePodContainer(id, { stateDir })).toEqual({ id, existed: true });
    expect(existsSync(bundle)).toBe(false);
  });
});
