// OCI hook mode: createRuntime runs CNI ADD for the container's netns,
// poststop runs DEL. ADD is preceded by a DEL so that a hook run twice for
// one id does not trip host-local's "duplicate allocation".
// The hook runs as root and annotations may be a pod author's: every path it
// acts on comes from its flags (resolveSettings), an annotated netns must be
// the container's own (hookNetns), and post-stop undoes only what
// create-runtime recorded (./record.ts), never what annotations say then.
import { rm } from 'node:fs/promises';
import { invalidArg } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { DEFAULT_CACHE_DIR } from '../cni/cache.js';
import { loadNetworkList, loadNetworkListFile, NetworkConfigList } from '../cni/config.js';
import { validateContainerId } from '../cni/names.js';
import { addNetwork, CniOptions, CniResult, DEFAULT_IFNAME, delNetwork, RuntimeConf } from '../cni/network.js';
import { showValue } from '../show.js';
import { hookNetns, sameNetns } from './netns.js';
import { readRecord, RECORD_KIND, removeRecord, writeRecord } from './record.js';
import type { OciState } from './state.js';
import { CniHookSettings, resolveSettings } from './settings.js';

export type HookStage = 'create-runtime' | 'post-stop';

export interface HookOutcome {
  stage: HookStage;
  id: string;
  network: string;
  /** The netns given to the plugins ("" at post-stop when it is gone or not the recorded one). */
  netns: string;
  result?: CniResult;
  resultFile?: string;
  /** The record create-runtime wrote and post-stop read. */
  record?: string;
  /** Problems that did not stop the hook (the DEL before ADD, a record that could not be used). */
  warnings: string[];
}

async function networkList(s: CniHookSettings, name = s.network): Promise<NetworkConfigList> {
  if (s.conflist) return loadNetworkListFile(s.conflist);
  return loadNetworkList({ ...(s.confDir ? { dir: s.confDir } : {}), ...(name ? { name } : {}) });
}

function containerId(id: string): string {
  try {
    return validateContainerId(id);
  } catch {
    throw invalidArg(`the OCI state id ${showValue(id)} is not a valid container id (letters, digits, "_", "." and "-", starting with a letter or digit)`);
  }
}

function cniOptions(s: CniHookSettings): CniOptions {
  return {
    ...(s.pluginPath ? { pluginPath: s.pluginPath } : {}),
    ...(s.cacheDir ? { cacheDir: s.cacheDir } : {}),
    ...(s.nodeNetns ? { nodeNetns: s.nodeNetns } : {}),
  };
}

async function createRuntime(state: OciState, flags: CniHookSettings): Promise<HookOutcome> {
  // Everything is checked before anything runs: a refusal leaves nothing behind.
  const s = resolveSettings(flags, state.annotations, state.pid);
  const id = containerId(state.id);
  const ns = await hookNetns(s, flags.netns !== undefined, state.pid);
  const list = await networkList(s);
  const ifName = s.ifName ?? DEFAULT_IFNAME;
  const rt: RuntimeConf = { containerId: id, netns: ns.path, ifName };
  const o = cniOptions(s);
  const cacheDir = s.cacheDir ?? DEFAULT_CACHE_DIR;
  const out: HookOutcome = { stage: 'create-runtime', id, network: list.name, netns: ns.path, warnings: [] };
  try {
    await delNetwork(list, rt, o);
  } catch (err) {
    out.warnings.push(`DEL before ADD: ${(err as Error).message}`);
  }
  // Before ADD, which can allocate even when it fails (or the hook is killed):
  // post-stop then knows what to undo.
  out.record = await writeRecord(cacheDir, { kind: RECORD_KIND, containerId: id, network: list.name, ifName, netns: ns });
  const result = await addNetwork(list, rt, o);
  out.result = result;
  if (s.result) {
    try {
      await writeFileAtomic(s.result, JSON.stringify(result, null, 2) + '\n', 0o600);
    } catch (err) {
      // Nobody would learn the IP: undo the ADD rather than leak it.
      await delNetwork(list, rt, o).then(
        () => removeRecord(cacheDir, id),
        () => {},
      );
      throw err;
    }
    out.resultFile = s.result;
  }
  return out;
}

/**
 * DEL of what create-runtime recorded: its network and interface, in its
 * netns only while that path still holds the same namespace. Annotations play
 * no part. Without a usable record (ADD never ran, or failed before writing
 * it) DEL runs with the flags' settings and no netns, which releases what the
 * plugins hold for this container id and touches no interface anywhere.
 */
async function postStop(state: OciState, flags: CniHookSettings): Promise<HookOutcome> {
  const s = resolveSettings(flags, {});
  const id = containerId(state.id);
  const cacheDir = s.cacheDir ?? DEFAULT_CACHE_DIR;
  const read = await readRecord(cacheDir, id);
  const warnings: string[] = [];
  let list: NetworkConfigList;
  let rt: RuntimeConf;
  if (read.state === 'ok') {
    const r = read.record;
    list = await networkList(s, r.network);
    if (list.name !== r.network) warnings.push(`the hook's network is ${showValue(list.name)} but ADD ran for ${showValue(r.network)}`);
    rt = { containerId: id, netns: await sameNetns(r.netns), ifName: r.ifName };
  } else {
    if (read.state === 'corrupt') warnings.push(`record ${read.path} ignored: ${read.reason}`);
    list = await networkList(s);
    rt = { containerId: id, netns: '', ifName: s.ifName ?? DEFAULT_IFNAME };
  }
  await delNetwork(list, rt, cniOptions(s));
  await removeRecord(cacheDir, id);
  if (s.result) await rm(s.result, { force: true });
  return { stage: 'post-stop', id, network: list.name, netns: rt.netns, record: read.path, warnings };
}

export async function runCniHook(stage: HookStage, state: OciState, flags: CniHookSettings = {}): Promise<HookOutcome> {
  if (stage === 'create-runtime') return createRuntime(state, flags);
  if (stage === 'post-stop') return postStop(state, flags);
  throw invalidArg(`unknown hook stage ${showValue(stage)}`);
}
