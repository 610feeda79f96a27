// Finding and running one CNI plugin: CNI_* environment, config on stdin,
// result or {code, msg, details} error on stdout.
import { statSync, accessSync, constants } from 'node:fs';
import path from 'node:path';
import { invalidArg } from '../errors.js';
import { ProcessError, ProcessResult, runProcess } from '../process.js';
import { channels, traced } from '../trace.js';
import { CniError } from './errors.js';
import { validatePluginType } from './names.js';
import type { CniVerb } from './version.js';

export const DEFAULT_PLUGIN_PATH = ['/usr/lib/cni', '/opt/cni/bin'];
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_OUTPUT = 4 << 20;

export interface ExecOptions {
  /** Run plugins inside this netns (a path), e.g. a node's netns. */
  nodeNetns?: string;
  /** Kill a plugin after this long (default 60 s). */
  timeoutMs?: number;
  /** Kills a running plugin (SIGKILL) and rejects with ABORT_ERR. */
  signal?: AbortSignal;
}

export function pluginPath(p: string | readonly string[] | undefined): string[] {
  const dirs = p === undefined ? DEFAULT_PLUGIN_PATH : typeof p === 'string' ? p.split(':') : [...p];
  const out = dirs.filter((d) => d !== '');
  if (out.length === 0 || out.some((d) => typeof d !== 'string' || !path.isAbsolute(d) || d.includes('\0'))) {
    throw invalidArg('the plugin path must be absolute directories');
  }
  return out;
}

/** The first executable regular file named TYPE on the search path. */
export function findPlugin(type: string, dirs: readonly string[]): string {
  validatePluginType(type);
  for (const dir of dirs) {
    const p = path.join(dir, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new CniError(`CNI plugin ${type} not found in ${dirs.join(':')}`, {
    plugin: type,
    hint: 'install the plugin (containernetworking-plugins) or add its directory to the plugin path',
  });
}

export interface Invocation {
  command: CniVerb;
  containerId?: string;
  netns?: string;
  ifName?: string;
  /** Already formatted "K=V;K=V". */
  args?: string;
  pluginDirs: readonly string[];
  stdin: string;
}

/** The environment a plugin sees: ours (less NOTIFY_SOCKET) plus CNI_*. */
export function pluginEnv(inv: Invocation, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && k !== 'NOTIFY_SOCKET' && !k.startsWith('CNI_')) env[k] = v;
  env['CNI_COMMAND'] = inv.command;
  env['CNI_PATH'] = inv.pluginDirs.join(':');
  if (inv.command !== 'VERSION') {
    env['CNI_CONTAINERID'] = inv.containerId ?? '';
    env['CNI_NETNS'] = inv.netns ?? '';
    env['CNI_IFNAME'] = inv.ifName ?? '';
    env['CNI_ARGS'] = inv.args ?? '';
  }
  return env;
}

interface PluginErrorJson {
  code?: unknown;
  msg?: unknown;
  details?: unknown;
}

/** Runs PLUGIN (a path) for INV; resolves to its parsed stdout (or null if empty). */
export async function invokePlugin(file: string, inv: Invocation, o: ExecOptions = {}): Promise<unknown> {
  const type = path.basename(file);
  const env = pluginEnv(inv);
  let r: ProcessResult;
  try {
    // Through the process runner: fds 0-2 only, and the plugin dies with us
    // (an ADD that outlived nstool could finish after a later DEL).
    const run = () =>
      runProcess({ file }, {
        env,
        input: inv.stdin,
        timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxOutput: MAX_OUTPUT,
        ...(o.nodeNetns ? { netns: o.nodeNetns } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
    const ctx = () => ({ plugin: type, command: inv.command, containerId: inv.containerId, ifName: inv.ifName, netns: inv.netns });
    r = await traced(channels.cniPlugin, ctx, run);
  } catch (err) {
    if (err instanceof ProcessError && err.code === 'ABORT_ERR') throw err;
    if (err instanceof ProcessError && err.code === 'ETIMEDOUT') {
      throw new CniError(`CNI plugin ${type} (${inv.command}) timed out`, { plugin: type, hint: 'raise timeoutMs or check the plugin', cause: err });
    }
    const inNetns = o.nodeNetns !== undefined && (err as { path?: unknown }).path === o.nodeNetns;
    throw new CniError(`running CNI plugin ${type} (${inv.command}): ${(err as Error).message}`, {
      plugin: type,
      hint: inNetns ? `check that ${o.nodeNetns} is a network namespace` : 'check that the plugin is executable',
      cause: err,
    });
  }
  const text = r.stdout.trim();
  let parsed: unknown = null;
  let parseError: Error | null = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      parseError = err as Error;
    }
  }
  if (r.exitCode !== 0) {
    const e = (parsed ?? {}) as PluginErrorJson;
    const cniCode = typeof e.code === 'number' ? e.code : undefined;
    const cniMsg = typeof e.msg === 'string' ? e.msg : r.stderr.trim() || text || undefined;
    const cniDetails = typeof e.details === 'string' ? e.details : undefined;
    const how = r.signal ? `was killed by ${r.signal}` : `failed (exit ${r.exitCode})`;
    throw new CniError(`CNI plugin ${type} ${inv.command} ${how}${cniMsg ? `: ${cniMsg}` : ''}${cniDetails ? `: ${cniDetails}` : ''}`, {
      plugin: type,
      ...(cniCode !== undefined ? { cniCode } : {}),
      ...(cniMsg !== undefined ? { cniMsg } : {}),
      ...(cniDetails !== undefined ? { cniDetails } : {}),
    });
  }
  if (parseError) {
    throw new CniError(`CNI plugin ${type} (${inv.command}) printed invalid JSON: ${parseError.message}`, {
      plugin: type,
      cniMsg: text.slice(0, 200),
    });
  }
  return parsed;
}

const versionCache = new Map<string, string[]>();

/** Forgets what plugins said to VERSION (tests; a replaced binary is noticed anyway). */
export function clearVersionCache(): void {
  versionCache.clear();
}

/**
 * The spec versions a plugin binary supports, asked once per binary (keyed
 * by path, inode, size and mtime, so a replaced plugin is asked again).
 */
export async function queryPluginVersions(file: string, dirs: readonly string[], o: ExecOptions = {}): Promise<string[]> {
  const st = statSync(file);
  const key = `${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  const hit = versionCache.get(key);
  if (hit) return hit;
  // The spec asks for a cniVersion on stdin; plugins answer with their own list.
  const out = (await invokePlugin(file, { command: 'VERSION', pluginDirs: dirs, stdin: '{"cniVersion":"1.0.0"}' }, o)) as {
    supportedVersions?: unknown;
  } | null;
  const list = out?.supportedVersions;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string')) {
    throw new CniError(`CNI plugin ${path.basename(file)} gave no supportedVersions to VERSION`, { plugin: path.basename(file) });
  }
  versionCache.set(key, list as string[]);
  return list as string[];
}
