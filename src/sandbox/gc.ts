// gc: finishes what crashes left, touching only this instance's resources.
// 1. Sandboxes with state whose create or delete was interrupted, or whose
//    pause container or a namespace pin is gone: the delete loop over the table.
// 2. Resources named with this instance's tag (and not marked as another
//    instance's) whose sandbox has no state: a reboot empties /run but
//    leaves the CNI result cache, so IPs are released from it alone. The
//    same table, walked backwards, removes them.
// 3. Litter: tmp files of killed atomic writes, lock files of ids without state.
// Anything that vanishes while gc looks is skipped; gc itself only throws
// on bad options. A sandbox whose lock is held (a create or delete running)
// is left alone. A dry run reads and reports, and changes nothing on disk.
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { removeAtomicLitter } from '../atomic-file.js';
import { pluginPath, toNetworkList, validateIfName, validateNetworkName } from '../cni/index.js';
import { isAbort, throwIfAborted, validateSignal } from '../abort.js';
import { requireAbsolute } from '../errors.js';
import { channels, step, traced } from '../trace.js';
import { listNetns } from '../netns.js';
import { removeBundleLitter } from '../pod/container.js';
import { gcRuntimeFiles } from '../runc/client.js';
import { teardown } from './delete.js';
import { findKeeper, hostPath } from '../rootless/keeper.js';
import { probeNs } from '../kernel/ns.js';
import { idFromName, Instance, instanceOf } from './instance.js';
import { REMOVAL_ORDER, removeResource, RESOURCES, runtimeClient } from './resources.js';
import type { Resource } from './resources.js';
import { ensureStateDir, listLockIds, listStateIds, lockFile, readState, SandboxLock, SandboxState, writeState } from './state.js';
import { Dirs, SandboxDirs, sandboxDirs, SandboxRuntime } from './types.js';

export interface GcOptions extends SandboxDirs {
  dryRun?: boolean;
  /** The runtime whose containers are checked (binary, --root). */
  runtime?: SandboxRuntime;
  /** Plugin search path for DEL of cached CNI results without state. */
  pluginPath?: string | string[];
  /** Run those plugins inside this netns (where the network was set up). */
  nodeNetns?: string;
  /** Checked before each action: an abort rejects with ABORT_ERR, leaving the rest for the next gc. */
  signal?: AbortSignal;
}

export interface GcAction {
  kind: 'sandbox' | 'pin' | 'userns-pin' | 'ipc-pin' | 'uts-pin' | 'container' | 'bundle' | 'cni-result' | 'tmp-file';
  target: string;
  reason: string;
  done: boolean;
  error?: string;
  /** The sandbox the resource belongs to. */
  id?: string;
}

const INSTANCE_ANNOTATION = 'nstool.instance';

