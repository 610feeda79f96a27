// nstool sandbox create|delete|list|inspect|check, nstool gc
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { currentMode } from '../rootless/mode.js';
import { parseSubid } from '../rootless/subid.js';
import { constants } from 'node:os';
import { DEFAULT_CACHE_DIR, DEFAULT_PLUGIN_PATH, loadNetworkListFile } from '../cni/index.js';
import { NstoolError } from '../errors.js';
import { DEFAULT_PIN_DIR, DEFAULT_USERNS_PIN_DIR } from '../netns.js';
import { createSandbox, DEFAULT_BUNDLE_DIR, DEFAULT_STATE_DIR, deleteSandbox, gc, listSandboxes, loadSandbox } from '../sandbox/index.js';
import type { SandboxDirs, SandboxInfo, SandboxNetwork, StepHook } from '../sandbox/index.js';
import { checkSandbox } from '../sandbox/check.js';
import { showName } from '../show.js';
import { summary } from './catalog.js';
import { emit, Io, ReportedFailure, table, UsageError, withJson } from './context.js';
import { SANDBOX_COLUMNS, sandboxRow, sandboxView } from './views.js';

interface DirFlags {
  stateDir?: string;
  bundleDir?: string;
  pinDir?: string;
  usernsPinDir?: string;
  cniCacheDir?: string;
  runtime?: string;
  runtimeRoot?: string;
  json?: boolean;
}

function dirFlags(cmd: Command): Command {
  return withJson(cmd)
    // No defaults given here: without root the dirs are the user's (and the pin dirs cannot be chosen).
    .option('--state-dir <dir>', `sandbox state files; its path names the instance (default ${DEFAULT_STATE_DIR}; rootless: $XDG_RUNTIME_DIR/nstool/sandboxes)`)
    .option('--bundle-dir <dir>', `pause container bundles (default ${DEFAULT_BUNDLE_DIR}; root only)`)
    .option('--pin-dir <dir>', `netns pins (default ${DEFAULT_PIN_DIR}; root only)`)
    .option('--userns-pin-dir <dir>', `userns pins (default ${DEFAULT_USERNS_PIN_DIR}; root only)`)
    .option('--cni-cache-dir <dir>', `CNI result cache (default ${DEFAULT_CACHE_DIR}; root only)`)
    .option('--runtime <binary>', 'OCI runtime', 'runc')
    .option('--runtime-root <dir>', 'runtime state dir (runc --root)');
}

function dirs(o: DirFlags): SandboxDirs {
  return {
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.bundleDir ? { bundleDir: o.bundleDir } : {}),
    ...(o.pinDir ? { pinDir: o.pinDir } : {}),
    ...(o.usernsPinDir ? { usernsPinDir: o.usernsPinDir } : {}),
    ...(o.cniCacheDir ? { cniCacheDir: o.cniCacheDir } : {}),
  };
}

function runtime(o: DirFlags) {
  return { binary: o.runtime ?? 'runc', ...(o.runtimeRoot ? { root: o.runtimeRoot } : {}) };
}

/**
 * SIGINT/SIGTERM: the first aborts (create rolls back; delete finishes the
 * sandbox it is on), a second exits at once, leaving a state that
 * `sandbox delete` or `gc` finishes from.
 */
