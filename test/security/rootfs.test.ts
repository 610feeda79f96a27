// The pod's root against the host: what it writes in its rootfs or a
// writable idmapped volume must never run as host root for another user,
// and a rootfs shared by containers must never change under them.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { PodContainerRecord, removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('secrootfs');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
const POD_ROOT = 100000;

/**
 * Runs ARGV as uid/gid 65534 with no groups: any local user without
 * privileges. setpriv keeps root's capabilities until its own execve, so a
 * shell (already unprivileged) resolves ARGV[0]: the path lookup is nobody's.
 */
function asNobody(argv: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

/** Every entry under DIR, not following links (through mounts). */
function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

/** Path -> mode, owner, size and content hash of every entry under DIR. */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of walk(dir)) {
    const st = lstatSync(p);
    const hash = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
    out[path.relative(dir, p)] = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${hash}`;
  }
  return out;
}

function setuidFiles(dir: string): string[] {
  return walk(dir).filter((p) => {
    const st = lstatSync(p);
    return st.isFile() && (st.mode & 0o6000) !== 0;
  });
}

function mountOptions(target: string): string[] {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === target);
  return line ? line.split(' ')[5]!.split(',') : [];
}

/** A static program that prints its effective uid: a setuid copy shows whose rights it runs with. */
function buildEuid(dir: string): string {
  const src = path.join(dir, 'euid.c');
  writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("%u\\n", (unsigned)geteuid()); return 0; }\n');
  const out = path.join(dir, 'euid');
  execFileSync('cc', ['-static', '-O2', '-o', out, src]);
  return out;
}

describeRoot('tenant isolation of the rootfs and volumes', () => {
  let dir: string;
  let rootfs: string;
  let euid: string;
  let stateDir: string;
  let runc: RuncClient;
  let pod: PodNetns;
  const ids: string[] = [];

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    euid = buildEuid(dir);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    copyFileSync(euid, path.join(rootfs, 'bin', 'euid'));
    chmodSync(path.join(rootfs, 'bin', 'euid'), 0o755);
    // Private dirs: what no user but root can reach (like an image store).
    mkdirSync(path.join(dir, 'private'), { mode: 0o700 });
    stateDir = path.join(dir, 'state');
    runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 30_000 });
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP, pinUserns: true });
  });

  afterAll(async () => {
    for (const id of ids) await removePodContainer(id, { stateDir, runtime: runc }).catch(() => {});
    const left = await runc.list().catch(() => []);
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  async function run(id: string, extra: Partial<Parameters<typeof runPodContainer>[0]> = {}): Promise<PodContainerRecord> {
    ids.push(id);
    return runPodContainer({ id, netns: pod.name, rootfs, command: ['sleep', '1000'], runtime: runc, stateDir, ...extra });
  }

  async function remove(id: string): Promise<void> {
    await removePodContainer(id, { stateDir, runtime: runc });
    ids.splice(ids.indexOf(id), 1);
  }

  it("the pod's root cannot plant a program that runs as host root, nor change the shared rootfs", async () => {
    // The probe works: a setuid-root copy other users can reach runs as root for them.
    const control = path.join(dir, 'control-euid');
    copyFileSync(euid, control);
    chmodSync(control, 0o4755);
    expect(asNobody([control]).stdout).toBe('0\n');
    expect(asNobody(['/bin/sh', '-c', 'id -u']).stdout).toBe('65534\n');

    const before = snapshotTree(rootfs);
    const rec = await run(`${prefix}-plant`);
    const w = await runc.exec(rec.id, [
      'sh',
      '-c',
      'cp /bin/euid /planted && chmod 4755 /planted && chmod 4755 /bin/euid && echo pwned >> /etc/passwd && rm /bin/ls && echo new > /bin/new',
    ]);
    expect(w).toMatchObject({ exitCode: 0, stderr: '' });
    // Inside, the pod sees its own writes, owned by its root; "/" is its root's too.
    expect((await runc.exec(rec.id, ['stat', '-c', '%u %a', '/planted', '/bin/euid', '/'])).stdout).toBe('0 4755\n0 4755\n0 755\n');

    // No other host user runs anything as root through any setuid file under
    // the rootfs or the bundle (it cannot even reach the bundle), nor through
    // the container's own root.
    const planted = [...setuidFiles(rootfs), ...setuidFiles(rec.bundle), `/proc/${rec.pid}/root/planted`];
    for (const f of planted) expect(asNobody([f]).stdout.trim(), f).not.toBe('0');
    expect(planted).toEqual(expect.arrayContaining([path.join(rec.bundle, 'rootfs', 'planted'), path.join(rec.bundle, 'overlay', 'upper', 'planted')]));
    expect(asNobody(['ls', rec.bundle]).status).not.toBe(0);
    expect(asNobody(['stat', path.join(rec.bundle, 'rootfs', 'planted')]).status).not.toBe(0);

    // The shared rootfs is exactly as it was: nothing new, nothing gone, nothing changed.
    expect(snapshotTree(rootfs)).toEqual(before);
    // The writes (and copy-ups) live in the container's upper dir under the pod's host ids.
    const upper = path.join(rec.bundle, 'overlay', 'upper');
    for (const f of ['planted', 'bin/euid', 'bin/new', 'etc/passwd']) {
      const st = lstatSync(path.join(upper, f));
      expect([st.uid, st.gid], f).toEqual([POD_ROOT, POD_ROOT]);
    }
    expect(lstatSync(path.join(upper, 'planted')).mode & 0o7777).toBe(0o4755);
    // The upper dir's root looks like the rootfs's root seen by the pod.
    expect([lstatSync(upper).uid, lstatSync(upper).gid, lstatSync(upper).mode & 0o7777]).toEqual([POD_ROOT, POD_ROOT, 0o755]);
    expect(lstatSync(path.join(rec.bundle, 'overlay')).mode & 0o7777).toBe(0o700);
    // The staging mounts: the lower is read-only, nosuid, nodev; the overlay is nodev.
    expect(mountOptions(path.join(rec.bundle, 'overlay', 'lower'))).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'idmapped']));
    expect(mountOptions(path.join(rec.bundle, 'rootfs'))).toEqual(expect.arrayContaining(['rw', 'nodev']));

    // Another container on the same rootfs sees none of it.
    const other = await run(`${prefix}-other`);
    const seen = await runc.exec(other.id, ['sh', '-c', 'ls /planted; ls /bin/ls && cat /etc/passwd && stat -c %a /bin/euid']);
    expect(seen.stdout).toBe(`/bin/ls\n${readFileSync(path.join(rootfs, 'etc', 'passwd'), 'utf8')}755\n`);

    await remove(other.id);
    await remove(rec.id);
    expect(existsSync(rec.bundle)).toBe(false);
    expect(snapshotTree(rootfs)).toEqual(before);
  });

  it('setuid programs of the image still work inside the pod (as its root, not the host root)', async () => {
    // An image whose rootfs holds a setuid-root program, kept where only root can reach it.
    const image = buildBusyboxRootfs(path.join(dir, 'private', 'image'));
    copyFileSync(euid, path.join(image, 'bin', 'su-euid'));
    chmodSync(path.join(image, 'bin', 'su-euid'), 0o4755);
    const rec = await run(`${prefix}-su`, { rootfs: image, spec: { noNewPrivileges: false } });
    const r = await runc.exec(rec.id, ['/bin/su-euid'], { user: '1000:1000' });
    expect(r).toMatchObject({ exitCode: 0, stdout: '0\n' });
    // Seen from the host, that 0 is the pod's root.
    expect(statSync(path.join(rec.bundle, 'rootfs', 'bin', 'su-euid')).uid).toBe(POD_ROOT);
    await remove(rec.id);
  });

  it('a writable idmapped volume other users can reach is refused; a private one or the opt-in works; staging is nosuid,nodev', async () => {
    const shared = path.join(dir, 'shared-vol');
    mkdirSync(shared, { mode: 0o755 });
    const id = `${prefix}-vol`;
    ids.push(id); // removed in afterAll even if it were not refused
    await expect(
      runPodContainer({ id, netns: pod.name, rootfs, command: ['true'], runtime: runc, stateDir, mounts: [{ source: shared, destination: '/vol', idmap: true }] }),
    ).rejects.toMatchObject({ code: 'ERR_NSTOOL_VOLUME_UNSAFE', path: shared });
    // Refused before any side effect.
    expect(existsSync(path.join(stateDir, id))).toBe(false);
    expect(existsSync(`/run/nstool/userns/${pod.name}`)).toBe(true);
    expect(readdirSync(shared)).toEqual([]);

    // A private source is accepted as is, and a read-only idmapped volume anywhere.
    const priv = path.join(dir, 'private', 'vol');
    mkdirSync(priv, { mode: 0o755 });
    ids.pop();
    const rec = await run(id, {
      mounts: [
        { source: priv, destination: '/vol', idmap: true },
        { source: shared, destination: '/ro', idmap: true, readonly: true },
      ],
    });
    const staging = rec.staged.filter((s) => path.basename(s).startsWith('mount-'));
    expect(staging.length).toBe(2);
    for (const s of staging) expect(mountOptions(s)).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'idmapped']));
    const w = await runc.exec(id, ['sh', '-c', 'cp /bin/euid /vol/planted && chmod 4755 /vol/planted && ! touch /ro/x']);
    expect(w.exitCode).toBe(0);
    // What an idmapped volume is for: the pod's root writes as host root, so
    // this setuid-root file exists, but no other user can reach it.
    const st = statSync(path.join(priv, 'planted'));
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o4755]);
    for (const f of [path.join(priv, 'planted'), path.join(staging[0]!, 'planted')]) expect(asNobody([f]).stdout.trim(), f).not.toBe('0');
    await remove(id);

    // The caller may opt in for a source others reach; its staging mount is still nosuid,nodev.
    const opted = await run(`${prefix}-optin`, { mounts: [{ source: shared, destination: '/vol', idmap: true }], allowUnsafeIdmapVolumes: true });
    const s = opted.staged.find((x) => path.basename(x).startsWith('mount-'))!;
    expect(mountOptions(s)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect((await runc.exec(opted.id, ['touch', '/vol/written'])).exitCode).toBe(0);
    expect(statSync(path.join(shared, 'written')).uid).toBe(0);
    await remove(opted.id);
  });
});
