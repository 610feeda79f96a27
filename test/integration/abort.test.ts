// The AbortSignal contract: an aborted signal rejects with ABORT_ERR
// (name AbortError) before any side effect; an abort while a call waits (on
// a CNI plugin, a runtime, a lock, the netns limiter) rejects at once,
// kills the child and undoes what the call made.
import { execFileSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addNetwork, checkNetwork, delNetwork, toNetworkList } from '../../src/cni/index.js';
import { clearVersionCache } from '../../src/cni/plugin.js';
import { execInNetns } from '../../src/exec.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { createSandbox, deleteSandbox, gc, loadSandbox } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions } from '../../src/sandbox/index.js';
import { SandboxLock } from '../../src/sandbox/state.js';
import { SANDBOX_STEP } from '../../src/trace.js';
import type { StepEvent } from '../../src/trace.js';
import { describeRoot } from '../helpers/env.js';
import { childPids, mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { sandboxDirs } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('abort');
trackLeaks(P);
const MAP = '0:100000:65536';
const ABORTED = { code: 'ABORT_ERR', name: 'AbortError' };

type Dirs = Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir' | 'ipcPinDir' | 'utsPinDir'>>;

const aborted = () => AbortSignal.abort(new Error('stop'));

async function waitFor(file: string): Promise<string> {
  for (let i = 0; i < 1000; i++) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8').trim();
      if (text) return text;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${file} never appeared`);
}

describeRoot('AbortSignal on every API that waits', () => {
  let tmp: string;
  let dirs: Dirs;
  let plugins: string;
  let pod: PodNetns;
  const calls = () => (existsSync(path.join(plugins, 'calls.log')) ? readFileSync(path.join(plugins, 'calls.log'), 'utf8').trim().split('\n') : []);
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  const list = (name: string) => toNetworkList({ cniVersion: '1.0.0', name, plugins: [{ type: 'sleepy' }] });
  const cniOpts = () => ({ pluginPath: plugins, cacheDir: dirs.cniCacheDir });
  const nothingLeft = (id: string) => {
    for (const d of [...Object.values(dirs), path.join(dirs.cniCacheDir, 'results')]) expect(ls(d).filter((n) => n.includes(id)), d).toEqual([]);
    expect(mountPoints().filter((m) => m.includes(id))).toEqual([]);
  };

  beforeAll(async () => {
    tmp = traversableTempDir(P);
    dirs = sandboxDirs(tmp);
    // A CNI plugin that answers VERSION and DEL, and sleeps on ADD and CHECK.
    plugins = path.join(tmp, 'plugins');
    mkdirSync(plugins);
    writeFileSync(
      path.join(plugins, 'sleepy'),
      `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
ADD|CHECK) echo $$ > "${plugins}/busy.pid"; exec sleep 60 ;;
DEL) echo "DEL $CNI_CONTAINERID" >> "${plugins}/calls.log" ;;
esac
`,
      { mode: 0o755 },
    );
    clearVersionCache();
    pod = await createPodNetns({ name: `${P}-pod`, uidMap: MAP, pinDir: dirs.pinDir });
  });
  afterAll(async () => {
    await gc({ ...dirs, pluginPath: plugins });
    await deletePodNetns(pod.path).catch(() => {});
    for (const d of [dirs.pinDir, dirs.usernsPinDir, dirs.ipcPinDir, dirs.utsPinDir]) while (mountPoints().includes(d)) execFileSync('umount', [d]);
    removeTree(tmp);
  });

  it('createPodNetns: an aborted signal rejects before the pin dir is even made', async () => {
    const pinDir = path.join(tmp, 'never');
    await expect(createPodNetns({ name: `${P}-x`, uidMap: MAP, pinDir, signal: aborted() })).rejects.toMatchObject(ABORTED);
    expect(existsSync(pinDir)).toBe(false);
  });

  it('createPodNetns: an abort while waiting for the concurrency limiter leaves the queue and makes nothing', async () => {
    // At most 4 creates run at once: the fifth waits for a slot.
    const names = [0, 1, 2, 3].map((i) => `${P}-lim${i}`);
    const running = names.map((name) => createPodNetns({ name, uidMap: MAP, pinDir: dirs.pinDir }));
    const ac = new AbortController();
    const waiting = createPodNetns({ name: `${P}-limx`, uidMap: MAP, pinDir: dirs.pinDir, signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject(ABORTED);
    const made = await Promise.all(running);
    for (const m of made) await deletePodNetns(m.path);
    expect(ls(dirs.pinDir).filter((n) => n.includes('-lim'))).toEqual([]);
  });

  it('deletePodNetns: an aborted signal leaves the pin in place', async () => {
    const m = await createPodNetns({ name: `${P}-del`, uidMap: MAP, pinDir: dirs.pinDir });
    await expect(deletePodNetns(m.path, { signal: aborted() })).rejects.toMatchObject(ABORTED);
    expect(ls(dirs.pinDir)).toContain(`${P}-del`);
    expect((await deletePodNetns(m.path)).existed).toBe(true);
  });

  it('addNetwork, delNetwork, checkNetwork: an aborted signal runs no plugin', async () => {
    const rt = { containerId: `${P}-c0`, netns: pod.path };
    await expect(addNetwork(list(`${P}-n0`), rt, { ...cniOpts(), signal: aborted() })).rejects.toMatchObject(ABORTED);
    await expect(delNetwork(list(`${P}-n0`), rt, { ...cniOpts(), signal: aborted() })).rejects.toMatchObject(ABORTED);
    await expect(checkNetwork(list(`${P}-n0`), rt, { ...cniOpts(), signal: aborted() })).rejects.toMatchObject(ABORTED);
    expect(calls()).toEqual([]);
    expect(existsSync(path.join(plugins, 'busy.pid'))).toBe(false);
  });

  it('addNetwork: an abort during a plugin kills it, runs DEL and caches nothing', async () => {
    const rt = { containerId: `${P}-c1`, netns: pod.path };
    const ac = new AbortController();
    const add = addNetwork(list(`${P}-n1`), rt, { ...cniOpts(), signal: ac.signal });
    const pid = await waitFor(path.join(plugins, 'busy.pid'));
    ac.abort();
    await expect(add).rejects.toMatchObject(ABORTED);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(calls()).toEqual([`DEL ${P}-c1`]);
    expect(ls(path.join(dirs.cniCacheDir, 'results'))).toEqual([]);
    execFileSync('rm', ['-f', path.join(plugins, 'busy.pid'), path.join(plugins, 'calls.log')]);
  });

  it('createSandbox: an abort during CNI ADD kills the plugin and rolls everything back', async () => {
    const id = `${P}-sb1`;
    const ac = new AbortController();
    const create = createSandbox({ id, uidMap: MAP, network: { list: list(`${P}-n2`), pluginPath: plugins }, ...dirs, signal: ac.signal });
    const pid = await waitFor(path.join(plugins, 'busy.pid'));
    ac.abort();
    await expect(create).rejects.toMatchObject(ABORTED);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    // The rollback's DEL ran (without the aborted signal) and the state is gone.
    expect(calls()).toHaveLength(1);
    expect(calls()[0]).toContain(id);
    nothingLeft(id);
    execFileSync('rm', ['-f', path.join(plugins, 'busy.pid'), path.join(plugins, 'calls.log')]);
  });

  it('createSandbox: an abort while waiting for the sandbox lock makes nothing', async () => {
    const id = `${P}-sb2`;
    mkdirSync(dirs.stateDir, { recursive: true, mode: 0o700 });
    const lock = await SandboxLock.acquire(dirs.stateDir, id);
    try {
      const ac = new AbortController();
      const create = createSandbox({ id, uidMap: MAP, ...dirs, signal: ac.signal });
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      await expect(create).rejects.toMatchObject(ABORTED);
    } finally {
      await lock.release(dirs.stateDir, id, true);
    }
    nothingLeft(id);
  });

  it('deleteSandbox: an aborted signal changes nothing; an abort between removals leaves a state the next delete finishes', async () => {
    const id = `${P}-sb3`;
    await createSandbox({ id, uidMap: MAP, ...dirs });
    await expect(deleteSandbox(id, { ...dirs, signal: aborted() })).rejects.toMatchObject(ABORTED);
    expect(await loadSandbox(id, dirs)).toMatchObject({ phase: 'ready', netnsPresent: true });

    const ac = new AbortController();
    const onStep = (p: string) => {
      if (p === 'after-remove-uts') ac.abort();
    };
    await expect(deleteSandbox(id, { ...dirs, onStep, signal: ac.signal })).rejects.toMatchObject(ABORTED);
    const left = await loadSandbox(id, dirs);
    expect(left).toMatchObject({ phase: 'deleting', netnsPresent: true });
    expect(left?.utsPath).toBeUndefined();
    expect(await deleteSandbox(id, dirs)).toEqual({ id, existed: true });
    nothingLeft(id);
  });

  it('gc: an aborted signal does nothing; an abort between actions stops it and the next gc finishes', async () => {
    const id = `${P}-sb4`;
    const sb = await createSandbox({ id, uidMap: MAP, ...dirs });
    await deletePodNetns(sb.netnsPath!, { pinDir: dirs.pinDir, usernsPinDir: dirs.usernsPinDir });
    await expect(gc({ ...dirs, signal: aborted() })).rejects.toMatchObject(ABORTED);
    expect(await loadSandbox(id, dirs)).toMatchObject({ phase: 'ready' });

    const ac = new AbortController();
    const onEvent = (m: unknown) => {
      const e = m as StepEvent;
      if (e.id === id && e.op === 'delete' && e.at === 'after') ac.abort();
    };
    dc.subscribe(SANDBOX_STEP, onEvent);
    try {
      await expect(gc({ ...dirs, signal: ac.signal })).rejects.toMatchObject(ABORTED);
    } finally {
      dc.unsubscribe(SANDBOX_STEP, onEvent);
    }
    expect(await loadSandbox(id, dirs)).toMatchObject({ phase: 'deleting' });
    const again = await gc(dirs);
    expect(again.find((a) => a.id === id)).toMatchObject({ kind: 'sandbox', done: true });
    nothingLeft(id);
  });

  it('execInNetns: an aborted signal starts nothing; an abort kills the program', async () => {
    const before = childPids();
    await expect(execInNetns(pod.path, ['sleep', '60'], { signal: aborted() })).rejects.toMatchObject(ABORTED);
    const ac = new AbortController();
    const run = execInNetns(pod.path, ['sleep', '60'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(run).rejects.toMatchObject(ABORTED);
    expect(childPids()).toEqual(before);
  });

  describe_pod();

  function describe_pod(): void {
    let rootfs: string;
    let wrapper: string;
    let runcRoot: string;
    const ctrDir = () => path.join(tmp, 'containers');
    const setup = () => {
      rootfs ??= buildBusyboxRootfs(path.join(tmp, 'rootfs'));
      runcRoot = path.join(tmp, 'runc');
      mkdirSync(runcRoot, { recursive: true, mode: 0o700 });
      // A runtime that sleeps in create and is runc for everything else.
      wrapper = path.join(tmp, 'slow-runc');
      writeFileSync(wrapper, `#!/bin/sh\nfor a in "$@"; do [ "$a" = create ] && { echo $$ > "${tmp}/create.pid"; exec sleep 60; }; done\nexec runc "$@"\n`, { mode: 0o755 });
      chmodSync(wrapper, 0o755);
    };
    const ctr = (id: string, signal: AbortSignal) => ({
      id,
      netns: pod.path,
      pinDir: dirs.pinDir,
      usernsPinDir: dirs.usernsPinDir,
      rootfs,
      command: ['sleep', '1000'],
      runtime: { binary: wrapper, root: runcRoot },
      stateDir: ctrDir(),
      signal,
    });

    it('runPodContainer: an aborted signal makes nothing (no userns pin, no bundle)', async () => {
      setup();
      await expect(runPodContainer(ctr(`${P}-ctr0`, aborted()))).rejects.toMatchObject(ABORTED);
      expect(ls(dirs.usernsPinDir)).toEqual([]);
      expect(ls(ctrDir())).toEqual([]);
      await expect(removePodContainer(`${P}-ctr0`, { stateDir: ctrDir(), runtime: { root: runcRoot }, signal: aborted() })).rejects.toMatchObject(ABORTED);
    });

    it('runPodContainer: an abort during the runtime create kills it and undoes the bundle, mounts and userns pin', async () => {
      setup();
      const id = `${P}-ctr1`;
      const ac = new AbortController();
      const run = runPodContainer(ctr(id, ac.signal));
      const pid = await waitFor(path.join(tmp, 'create.pid'));
      ac.abort();
      await expect(run).rejects.toMatchObject(ABORTED);
      expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(ls(ctrDir()).filter((n) => n.includes(id))).toEqual([]);
      expect(ls(dirs.usernsPinDir)).toEqual([]);
      expect(mountPoints().filter((m) => m.includes(id))).toEqual([]);
      expect((await new RuncClient({ root: runcRoot }).list()).map((c) => c.id)).toEqual([]);
    });
  }
});