export function onSignals(ac: AbortController): () => void {
  const handler = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(128 + (constants.signals[sig] ?? 0));
    ac.abort(new NstoolError(`interrupted by ${sig}`, { code: 'ABORT_ERR' }));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/**
 * Test-only: NSTOOL_TEST_STEP=<point>:kill SIGKILLs the CLI at that point of
 * a create or delete; <point>:pause says so on stderr and waits there for a
 * signal, so a test can interrupt it at a known point.
 */
export function testStepHook(signal: AbortSignal): StepHook | undefined {
  const spec = process.env['NSTOOL_TEST_STEP'];
  if (!spec) return undefined;
  const i = spec.lastIndexOf(':');
  const point = spec.slice(0, i);
  const what = spec.slice(i + 1);
  return async (p) => {
    if (p !== point) return;
    if (what === 'kill') process.kill(process.pid, 'SIGKILL');
    if (what === 'pause' && !signal.aborted) {
      process.stderr.write(`nstool-test: paused at ${p}\n`);
      // A signal handler alone does not keep the event loop alive.
      const keep = setInterval(() => {}, 1 << 30);
      await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      clearInterval(keep);
    }
  };
}

export function registerSandboxCommands(program: Command, io: Io): void {
  const sb = program.command('sandbox').description(summary('sandbox'));
  const rows = (l: SandboxInfo[]) => table(io, SANDBOX_COLUMNS, l.map((s) => sandboxRow(s).map((c, i) => (SANDBOX_COLUMNS[i] === 'NETNS' ? showName(c) : c))));

  dirFlags(sb.command('create').description('create a pod sandbox and print its id, netns and IPs').argument('<id>'))
    .option('--rootfs <dir>', 'run a pause container with this root filesystem (default: none)')
    .option('--no-pause', 'no pause container (the default without --rootfs): the ipc and uts namespaces are pinned')
    .option('--uidmap <map>', 'uid mappings containerID:hostID:size[,...] (default 0:100000:65536; rootless: your first /etc/subuid range)')
    .option('--gidmap <map>', 'gid mappings (default: the uid mappings)')
    .option('--pause-cmd <cmd...>', 'pause command', ['sleep', '2147483647'])
    .option('--hostname <name>', 'the pod host name (default: the id)')
    .option('--conflist <file>', 'CNI network config list (.conflist or .conf)')
    .option('--cni-conf-dir <dir>', 'load the network from this dir (default /etc/cni/net.d with --network)')
    .option('--network <name>', 'network name to pick from the conf dir')
    .option('--ifname <name>', 'interface name in the pod (default eth0; rootless: tap0)')
    .option('--cni-path <path>', 'plugin search path', DEFAULT_PLUGIN_PATH.join(':'))
    .option('--node-netns <path>', 'run CNI plugins inside this netns')
    .option('--no-network', 'only lo')
    .addOption(new Option('--net-backend <name>', 'rootless: the user-mode network program').choices(['auto', 'pasta', 'slirp4netns']))
    .option('--publish <host:pod[/proto]>', 'rootless: forward a host port into the pod (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(
      async (
        id: string,
        o: DirFlags & { rootfs?: string; pause: boolean; uidmap?: string; gidmap?: string; netBackend?: 'auto' | 'pasta' | 'slirp4netns'; publish?: string[]; pauseCmd: string[]; hostname?: string; conflist?: string; cniConfDir?: string; network?: string | boolean; ifname?: string; cniPath: string; nodeNetns?: string },
      ) => {
        const rootless = currentMode() === 'rootless';
        if ((o.netBackend !== undefined || o.publish !== undefined) && (!rootless || o.network === false)) {
          throw new UsageError(rootless ? '--net-backend and --publish go with a network: drop --no-network' : '--net-backend and --publish are for rootless mode (as root the network is CNI\'s; its portmap plugin forwards ports)');
        }
        let network: SandboxNetwork | undefined;
        if (o.network !== false && rootless && !o.conflist && !o.cniConfDir && typeof o.network !== 'string') {
          // Without root the network is slirp4netns's or pasta's (CNI flags are refused by createSandbox).
          const { parsePortSpec } = await import('../rootless/network.js');
          network = { backend: o.netBackend ?? 'auto', ...(o.ifname !== undefined ? { ifName: o.ifname } : {}), ...(o.publish ? { ports: o.publish.map(parsePortSpec) } : {}) };
        } else if (o.network !== false) {
          const base = { ifName: o.ifname ?? 'eth0', pluginPath: o.cniPath, ...(o.nodeNetns ? { nodeNetns: o.nodeNetns } : {}) };
          if (o.conflist) network = { ...base, list: (await loadNetworkListFile(o.conflist)) as unknown as Record<string, unknown> };
          else if (o.cniConfDir || typeof o.network === 'string')
            network = { ...base, ...(o.cniConfDir ? { confDir: o.cniConfDir } : {}), ...(typeof o.network === 'string' ? { name: o.network } : {}) };
          else throw new UsageError('give --conflist, --cni-conf-dir/--network, or --no-network');
        }
        if (!o.pause && o.rootfs !== undefined) throw new UsageError('--no-pause and --rootfs exclude each other');
        const ac = new AbortController();
        const off = onSignals(ac);
        try {
          const hook = testStepHook(ac.signal);
          const r = await createSandbox({
            id,
            uidMap: o.uidmap ?? (rootless ? subidDefault('uid') : '0:100000:65536'),
            ...(o.gidmap ? { gidMap: o.gidmap } : rootless && !o.uidmap ? { gidMap: subidDefault('gid') } : {}),
            ...(network ? { network } : {}),
            pause: o.rootfs !== undefined ? { rootfs: o.rootfs, command: o.pauseCmd } : false,
            ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
            runtime: runtime(o),
            ...dirs(o),
            signal: ac.signal,
            ...(hook ? { onStep: hook } : {}),
          });
          emit(io, o.json, sandboxView(r), () => rows([r]));
        } finally {
          off();
        }
      },
    );

  dirFlags(sb.command('delete').description('tear sandboxes down (a missing one is not an error)').argument('<ids...>')).action(async (ids: string[], o: DirFlags) => {
    const ac = new AbortController();
    const off = onSignals(ac);
    const out: Array<{ id: string; existed: boolean }> = [];
    try {
      const hook = testStepHook(ac.signal);
      for (const id of ids) {
        // A signal stops before the next sandbox; the one being deleted is finished.
        if (ac.signal.aborted) throw ac.signal.reason;
        out.push(await deleteSandbox(id, { ...dirs(o), ...(hook ? { onStep: hook } : {}) }));
      }
    } finally {
      off();
    }
    emit(io, o.json, out, () => out.map((r) => `${r.id}: ${r.existed ? 'deleted' : 'already gone'}`).join('\n'));
  });

  dirFlags(sb.command('list').description('list sandboxes from their state files')).action(async (o: DirFlags) => {
    const l = await listSandboxes(dirs(o));
    emit(io, o.json, l.map(sandboxView), () => rows(l));
  });

  dirFlags(sb.command('inspect').description('a sandbox, checked against what is really there').argument('<id>')).action(async (id: string, o: DirFlags) => {
    const s = await loadSandbox(id, dirs(o));
    if (!s) throw noSandbox(id);
    emit(io, o.json, sandboxView(s), () =>
      [`id:     ${s.id}`, `phase:  ${s.phase}`, `netns:  ${s.netnsPath ?? '-'} (${s.netnsPresent ? 'present' : 'missing'})`, `ips:    ${s.ips.join(', ') || '-'}`, `pause:  ${s.containerId ?? '-'} ${s.status ?? ''} pid ${s.pid ?? '-'}`].join('\n'),
    );
  });

  dirFlags(sb.command('check').description("probe a sandbox's pins, pause container and network (CNI CHECK); exit 1 if anything is wrong").argument('<id>')).action(
    async (id: string, o: DirFlags) => {
      const h = await checkSandbox(id, dirs(o));
      if (!h) throw noSandbox(id);
      const lines = () => h.checks.map((c) => `${c.name.padEnd(8)}${c.ok ? 'ok' : 'FAILED'}${c.detail ? `  ${c.detail}` : ''}`).join('\n');
      // Unhealthy: the findings stay on stdout for a person; with --json they are in the error document.
      emit(io, o.json, { ...h, mode: currentMode() }, lines);
      if (h.healthy) return;
      const wrong = h.checks.filter((c) => !c.ok);
      throw new ReportedFailure(`sandbox ${id} is unhealthy: ${wrong.map((c) => c.detail ?? c.name).join('; ')}`, 'ERR_NSTOOL_SANDBOX_UNHEALTHY', { id, checks: h.checks }, '`nstool sandbox delete` and create it again, or fix what the checks name');
    },
  );

  dirFlags(program.command('gc').description(summary('gc')))
    .option('--dry-run', 'only report; change nothing')
    .option('--cni-path <path>', 'plugin search path for DEL of cached results without state', DEFAULT_PLUGIN_PATH.join(':'))
    .option('--node-netns <path>', 'run CNI plugins inside this netns')
    .action(async (o: DirFlags & { dryRun?: boolean; cniPath: string; nodeNetns?: string }) => {
      const actions = await gc({ ...dirs(o), runtime: runtime(o), dryRun: !!o.dryRun, pluginPath: o.cniPath, ...(o.nodeNetns ? { nodeNetns: o.nodeNetns } : {}) });
      emit(io, o.json, actions, () =>
        actions.length === 0 ? 'nothing to clean' : actions.map((a) => `${o.dryRun ? 'would remove' : a.done ? 'removed' : 'FAILED'} ${a.kind} ${a.target}: ${a.reason}${a.error ? ` (${a.error})` : ''}`).join('\n'),
      );
      const failed = actions.filter((a) => a.error);
      if (failed.length > 0) {
        throw new ReportedFailure(`gc could not remove ${failed.length} of ${actions.length}: ${failed.map((a) => `${a.kind} ${a.target}`).join(', ')}`, 'ERR_NSTOOL_GC', { actions }, 'what failed is left for the next gc; each action says why');
      }
    });
}

/** Rootless --uidmap (--gidmap) default: 0 mapped to the start of the user's first /etc/subuid (subgid) range, at most 65536 ids. */
function subidDefault(kind: 'uid' | 'gid'): string {
  const uid = process.getuid?.() ?? 0;
  const own = kind === 'uid' ? uid : (process.getgid?.() ?? 0);
  let text = '';
  try {
    text = readFileSync(`/etc/sub${kind}`, 'utf8');
  } catch {
    // none: createSandbox names the fix
  }
  let user = String(uid);
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry: /etc/subuid may still name the uid
  }
  const r = parseSubid(text, user, uid)[0];
  return r ? `0:${r.start}:${Math.min(r.count, 65536)}` : `0:${own}:1`;
}

function noSandbox(id: string): NstoolError {
  return new NstoolError(`no sandbox ${id}`, { code: 'ENOENT', hint: '`nstool sandbox list` (with the same --state-dir) shows the sandboxes' });
}
