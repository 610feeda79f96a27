// Finds what a crash left behind and removes it: sandboxes whose create or
// delete stopped part way, pins, containers, bundles and cached CNI results
// of sandboxes that have no state. Only names with the sandbox prefix are
// ever touched, and a sandbox whose lock is held (a create in progress) is
// left alone.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { delNetwork, toNetworkList } from '../cni/index.js';
import { deletePodNetns, listNetns } from '../netns.js';
import { removePodContainer } from '../pod/container.js';
import { runtimeClient, SANDBOX_PREFIX, SandboxDirs, sandboxDirs, SandboxRuntime, _forGc } from './sandbox.js';
import { listStateIds, readState, SandboxLock } from './state.js';

export interface GcOptions extends SandboxDirs {
  dryRun?: boolean;
  /** The runtime whose containers are checked (binary, --root). */
  runtime?: SandboxRuntime;
  /** Plugin search path for DEL of orphaned CNI results. */
  pluginPath?: string | string[];
  /** Run plugins inside this netns (where the network was set up). */
  nodeNetns?: string;
}

export interface GcAction {
  kind: 'sandbox' | 'pin' | 'userns-pin' | 'container' | 'bundle' | 'cni-result';
  target: string;
  reason: string;
  done: boolean;
  error?: string;
}

function idOf(name: string): string | null {
  return name.startsWith(SANDBOX_PREFIX) ? name.slice(SANDBOX_PREFIX.length) : null;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

export async function gc(o: GcOptions = {}): Promise<GcAction[]> {
  const dirs = sandboxDirs(o);
  const dry = !!o.dryRun;
  const actions: GcAction[] = [];
  const act = async (a: Omit<GcAction, 'done'>, run: () => Promise<void>) => {
    const rec: GcAction = { ...a, done: false };
    actions.push(rec);
    if (dry) return;
    try {
      await run();
      rec.done = true;
    } catch (err) {
      rec.error = (err as Error).message;
    }
  };

  // 1. Sandboxes with state: finish what a crash interrupted.
  const live = new Set<string>();
  for (const id of await listStateIds(dirs.state)) {
    live.add(id);
    const lock = SandboxLock.tryAcquire(dirs.state, id);
    if (!lock) continue; // a create or delete is running right now
    let gone = false;
    try {
      const st = await readState(dirs.state, id).catch(() => null);
      if (!st) continue;
      let reason: string | null = null;
      if (st.phase !== 'ready') reason = `interrupted while ${st.phase}`;
      else if (st.pause) {
        const status = await _forGc.runtimeOf(st).state(st.pause.containerId).then((s) => s.status, () => 'missing');
        if (status !== 'running' && status !== 'created' && status !== 'paused') reason = `pause container ${status}`;
      }
      if (!reason && st.netns && !(await _forGc.ownsPin(st))) reason = 'netns pin missing';
      if (!reason) continue;
      await act({ kind: 'sandbox', target: id, reason }, async () => {
        await _forGc.teardown(st, dirs);
        gone = true;
      });
    } finally {
      await lock.release(dirs.state, id, gone);
    }
  }
  // Everything below is removed only for an id whose lock we hold and that
  // still has no state: a create that starts meanwhile takes the lock first
  // and writes its state before any side effect.
  const claimed = new Map<string, SandboxLock>();
  const orphan = async (name: string): Promise<boolean> => {
    const id = idOf(name);
    if (id === null || live.has(id)) return false;
    if (claimed.has(id)) return true;
    const lock = SandboxLock.tryAcquire(dirs.state, id);
    if (!lock) return false;
    if (await readState(dirs.state, id).catch(() => true)) {
      await lock.release(dirs.state, id, false);
      live.add(id);
      return false;
    }
    claimed.set(id, lock);
    return true;
  };
  try {
    await removeOrphans();
  } finally {
    for (const [id, lock] of claimed) await lock.release(dirs.state, id, true);
  }
  return actions;

  async function removeOrphans(): Promise<void> {
    // 2. Containers and bundles of sandboxes without state; removal unmounts
    //    the idmapped rootfs before the bundle goes.
    const rt = runtimeClient(o.runtime);
    const containers = new Map((await rt.list().catch(() => [])).map((c) => [c.id, c.status]));
    const names = new Set<string>();
    for (const n of [...containers.keys(), ...(await entries(dirs.bundle))]) if (await orphan(n)) names.add(n);
    for (const name of [...names].sort()) {
      const status = containers.get(name);
      await act({ kind: status ? 'container' : 'bundle', target: status ? name : path.join(dirs.bundle, name), reason: `no sandbox state${status ? ` (${status})` : ''}` }, async () => {
        await removePodContainer(name, { bundleDir: path.join(dirs.bundle, name), runtime: rt });
      });
    }

    // 3. Cached CNI results without a sandbox: DEL from the cache alone (it
    //    keeps the config), which releases the IP, then the cache file goes.
    const resultsDir = path.join(dirs.cniCache, 'results');
    for (const file of await entries(resultsDir)) {
      let entry: { containerId?: string; ifName?: string; config?: string; netns?: string };
      try {
        entry = JSON.parse(await readFile(path.join(resultsDir, file), 'utf8')) as typeof entry;
      } catch {
        continue;
      }
      if (!entry.containerId || !entry.config || !(await orphan(entry.containerId))) continue;
      const cid = entry.containerId;
      await act({ kind: 'cni-result', target: path.join(resultsDir, file), reason: 'no sandbox state' }, async () => {
        const list = toNetworkList(JSON.parse(Buffer.from(entry.config!, 'base64').toString('utf8')));
        const pinned = path.join(dirs.pin, cid);
        await delNetwork(list, { containerId: cid, netns: pinned, ifName: entry.ifName ?? 'eth0' }, {
          cacheDir: dirs.cniCache,
          ...(o.pluginPath ? { pluginPath: o.pluginPath } : {}),
          ...(o.nodeNetns ? { nodeNetns: o.nodeNetns } : {}),
        });
      });
    }

    // 4. Pins of sandboxes without state (after DEL, which may still use them).
    for (const e of await listNetns(dirs.pin)) {
      if (!(await orphan(e.name))) continue;
      await act({ kind: 'pin', target: e.path, reason: `no sandbox state (${e.kind})` }, async () => {
        await deletePodNetns(e.name, { pinDir: dirs.pin, usernsPinDir: dirs.userns });
      });
    }
    for (const name of await entries(dirs.userns)) {
      if (!(await orphan(name))) continue;
      await act({ kind: 'userns-pin', target: path.join(dirs.userns, name), reason: 'no sandbox state' }, async () => {
        await deletePodNetns(path.join(dirs.userns, name));
      });
    }

    // 5. Lock files of ids with no state.
    if (!dry) {
      for (const name of await entries(dirs.state)) {
        if (!name.endsWith('.lock')) continue;
        const id = name.slice(0, -'.lock'.length);
        if (live.has(id) || claimed.has(id)) continue;
        const lock = SandboxLock.tryAcquire(dirs.state, id);
        if (lock && !(await readState(dirs.state, id).catch(() => null))) await lock.release(dirs.state, id, true);
        else await lock?.release(dirs.state, id, false);
      }
    }
  }
}