/** What was found of one sandbox id that has no state. */
interface Found {
  container?: boolean;
  bundle?: boolean;
  cache: Array<{ file: string; network?: NonNullable<SandboxState['network']>; error?: string }>;
  pin?: string;
  userns?: boolean;
  ipc?: boolean;
  uts?: boolean;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** An annotation naming another instance vetoes; none (an older record) does not. */
function ownedBy(annotations: unknown, inst: Instance): boolean {
  const v = (annotations as Record<string, unknown> | null | undefined)?.[INSTANCE_ANNOTATION];
  return v === undefined || v === inst.stateDir;
}

interface Env {
  dirs: Dirs;
  inst: Instance;
  runtime: { binary: string; root?: string };
  pluginPath: string[];
  nodeNetns?: string;
}

/** Every resource named with this instance's tag, by sandbox id; reads only. */
async function discover(e: Env): Promise<Map<string, Found>> {
  const found = new Map<string, Found>();
  const at = (name: string): Found | null => {
    const id = idFromName(e.inst, name);
    if (id === null) return null;
    let f = found.get(id);
    if (!f) found.set(id, (f = { cache: [] }));
    return f;
  };

  // Without root there are no containers, bundles or CNI results: only the keeper's pins.
  if (e.dirs.rootless) return discoverKeeperPins(e, at, found);

  const rt = runtimeClient(e.runtime);
  for (const c of await rt.list().catch(() => [])) {
    if (idFromName(e.inst, c.id) === null) continue;
    const ann = c['annotations'] ?? (await rt.state(c.id).then((s) => s.annotations, () => undefined));
    if (ownedBy(ann, e.inst)) at(c.id)!.container = true;
  }

  for (const name of await entries(e.dirs.bundle)) {
    if (idFromName(e.inst, name) === null) continue;
    const b = path.join(e.dirs.bundle, name);
    if (!(await lstat(b).catch(() => null))?.isDirectory()) continue;
    const spec = await readFile(path.join(b, 'config.json'), 'utf8').then((t) => JSON.parse(t) as { annotations?: unknown }, () => undefined);
    if (ownedBy(spec?.annotations, e.inst)) at(name)!.bundle = true;
  }

  const results = path.join(e.dirs.cniCache, 'results');
  for (const file of await entries(results)) {
    const p = path.join(results, file);
    let entry: { kind?: unknown; containerId?: unknown; ifName?: unknown; networkName?: unknown; config?: unknown; owner?: unknown };
    try {
      if (!(await lstat(p)).isFile()) continue;
      entry = JSON.parse(await readFile(p, 'utf8')) as typeof entry;
    } catch {
      continue; // gone meanwhile, or not a record of ours
    }
    if (entry === null || typeof entry !== 'object' || entry.kind !== 'cniCacheV1' || typeof entry.containerId !== 'string') continue;
    if (idFromName(e.inst, entry.containerId) === null) continue;
    if (entry.owner !== undefined && entry.owner !== e.inst.stateDir) continue;
    // Everything that forms the file name is checked against the name it has:
    // a record nstool did not write is not touched.
    let ifName: string;
    let net: string;
    try {
      ifName = validateIfName(entry.ifName);
      net = validateNetworkName(entry.networkName);
    } catch {
      continue;
    }
    if (`${net}-${entry.containerId}-${ifName}` !== file) continue;
    try {
      if (typeof entry.config !== 'string') throw new Error('it holds no network config');
      const list = toNetworkList(JSON.parse(Buffer.from(entry.config, 'base64').toString('utf8')));
      if (list.name !== net) throw new Error(`its config is of network ${list.name}`);
      const { source: _s, ...plain } = list;
      at(entry.containerId)!.cache.push({
        file: p,
        network: {
          list: plain as Record<string, unknown>,
          containerId: entry.containerId,
          ifName,
          cacheDir: e.dirs.cniCache,
          pluginPath: e.pluginPath,
          ...(e.nodeNetns ? { nodeNetns: e.nodeNetns } : {}),
        },
      });
    } catch (err) {
      at(entry.containerId)!.cache.push({ file: p, error: `cannot DEL from ${p}: ${(err as Error).message}` });
    }
  }

  for (const pin of await listNetns(e.dirs.pin).catch(() => [])) {
    // Anything but a netns or a stale pin file is not nstool's to remove.
    if (pin.kind === 'netns' || pin.kind === 'stale') {
      const f = at(pin.name);
      if (f) f.pin = pin.kind;
    }
  }

  for (const kind of ['userns', 'ipc', 'uts'] as const) {
    for (const name of await entries(e.dirs[kind])) {
      if (idFromName(e.inst, name) === null) continue;
      if ((await lstat(path.join(e.dirs[kind], name)).catch(() => null))?.isFile()) at(name)![kind] = true;
    }
  }
  return found;
}

/**
 * The keeper's pins named with this instance's tag. Only this user's keeper
 * is asked (its socket and pid file are in the user's runtime dir), so no
 * other user's pins are ever seen.
 */
async function discoverKeeperPins(e: Env, at: (name: string) => Found | null, found: Map<string, Found>): Promise<Map<string, Found>> {
  const r = e.dirs.rootless!;
  const keeper = findKeeper(r.rt);
  if (!keeper) return found; // no keeper: no pins
  for (const [kind, dir] of [['pin', r.pin], ['userns', r.userns], ['ipc', r.ipc], ['uts', r.uts]] as const) {
    const hostDir = hostPath(keeper, dir);
    for (const name of await entries(hostDir)) {
      if (idFromName(e.inst, name) === null) continue;
      if (!(await lstat(path.join(hostDir, name)).catch(() => null))?.isFile()) continue;
      if (kind === 'pin') {
        const p = await probeNs(path.join(hostDir, name)).catch(() => null);
        if (p?.state === 'ns' && p.type === 'net') at(name)!.pin = 'netns';
        else if (p?.state === 'stale') at(name)!.pin = 'stale';
      } else {
        at(name)![kind] = true;
      }
    }
  }
  return found;
}

/** A state as create would have written it, from what was found. */
function synthesize(id: string, f: Found, e: Env): SandboxState {
  const name = e.inst.prefix + id;
  const st: SandboxState = { version: 1, id, phase: 'deleting', createdAt: '', instance: e.inst.stateDir, ...(e.dirs.rootless ? { mode: 'rootless' as const } : {}), uidMap: [], gidMap: [] };
  if (f.pin) st.netns = { name, path: path.join(e.dirs.pin, name), pinDir: e.dirs.pin, usernsPinDir: e.dirs.userns };
  if (f.userns) st.userns = { path: path.join(e.dirs.userns, name) };
  if (f.ipc) st.ipc = { path: path.join(e.dirs.ipc, name) };
  if (f.uts) st.uts = { path: path.join(e.dirs.uts, name) };
  if (f.container || f.bundle) st.pause = { containerId: name, bundle: path.join(e.dirs.bundle, name), runtime: e.runtime };
  return st;
}

/** Whether another process holds ID's lock, without creating a lock file (for a dry run). */
async function lockHeld(dir: string, id: string): Promise<boolean> {
  if (!(await lstat(lockFile(dir, id)).catch(() => null))) return false;
  try {
    const lock = SandboxLock.tryAcquire(dir, id);
    if (!lock) return true;
    await lock.release(dir, id, false);
  } catch {
    // vanished meanwhile
  }
  return false;
}

export async function gc(o: GcOptions = {}): Promise<GcAction[]> {
  const run = new GcRun(o);
  throwIfAborted(run.signal, 'gc');
  return traced(channels.sandboxGc, () => ({ stateDir: run.e.dirs.state }), () => collect(run));
}

async function collect(run: GcRun): Promise<GcAction[]> {
  // Locks live in the state dir: after a reboot it has to be made again.
  if (!run.dry) await ensureStateDir(run.e.dirs.state);
  const live = await run.sandboxesWithState();
  await run.orphans(live);
  await run.litter();
  return run.actions;
}

type Act = (a: Omit<GcAction, 'done'>, run: () => Promise<void>) => Promise<boolean>;

class GcRun {
  readonly e: Env;
  readonly dry: boolean;
  readonly signal?: AbortSignal;
  readonly actions: GcAction[] = [];

