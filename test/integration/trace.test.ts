// Tracing: the diagnostics_channel events of a sandbox's create, rollback,
// delete and gc, of CNI plugins and runtime calls, and NODE_DEBUG=nstool.
import { execFileSync, spawnSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { RuncClient } from '../../src/runc/client.js';
import { createSandbox, deleteSandbox, gc } from '../../src/sandbox/index.js';
import type { CreateSandboxOptions } from '../../src/sandbox/index.js';
import { CNI_PLUGIN, NETNS_CREATE, NETNS_DELETE, RUNTIME_CALL, SANDBOX_CREATE, SANDBOX_STEP } from '../../src/trace.js';
import type { StepEvent } from '../../src/trace.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns, sandboxDirs } from '../helpers/node-netns.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('trace');
trackLeaks(P);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'bin/nstool.js');

type Dirs = Required<Pick<CreateSandboxOptions, 'stateDir' | 'bundleDir' | 'cniCacheDir' | 'pinDir' | 'usernsPinDir' | 'ipcPinDir' | 'utsPinDir'>>;

describeRoot('tracing: diagnostics_channel and NODE_DEBUG=nstool', () => {
  let tmp: string;
  let dirs: Dirs;
  let node: NodeNetns;
  let list: Record<string, unknown>;
  let dataDir: string;
  const unsubscribe: Array<() => void> = [];

  /** Collects what CHANNEL publishes until the test ends. */
  function collect<T>(name: string): T[] {
    const got: T[] = [];
    const fn = (m: unknown) => got.push(m as T);
    dc.subscribe(name, fn);
    unsubscribe.push(() => dc.unsubscribe(name, fn));
    return got;
  }
  /** The events of one tracing channel, as [event, context] pairs. */
  function collectTracing(name: string): Array<[string, Record<string, unknown>]> {
    const got: Array<[string, Record<string, unknown>]> = [];
    const handlers = Object.fromEntries(
      (['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const).map((ev) => [ev, (m: unknown) => got.push([ev, m as Record<string, unknown>])]),
    );
    const ch = dc.tracingChannel(name);
    ch.subscribe(handlers);
    unsubscribe.push(() => ch.unsubscribe(handlers));
    return got;
  }
  const show = (events: StepEvent[], id: string) => events.filter((e) => e.id === id).map((e) => `${e.op} ${e.at} ${e.step}`);

  beforeAll(() => {
    tmp = traversableTempDir(P);
    node = makeNodeNetns(P);
    dirs = sandboxDirs(tmp);
    dataDir = path.join(tmp, 'ipam');
    ({ list } = bridgeNetwork(`${P}-net`, dataDir));
  });
  afterEach(() => {
    for (const u of unsubscribe.splice(0)) u();
  });
  afterAll(async () => {
    await gc({ ...dirs, nodeNetns: node.path });
    node.remove();
    const pinDirs = [dirs.pinDir, dirs.usernsPinDir, dirs.ipcPinDir, dirs.utsPinDir];
    for (const d of pinDirs) while (mountPoints().includes(d)) execFileSync('umount', [d]);
    removeTree(tmp);
  });

  const nothingLeft = (id: string) => {
    for (const d of Object.values(dirs)) {
      const names = existsSync(d) ? readdirSync(d) : [];
      expect(names.filter((n) => n.includes(id)), d).toEqual([]);
    }
    expect(mountPoints().filter((m) => m.includes(id))).toEqual([]);
  };

  it('publishes each step of a create and a delete, in order, and times both', async () => {
    const id = `${P}-ok`;
    const steps = collect<StepEvent>(SANDBOX_STEP);
    const creates = collectTracing(SANDBOX_CREATE);
    const netns = collectTracing(NETNS_CREATE);
    const plugins = collectTracing(CNI_PLUGIN);
    await createSandbox({ id, uidMap: '0:100000:65536', network: { list, nodeNetns: node.path }, ...dirs });
    expect(show(steps, id)).toEqual([
      'create after state',
      'create before netns',
      'create after netns',
      'create before userns',
      'create after userns',
      'create before ipc',
      'create after ipc',
      'create before uts',
      'create after uts',
      'create before network',
      'create after network',
    ]);
    // One traced call with the context Node fills in: the result at its end.
    expect(creates.map(([ev]) => ev)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(creates[0]![1]).toMatchObject({ id, result: { id, phase: 'ready' } });
    expect(netns.filter(([ev]) => ev === 'start').map(([, c]) => c['path'])).toEqual([path.join(dirs.pinDir, readdirSync(dirs.pinDir).find((n) => n.includes(id))!)]);
    // ADD of each plugin in order (VERSION may be cached from other tests).
    const adds = plugins.filter(([ev, c]) => ev === 'start' && c['command'] === 'ADD').map(([, c]) => c['plugin']);
    expect(adds).toEqual(['bridge', 'loopback']);
    expect(plugins.some(([ev]) => ev === 'error')).toBe(false);

    steps.length = 0;
    plugins.length = 0;
    await deleteSandbox(id, dirs);
    expect(show(steps, id)).toEqual([
      'delete before network',
      'delete after network',
      'delete before uts',
      'delete after uts',
      'delete before ipc',
      'delete after ipc',
      'delete before userns',
      'delete after userns',
      'delete before netns',
      'delete after netns',
      'delete after state',
    ]);
    const dels = plugins.filter(([ev, c]) => ev === 'start' && c['command'] === 'DEL').map(([, c]) => c['plugin']);
    expect(dels).toEqual(['loopback', 'bridge']);
    nothingLeft(id);
  });

  it('publishes the failed step and each undo of a rollback, newest first', async () => {
    const id = `${P}-rb`;
    const steps = collect<StepEvent>(SANDBOX_STEP);
    const creates = collectTracing(SANDBOX_CREATE);
    const boom = new Error('boom');
    const onStep = (p: string) => {
      if (p === 'after-ipc') throw boom;
    };
    await expect(createSandbox({ id, uidMap: '0:100000:65536', ...dirs, onStep })).rejects.toBe(boom);
    expect(show(steps, id)).toEqual([
      'create after state',
      'create before netns',
      'create after netns',
      'create before userns',
      'create after userns',
      'create before ipc',
      'create after ipc',
      'create failed ipc',
      // The ipc step makes the uts pin too (one child for both): its undo runs though its step never did.
      'rollback before uts',
      'rollback after uts',
      'rollback before ipc',
      'rollback after ipc',
      'rollback before userns',
      'rollback after userns',
      'rollback before netns',
      'rollback after netns',
      'rollback before state',
      'rollback after state',
    ]);
    expect(steps.find((e) => e.at === 'failed')!.error).toBe(boom);
    expect(creates.map(([ev]) => ev)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(creates[0]![1]['error']).toBe(boom);
    nothingLeft(id);
  });

  it('publishes what gc removes', async () => {
    const id = `${P}-gc`;
    const sb = await createSandbox({ id, uidMap: '0:100000:65536', ...dirs });
    // The netns pin lost: gc deletes the broken sandbox.
    await native.unpin(sb.netnsPath!);
    const steps = collect<StepEvent>(SANDBOX_STEP);
    const actions = await gc(dirs);
    expect(actions.find((a) => a.id === id)).toMatchObject({ kind: 'sandbox', done: true });
    const mine = show(steps, id);
    expect(mine[0]).toBe('gc before sandbox');
    expect(mine.at(-1)).toBe('gc after sandbox');
    expect(mine).toContain('delete after userns');
    expect(steps.find((e) => e.op === 'gc' && e.id === id)).toMatchObject({ target: id, reason: 'netns pin missing' });
    nothingLeft(id);
  });

  it('traces runtime calls and netns deletes', async () => {
    const calls = collectTracing(RUNTIME_CALL);
    const deletes = collectTracing(NETNS_DELETE);
    const rootDir = path.join(tmp, 'runc');
    mkdirSync(rootDir, { recursive: true, mode: 0o700 });
    await new RuncClient({ root: rootDir }).list();
    const start = calls.find(([ev]) => ev === 'start')![1];
    expect(start).toMatchObject({ binary: 'runc', command: 'list' });
    expect(start['argv']).toContain('list');
    expect(calls.map(([ev]) => ev)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const { deletePodNetns } = await import('../../src/netns.js');
    await deletePodNetns(`${P}-none`, { pinDir: dirs.pinDir });
    expect(deletes[0]![1]).toMatchObject({ path: path.join(dirs.pinDir, `${P}-none`), result: { existed: false } });
  });

  it('NODE_DEBUG=nstool prints debug lines on stderr; without it, none', () => {
    const pinDir = path.join(tmp, 'cli-netns');
    const name = `${P}-cli`;
    const run = (env: NodeJS.ProcessEnv, args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 30_000 });
    const { NODE_DEBUG: _d, ...quiet } = process.env;
    try {
      const on = run({ ...quiet, NODE_DEBUG: 'nstool' }, ['create-pod-netns', '--pin-dir', pinDir, '--uidmap', '0:100000:65536', name]);
      expect(on.status, on.stderr).toBe(0);
      expect(on.stderr).toMatch(new RegExp(`^NSTOOL \\d+: nstool:netns:create start name=${name} path=${pinDir}/${name}$`, 'm'));
      expect(on.stderr).toMatch(/^NSTOOL \d+: nstool:netns:create end \(/m);
      const off = run(quiet, ['delete', '--pin-dir', pinDir, name]);
      expect(off.status, off.stderr).toBe(0);
      expect(off.stderr).toBe('');
    } finally {
      run(quiet, ['delete', '--pin-dir', pinDir, name]);
      while (mountPoints().includes(pinDir)) execFileSync('umount', [pinDir]);
    }
  });
});
