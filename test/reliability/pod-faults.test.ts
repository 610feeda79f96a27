// run-pod converges: the CLI killed (SIGKILL) at any step of
// runPodContainer leaves a state from which one `nstool rm-pod ID` removes
// everything it made (mounts under the bundle, the bundle and its litter,
// the runtime's container, the userns pin it made); interrupted (SIGTERM,
// SIGINT) it removes what it made by itself. An AbortSignal does the same
// for the library call.
import { existsSync, lstatSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { removePodContainer, runPodContainer, RUN_POD_STEPS } from '../../src/pod/container.js';
import { podUserns } from '../../src/pod/userns.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { cli } from '../helpers/paused-cli.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('podfault');
trackLeaks(P);
const USERNS_PIN_DIR = '/run/nstool/userns';

const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);

describeRoot('run-pod: killed or interrupted at every step, rm-pod leaves nothing', () => {
  let tmp: string;
  let rootfs: string;
  let vol: string;
  let runcRoot: string;
  const pods: PodNetns[] = [];
  const made: Array<{ id: string; stateDir: string }> = [];

  /** A pod netns of its own per case, its userns not pinned: run-pod pins it, and must remove that pin. */
  const newPod = async (tag: string): Promise<PodNetns> => {
    const pod = await createPodNetns({ name: `${P}-${tag}`, uidMap: '0:100000:65536' });
    pods.push(pod);
    return pod;
  };
  const newCase = async (tag: string) => {
    const pod = await newPod(tag);
    const id = `${P}-${tag}`;
    const stateDir = path.join(tmp, `state-${tag}`);
    made.push({ id, stateDir });
    return { pod, id, stateDir };
  };
  const runPodArgs = (pod: PodNetns, id: string, stateDir: string) => [
    'run-pod', pod.path, '--id', id, '--rootfs', rootfs,
    // A volume runc 1.1.5 cannot idmap: nstool stages it (read-only needs no opt-in).
    '--mount', `${vol}:/vol:ro,idmap`,
    '--state-dir', stateDir, '--runtime-root', runcRoot, '--json', '--', 'sleep', '1000',
  ];
  const rmPod = (id: string, stateDir: string) => cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot, '--json']);
  const containers = async () => (await new RuncClient({ root: runcRoot }).list()).map((c) => c.id);

  /** Everything of container ID (in STATE_DIR, of POD) that is still there; empty when nothing is. */
  const leftOf = async (pod: PodNetns, id: string, stateDir: string): Promise<string[]> => [
    ...ls(stateDir).map((n) => `bundle dir entry ${n}`),
    ...mountPoints().filter((m) => m.startsWith(`${stateDir}/`)).map((m) => `mount ${m}`),
    ...(await containers()).filter((c) => c === id).map((c) => `container ${c}`),
    ...(existsSync(path.join(USERNS_PIN_DIR, pod.name)) ? [`userns pin ${pod.name}`] : []),
  ];
  /** A bundle being built (".<id>.tmp-<hex>") younger than 60 s is kept by design: make it old. */
  const ageLitter = (stateDir: string) => {
    const old = Date.now() / 1000 - 3600;
    for (const n of ls(stateDir)) if (/^\..*\.tmp-[0-9a-f]{12}$/.test(n)) utimesSync(path.join(stateDir, n), old, old);
  };
  /** rm-pod through the CLI succeeds and nothing of ID is left. */
  const converge = async (pod: PodNetns, id: string, stateDir: string, why: string): Promise<{ id: string; existed: boolean }> => {
    ageLitter(stateDir);
    const r = await rmPod(id, stateDir);
    expect(r.code, `${why}: rm-pod: ${r.out}${r.err}`).toBe(0);
    expect(await leftOf(pod, id, stateDir), why).toEqual([]);
    return (JSON.parse(r.out) as Array<{ id: string; existed: boolean }>)[0]!;
  };

  beforeAll(() => {
    tmp = traversableTempDir(P);
    rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs'));
    vol = path.join(tmp, 'vol');
    mkdirSync(vol, { mode: 0o755 });
    writeFileSync(path.join(vol, 'file'), 'data\n');
    runcRoot = path.join(tmp, 'runc');
    mkdirSync(runcRoot, { mode: 0o700 });
  });

  afterAll(async () => {
    const runtime = new RuncClient({ root: runcRoot });
    for (const m of made) await removePodContainer(m.id, { stateDir: m.stateDir, runtime }).catch(() => {});
    // Also the userns pin of the same name, should a case have left one.
    for (const p of pods) await deletePodNetns(p.path).catch(() => {});
    const left = await containers().catch(() => []);
    removeTree(tmp);
    expect(left.filter((c) => c.startsWith(P))).toEqual([]);
  });

  it('a run-pod that is not interrupted passes every step point once, in order', async () => {
    const seen: string[] = [];
    const { pod, id, stateDir } = await newCase('order');
    const rec = await runPodContainer({
      id,
      netns: pod.path,
      rootfs,
      command: ['sleep', '1000'],
      mounts: [{ source: vol, destination: '/vol', readonly: true, idmap: true }],
      runtime: { root: runcRoot },
      stateDir,
      onStep: (p) => void seen.push(p),
    });
    expect(seen).toEqual([...RUN_POD_STEPS]);
    expect(rec.usernsPinned).toBe(true);
    expect(lstatSync(rec.usernsPath).isFile()).toBe(true);
    expect((await converge(pod, id, stateDir, 'order')).existed).toBe(true);
  });

  describe('SIGKILL at each step, then rm-pod', () => {
    it.each(RUN_POD_STEPS.map((p, i) => [p, i] as const))('killed at %s', async (point, i) => {
      const { pod, id, stateDir } = await newCase(`k${i}`);
      const r = await cli(runPodArgs(pod, id, stateDir), { NSTOOL_TEST_STEP: `${point}:kill` });
      expect(r.signal, r.err).toBe('SIGKILL');
      const left = await leftOf(pod, id, stateDir);
      // Before the first side effect nothing exists; after it, something must (or the point proves nothing).
      if (point === 'planned') expect(left).toEqual([]);
      else expect(left).not.toEqual([]);
      const rm = await converge(pod, id, stateDir, point);
      // Until the bundle is in place there is no record, so nothing counts as having existed.
      expect(rm.existed, point).toBe(RUN_POD_STEPS.indexOf(point) >= RUN_POD_STEPS.indexOf('after-bundle'));
    });
  });

  describe('SIGTERM at each step: run-pod removes what it made by itself', () => {
    it.each(RUN_POD_STEPS.map((p, i) => [p, i] as const))('interrupted at %s', async (point, i) => {
      const { pod, id, stateDir } = await newCase(`t${i}`);
      const r = await cli(runPodArgs(pod, id, stateDir), { NSTOOL_TEST_STEP: `${point}:pause` }, (c) => c.kill('SIGTERM'));
      expect(r.code, r.err).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ABORT_ERR' } });
      expect(await leftOf(pod, id, stateDir), point).toEqual([]);
      expect((await converge(pod, id, stateDir, point)).existed).toBe(false);
    });
  });

  it('interrupted twice (SIGINT) it exits at once; rm-pod finishes', async () => {
    const { pod, id, stateDir } = await newCase('twice');
    const r = await cli(runPodArgs(pod, id, stateDir), { NSTOOL_TEST_STEP: 'after-create:pause' }, (c) => {
      c.kill('SIGINT');
      // Signals do not queue: the second comes a little later, during the removal or after it.
      setTimeout(() => c.kill('SIGINT'), 30);
    });
    expect(r.code === 130 || r.code === 1, r.err).toBe(true);
    await converge(pod, id, stateDir, 'twice');
  });

  it('an AbortSignal: aborted first, nothing is made; aborted between steps, all is undone', async () => {
    const { pod, id, stateDir } = await newCase('abort');
    const opts = { id, netns: pod.path, rootfs, command: ['sleep', '1000'], runtime: { root: runcRoot }, stateDir };
    const before = new AbortController();
    before.abort();
    await expect(runPodContainer({ ...opts, signal: before.signal })).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
    expect(existsSync(stateDir)).toBe(false);
    expect(await leftOf(pod, id, stateDir)).toEqual([]);
    for (const point of ['after-userns', 'after-overlay', 'after-create']) {
      const ac = new AbortController();
      const onStep = (p: string) => {
        if (p === point) ac.abort();
      };
      await expect(runPodContainer({ ...opts, signal: ac.signal, onStep })).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
      expect(await leftOf(pod, id, stateDir), point).toEqual([]);
    }
  });

  it('a userns pin another container of the pod made meanwhile is never removed', async () => {
    const { pod, id, stateDir } = await newCase('race');
    const pin = path.join(USERNS_PIN_DIR, pod.name);
    // Between this run-pod's plan (no pin yet) and its pin, another container pins the pod's userns.
    const onStep = async (p: string) => {
      if (p === 'after-bundle') await podUserns(pod.path);
    };
    await expect(runPodContainer({ id, netns: pod.path, rootfs, command: ['true'], runtime: { root: runcRoot }, stateDir, onStep })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(lstatSync(pin).ino).toBe(pod.usernsInode);
    expect(ls(stateDir)).toEqual([]);
    await deletePodNetns(pod.path);
    expect(existsSync(pin)).toBe(false);
  });

  it('refuses an onStep that is not a function and a signal that is not an AbortSignal, before any side effect', async () => {
    const { pod, id, stateDir } = await newCase('badopt');
    const opts = { id, netns: pod.path, rootfs, command: ['true'], runtime: { root: runcRoot }, stateDir };
    await expect(runPodContainer({ ...opts, onStep: 'x' as unknown as () => void })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(runPodContainer({ ...opts, signal: {} as AbortSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(await leftOf(pod, id, stateDir)).toEqual([]);
  });
});
