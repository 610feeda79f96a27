// Runtime-neutral errors: the container lifecycle through RuncClient with the
// real runc and with a crun stand-in (test/fixtures/fake-crun: runc underneath,
// crun 1.8.1's words on top). A missing container and a taken id must mean
// the same (RuntimeError.reason) whichever runtime said it, and the probe must
// answer "is it there?" even for a runtime whose words nobody knows.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPodNetns, deletePodNetns, type PodNetns } from '../../src/netns.js';
import { removePodContainer, runPodContainer } from '../../src/pod/container.js';
import { RuncClient } from '../../src/runc/client.js';
import { isExists, isNotFound, RuntimeError } from '../../src/runc/error.js';
import { clearIdmapCache, idmapSupport } from '../../src/runc/idmap-gate.js';
import { probeContainer } from '../../src/runc/probe.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, miniSpec, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('crun');
trackLeaks(prefix);
const FAKE_CRUN = fileURLToPath(new URL('../fixtures/fake-crun', import.meta.url));
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

async function failure(p: Promise<unknown>): Promise<RuntimeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RuntimeError);
  return err as RuntimeError;
}

describeRoot('runc and crun answer alike', () => {
  let dir: string;
  let rootfs: string;
  const clients: Record<'runc' | 'crun', RuncClient> = {} as Record<'runc' | 'crun', RuncClient>;
  const made: Array<[RuncClient, string]> = [];
  let n = 0;

  function bundle(args: string[]): string {
    const b = path.join(dir, `b${n++}`);
    mkdirSync(b, { mode: 0o755 });
    writeFileSync(path.join(b, 'config.json'), JSON.stringify(miniSpec({ rootfs, args })));
    return b;
  }

  beforeAll(() => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    clients.runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 30_000 });
    clients.crun = new RuncClient({ binary: FAKE_CRUN, root: path.join(dir, 'crun-root'), logDir: dir, timeoutMs: 30_000 });
  });

  afterAll(async () => {
    for (const [c, id] of made) await c.delete(id, { force: true }).catch(() => {});
    const left = [...(await clients.runc.list().catch(() => [])), ...(await clients.crun.list().catch(() => []))];
    clearIdmapCache();
    removeTree(dir);
    expect(left.map((c) => c.id)).toEqual([]);
  });

  for (const name of ['runc', 'crun'] as const) {
    it(`${name}: create, start, state, kill, delete; the probe follows`, async () => {
      const c = clients[name];
      const id = `${prefix}-${name}-life`;
      const b = bundle(['sleep', '1000']);
      made.push([c, id]);
      await c.create(id, b, { pidFile: path.join(b, 'pid') });
      expect(Number(readFileSync(path.join(b, 'pid'), 'utf8'))).toBeGreaterThan(1);
      expect((await c.state(id)).status).toBe('created');
      expect(await probeContainer(c, id)).toBe('present');
      await c.start(id);
      expect((await c.state(id)).status).toBe('running');
      await c.kill(id, 'KILL');
      for (let i = 0; i < 200 && (await c.state(id)).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await c.state(id)).status).toBe('stopped');
      await c.delete(id);
      expect(await probeContainer(c, id)).toBe('absent');
      expect(await c.list()).toEqual([]);
    });

    it(`${name}: a missing id is reason "not-found" for state, start, kill, exec and delete`, async () => {
      const c = clients[name];
      const id = `${prefix}-${name}-missing`;
      for (const call of [() => c.state(id), () => c.start(id), () => c.kill(id, 'KILL'), () => c.exec(id, ['true']), () => c.delete(id)]) {
        const err = await failure(call());
        expect(err).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'not-found' });
        expect(isNotFound(err)).toBe(true);
        expect(isExists(err)).toBe(false);
      }
      expect(await probeContainer(c, id)).toBe('absent');
    });

    it(`${name}: a taken id is reason "exists", and the first container is untouched`, async () => {
      const c = clients[name];
      const id = `${prefix}-${name}-dup`;
      const b = bundle(['sleep', '1000']);
      made.push([c, id]);
      await c.create(id, b);
      const err = await failure(c.create(id, bundle(['sleep', '1000'])));
      expect(err).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'exists' });
      expect(isExists(err)).toBe(true);
      expect(isNotFound(err)).toBe(false);
      expect((await c.state(id)).status).toBe('created');
      await c.delete(id, { force: true });
    });
  }

  it('the crun stand-in words things as crun 1.8.1 does', async () => {
    const c = clients.crun;
    expect(await c.version()).toMatchObject({ name: 'crun', version: '1.8.1' });
    const missing = await failure(c.state(`${prefix}-x`));
    expect(missing.runtimeMessage).toBe(`error opening file \`${path.join(dir, 'crun-root', `${prefix}-x`, 'status')}\`: No such file or directory`);
    // No `features` in 1.8.1: the idmap gate says "unsupported" instead of failing.
    expect(await failure(c.features())).toMatchObject({ reason: 'other' });
    clearIdmapCache();
    expect(await idmapSupport(c)).toMatchObject({ supported: false, version: 'crun 1.8.1' });
  });

  it('a runtime with unknown words: "other", never not-found; the probe looks at its state dir', async () => {
    const opaque = path.join(dir, 'opaque-crun');
    writeFileSync(opaque, `#!/bin/sh\nFAKE_CRUN_OPAQUE=1 exec '${FAKE_CRUN}' "$@"\n`, { mode: 0o755 });
    const c = new RuncClient({ binary: opaque, root: path.join(dir, 'opaque-root'), logDir: dir, timeoutMs: 30_000 });
    const id = `${prefix}-opaque`;
    const gone = await failure(c.state(id));
    expect(gone.reason).toBe('other');
    expect(isNotFound(gone)).toBe(false);
    expect(await probeContainer(c, id)).toBe('absent');

    made.push([c, id]);
    await c.create(id, bundle(['sleep', '1000']));
    expect(await probeContainer(c, id)).toBe('present');
    const taken = await failure(c.create(id, bundle(['sleep', '1000'])));
    expect(taken.reason).toBe('other');
    expect(isExists(taken)).toBe(false);
    await c.delete(id, { force: true });
    expect(await probeContainer(c, id)).toBe('absent');
  });

  it('the probe says "unknown" when it cannot tell, never "absent"', async () => {
    // The runtime is not there.
    const none = new RuncClient({ binary: path.join(dir, 'no-such-runtime'), logDir: dir });
    expect(await probeContainer(none, `${prefix}-a`)).toBe('unknown');
    // Unknown words, no --root and a name whose default root nobody knows.
    const odd = path.join(dir, 'odd-runtime');
    writeFileSync(odd, `#!/bin/sh\ncase "$1" in --version) echo "oddrt version 2.0";; *) echo "no idea" >&2; exit 1;; esac\n`, { mode: 0o755 });
    expect(await probeContainer(new RuncClient({ binary: odd, logDir: dir }), `${prefix}-a`)).toBe('unknown');
    // Unknown words, --root given but not a directory.
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, '');
    expect(await probeContainer(new RuncClient({ binary: odd, root: file, logDir: dir }), `${prefix}-a`)).toBe('unknown');
  });

  // The pod helpers ask `reason`, so they work the same with crun's words.
  it('rm-pod of an id crun does not know is "did not exist"', async () => {
    const id = `${prefix}-rmpod`;
    const r = await removePodContainer(id, { bundleDir: path.join(dir, 'no-bundle'), runtime: clients.crun });
    expect(r).toEqual({ id, existed: false });
  });

  it("run-pod with an id a running container has leaves that container alone", async () => {
    const c = clients.runc;
    const id = `${prefix}-taken`;
    made.push([c, id]);
    await c.create(id, bundle(['sleep', '1000']));
    await c.start(id);
    let pod: PodNetns | undefined;
    try {
      pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: MAP });
      const err = await failure(
        runPodContainer({ id, netns: pod.name, rootfs, idmapRootfs: false, command: ['true'], runtime: c, stateDir: path.join(dir, 'state') }),
      );
      expect(err.reason).toBe('exists');
      expect((await c.state(id)).status).toBe('running');
    } finally {
      if (pod) await deletePodNetns(pod.name);
    }
  });
});