  constructor(o: GcOptions) {
    const dirs = sandboxDirs(o);
    this.e = {
      dirs,
      inst: instanceOf(dirs.state),
      runtime: { binary: o.runtime?.binary ?? 'runc', ...(o.runtime?.root !== undefined ? { root: path.normalize(requireAbsolute(o.runtime.root, 'runtime.root')) } : {}) },
      pluginPath: pluginPath(o.pluginPath),
      ...(o.nodeNetns !== undefined ? { nodeNetns: path.normalize(requireAbsolute(o.nodeNetns, 'nodeNetns')) } : {}),
    };
    this.dry = !!o.dryRun;
    const signal = validateSignal(o.signal);
    if (signal) this.signal = signal;
  }

  /** Records an action and, unless dry, runs it; true when it succeeded (or would run). */
  act: Act = async (a, run) => {
    throwIfAborted(this.signal, 'gc');
    const rec: GcAction = { ...a, done: false };
    this.actions.push(rec);
    if (this.dry) return true;
    step('gc', a.id ?? '', a.kind, 'before', { target: a.target, reason: a.reason });
    try {
      await run();
      rec.done = true;
      step('gc', a.id ?? '', a.kind, 'after', { target: a.target });
    } catch (err) {
      rec.error = (err as Error)?.message ?? String(err);
      step('gc', a.id ?? '', a.kind, 'failed', { target: a.target, error: err });
      if (isAbort(err) && this.signal?.aborted) throw err;
    }
    return rec.done;
  };

  /** ID's lock; null when a create or delete holds it (or it cannot be had). */
  private async claim(id: string): Promise<SandboxLock | 'dry' | null> {
    const dir = this.e.dirs.state;
    if (this.dry) return (await lockHeld(dir, id)) ? null : 'dry';
    try {
      return SandboxLock.tryAcquire(dir, id);
    } catch {
      return null; // the state dir vanished
    }
  }

  private async release(lock: SandboxLock | 'dry', id: string, removeFile: boolean): Promise<void> {
    if (lock !== 'dry') await lock.release(this.e.dirs.state, id, removeFile);
  }

