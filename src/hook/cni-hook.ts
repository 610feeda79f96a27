// OCI hook mode: createRuntime runs CNI ADD for the container's netns,
// poststop runs DEL. ADD is preceded by a DEL so that a hook run twice for
// one id does not trip host-local's "duplicate allocation".
// The hook runs as root: resolveSettings() takes every path it acts on from
// its flags and limits an annotated netns, before any plugin runs.
import { rm } from 'node:fs/promises';
import { invalidArg } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';
import { loadNetworkList, loadNetworkListFile, NetworkConfigList } from '../cni/config.js';
import { validateContainerId } from '../cni/names.js';
import { addNetwork, CniOptions, CniResult, delNetwork, RuntimeConf } from '../cni/network.js';
import type { OciState } from './state.js';
import { CniHookSettings, HOOK_ANNOTATIONS, resolveSettings } from './settings.js';

export type HookStage = 'create-runtime' | 'post-stop';

export interface HookOutcome {
  stage: HookStage;
  id: string;
  network: string;
  netns: string;
  result?: CniResult;
  resultFile?: string;
  /** Problems that did not stop the hook (the DEL before ADD). */
  warnings: string[];
}

async function networkList(s: CniHookSettings): Promise<NetworkConfigList> {
  if (s.conflist) return loadNetworkListFile(s.conflist);
  return loadNetworkList({ ...(s.confDir ? { dir: s.confDir } : {}), ...(s.network ? { name: s.network } : {}) });
}

function netnsOf(stage: HookStage, state: OciState, s: CniHookSettings): string {
  if (s.netns) return s.netns;
  if (state.pid) return `/proc/${state.pid}/ns/net`;
  // After the container is gone there is no netns to name: DEL still releases IPs.
  if (stage === 'post-stop') return '';
  throw invalidArg(`the OCI state has no pid and neither ${HOOK_ANNOTATIONS.netns} nor --netns is set`);
}

export async function runCniHook(stage: HookStage, state: OciState, flags: CniHookSettings = {}): Promise<HookOutcome> {
  if (stage !== 'create-runtime' && stage !== 'post-stop') throw invalidArg(`unknown hook stage ${JSON.stringify(stage)}`);
  const s = resolveSettings(flags, state.annotations, state.pid);
  const id = validateContainerId(state.id);
  const netns = netnsOf(stage, state, s);
  const list = await networkList(s);
  const rt: RuntimeConf = { containerId: id, netns, ...(s.ifName ? { ifName: s.ifName } : {}) };
  const o: CniOptions = {
    ...(s.pluginPath ? { pluginPath: s.pluginPath } : {}),
    ...(s.cacheDir ? { cacheDir: s.cacheDir } : {}),
    ...(s.nodeNetns ? { nodeNetns: s.nodeNetns } : {}),
  };
  const out: HookOutcome = { stage, id, network: list.name, netns, warnings: [] };
  if (stage === 'post-stop') {
    await delNetwork(list, rt, o);
    if (s.result) await rm(s.result, { force: true });
    return out;
  }
  try {
    await delNetwork(list, rt, o);
  } catch (err) {
    out.warnings.push(`DEL before ADD: ${(err as Error).message}`);
  }
  const result = await addNetwork(list, rt, o);
  out.result = result;
  if (s.result) {
    try {
      await writeFileAtomic(s.result, JSON.stringify(result, null, 2) + '\n', 0o644);
    } catch (err) {
      // Nobody would learn the IP: undo the ADD rather than leak it.
      await delNetwork(list, rt, o).catch(() => {});
      throw err;
    }
    out.resultFile = s.result;
  }
  return out;
}