  /** 1. Sandboxes with state: interrupted or broken ones are deleted. Returns the ids seen. */
  async sandboxesWithState(): Promise<Set<string>> {
    const dir = this.e.dirs.state;
    const live = new Set(await listStateIds(dir).catch(() => [] as string[]));
    for (const id of live) {
      const lock = await this.claim(id);
      if (!lock) continue;
      let gone = false;
      try {
        let st: SandboxState | null;
        try {
          st = await readState(dir, id);
        } catch (err) {
          this.actions.push({ kind: 'sandbox', target: id, id, reason: 'state unreadable', done: false, error: (err as Error).message });
          continue;
        }
        if (!st) {
          gone = true; // deleted meanwhile
          continue;
        }
        const reason = st.phase !== 'ready' ? `interrupted while ${st.phase}` : await brokenBy(st);
        if (!reason) continue;
        const s = st;
        await this.act({ kind: 'sandbox', target: id, id, reason }, async () => {
          s.phase = 'deleting';
          await writeState(dir, s);
          await teardown(s, dir, undefined, this.signal);
          gone = true;
        });
      } finally {
        await this.release(lock, id, gone);
      }
    }
    return live;
  }

  /** 2. This instance's resources whose sandbox has no state. */
  async orphans(live: Set<string>): Promise<void> {
    const found = await discover(this.e);
    for (const id of [...found.keys()].sort()) {
      if (live.has(id)) continue;
      const lock = await this.claim(id);
      if (!lock) continue;
      // A create that started meanwhile took the lock and wrote its state first.
      const hasState = await readState(this.e.dirs.state, id).then((s) => s !== null, () => true);
      try {
        if (!hasState) await removeOrphan(id, found.get(id)!, this.e, this.act);
      } finally {
        await this.release(lock, id, !hasState);
      }
    }
  }

  /** 3. Tmp files of killed atomic writes; lock files of ids without state. */
  async litter(): Promise<void> {
    const { state, cniCache, rootless } = this.e.dirs;
    for (const dir of rootless ? [state] : [state, path.join(cniCache, 'results')]) {
      const files = await removeAtomicLitter(dir, { dryRun: this.dry }).catch(() => [] as string[]);
      for (const f of files) this.actions.push({ kind: 'tmp-file', target: f, reason: 'left by an atomic write whose writer died', done: !this.dry });
    }
    // Bundles of this instance that a create killed before the rename left under a tmp name.
    for (const b of rootless ? [] : await removeBundleLitter(this.e.dirs.bundle, { prefix: this.e.inst.prefix, dryRun: this.dry }).catch(() => [] as string[])) {
      this.actions.push({ kind: 'bundle', target: b, reason: 'left by a create killed before its bundle was complete', done: !this.dry });
    }
    // Runtime logs of nstool processes that died during a runtime call (named by pid and start time).
    if (!this.dry && !rootless) await gcRuntimeFiles().catch(() => []);
    if (this.dry) return; // lock files are bookkeeping, not reported
    for (const id of await listLockIds(state).catch(() => [] as string[])) {
      try {
        const lock = SandboxLock.tryAcquire(state, id);
        if (!lock) continue;
        const hasState = await readState(state, id).then((s) => s !== null, () => true);
        await lock.release(state, id, !hasState);
      } catch {
        // vanished meanwhile
      }
    }
  }
}

/** Why a ready sandbox is broken (its pause container or a namespace pin gone), or null. */
async function brokenBy(st: SandboxState): Promise<string | null> {
  for (const r of RESOURCES) {
    if (!r.recorded(st)) continue;
    const why = await r.broken(st);
    if (why) return why;
  }
  return null;
}

/** The removal loop over the table for one id without state; stops at the first failure. */
async function removeOrphan(id: string, f: Found, e: Env, act: Act): Promise<void> {
  const base = synthesize(id, f, e);
  const reason = 'no sandbox state';
  for (const r of REMOVAL_ORDER) {
    // The network has one record per cached result (normally one).
    const states: Array<{ st: SandboxState; error?: string; file?: string }> =
      r.step === 'network' ? f.cache.map((c) => ({ st: c.network ? { ...base, network: c.network } : base, ...(c.error ? { error: c.error } : {}), file: c.file })) : r.recorded(base) ? [{ st: base }] : [];
    for (const { st, error, file } of states) {
      const kind = r.gcKind === 'container' && !f.container ? 'bundle' : r.gcKind;
      const target = kind === 'bundle' ? st.pause!.bundle : (file ?? r.target(st));
      const ok = await act({ kind, target, id, reason: kind === 'pin' ? `${reason} (${f.pin})` : reason }, async () => {
        if (error) throw new Error(error);
        await removeOne(r, st);
      });
      if (!ok) return;
    }
  }
}

async function removeOne(r: Resource, st: SandboxState): Promise<void> {
  await removeResource(r, st);
  r.forget(st);
}
