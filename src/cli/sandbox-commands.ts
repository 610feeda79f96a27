// nstool sandbox create|delete|list|inspect, nstool gc
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { NstoolError } from '../errors.js';
import { createSandbox, deleteSandbox, gc, listSandboxes, loadSandbox } from '../sandbox/index.js';
import type { SandboxDirs, SandboxNetwork } from '../sandbox/index.js';
import { emit, ExitCode, Io, UsageError, withJson } from './context.js';

interface DirFlags {
  stateDir?: string;
  bundleDir?: string;
  pinDir?: string;
  cniCacheDir?: string;
  runtime?: string;
  runtimeRoot?: string;
  json?: boolean;
}

function dirFlags(cmd: Command): Command {
  return withJson(cmd)
    .option('--state-dir <dir>', 'sandbox state files', '/run/nstool/sandboxes')
    .option('--bundle-dir <dir>', 'pause container bundles', '/run/nstool/bundles')
    .option('--pin-dir <dir>', 'netns pins', '/run/netns')
    .option('--cni-cache-dir <dir>', 'CNI result cache', '/var/lib/cni')
    .option('--runtime <binary>', 'OCI runtime', 'runc')
    .option('--runtime-root <dir>', 'runtime state dir (runc --root)');
}

function dirs(o: DirFlags): SandboxDirs {
  return {
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.bundleDir ? { bundleDir: o.bundleDir } : {}),
    ...(o.pinDir ? { pinDir: o.pinDir } : {}),
    ...(o.cniCacheDir ? { cniCacheDir: o.cniCacheDir } : {}),
  };
}

function runtime(o: DirFlags) {
  return { binary: o.runtime ?? 'runc', ...(o.runtimeRoot ? { root: o.runtimeRoot } : {}) };
}

export function registerSandboxCommands(program: Command, io: Io): void {
  const sb = program.command('sandbox').description('pod sandboxes: netns + CNI network + pause container');

  dirFlags(sb.command('create').description('create a pod sandbox and print its id, netns and IPs').argument('<id>'))
    .requiredOption('--rootfs <dir>', 'root filesystem of the pause container')
    .option('--uidmap <map>', 'uid mappings containerID:hostID:size[,...]', '0:100000:65536')
    .option('--gidmap <map>', 'gid mappings (default: the uid mappings)')
    .option('--pause-cmd <cmd...>', 'pause command', ['sleep', '2147483647'])
    .option('--conflist <file>', 'CNI network config list (.conflist or .conf)')
    .option('--cni-conf-dir <dir>', 'load the network from this dir (default /etc/cni/net.d with --network)')
    .option('--network <name>', 'network name to pick from the conf dir')
    .option('--ifname <name>', 'interface name in the pod', 'eth0')
    .option('--cni-path <path>', 'plugin search path', '/usr/lib/cni:/opt/cni/bin')
    .option('--node-netns <path>', 'run CNI plugins inside this netns')
    .option('--no-network', 'only lo')
    .action(async (id: string, o: DirFlags & { rootfs: string; uidmap: string; gidmap?: string; pauseCmd: string[]; conflist?: string; cniConfDir?: string; network?: string | boolean; ifname: string; cniPath: string; nodeNetns?: string }) => {
      let network: SandboxNetwork | undefined;
      if (o.network !== false) {
        const base = { ifName: o.ifname, pluginPath: o.cniPath, ...(o.nodeNetns ? { nodeNetns: o.nodeNetns } : {}) };
        if (o.conflist) network = { ...base, list: JSON.parse(await readFile(o.conflist, 'utf8')) as Record<string, unknown> };
        else if (o.cniConfDir || typeof o.network === 'string')
          network = { ...base, ...(o.cniConfDir ? { confDir: o.cniConfDir } : {}), ...(typeof o.network === 'string' ? { name: o.network } : {}) };
        else throw new UsageError('give --conflist, --cni-conf-dir/--network, or --no-network');
      }
      const r = await createSandbox({
        id,
        uidMap: o.uidmap,
        ...(o.gidmap ? { gidMap: o.gidmap } : {}),
        ...(network ? { network } : {}),
        pause: { rootfs: o.rootfs, command: o.pauseCmd },
        runtime: runtime(o),
        ...dirs(o),
      });
      emit(io, o.json, r, () => `${r.id}\t${r.netnsPath}\t${r.ips.join(',') || '-'}\tpid ${r.pid}`);
    });

  dirFlags(sb.command('delete').description('tear sandboxes down (a missing one is not an error)').argument('<ids...>')).action(async (ids: string[], o: DirFlags) => {
    const out: Array<{ id: string; existed: boolean }> = [];
    for (const id of ids) out.push(await deleteSandbox(id, dirs(o)));
    emit(io, o.json, out, () => out.map((r) => `${r.id}: ${r.existed ? 'deleted' : 'already gone'}`).join('\n'));
  });

  dirFlags(sb.command('list').description('list sandboxes from their state files')).action(async (o: DirFlags) => {
    const l = await listSandboxes(dirs(o));
    emit(io, o.json, l, () => l.map((s) => `${s.id}\t${s.phase}\t${s.ips.join(',') || '-'}\t${s.netnsPath ?? '-'}`).join('\n'));
  });

  dirFlags(sb.command('inspect').description('a sandbox, checked against what is really there').argument('<id>')).action(async (id: string, o: DirFlags) => {
    const s = await loadSandbox(id, dirs(o));
    if (!s) throw new NstoolError(`no sandbox ${id}`, { code: 'ENOENT', hint: '`nstool sandbox list` shows the sandboxes' });
    emit(io, o.json, s, () =>
      [`id:     ${s.id}`, `phase:  ${s.phase}`, `netns:  ${s.netnsPath ?? '-'} (${s.netnsPresent ? 'present' : 'missing'})`, `ips:    ${s.ips.join(', ') || '-'}`, `pause:  ${s.containerId ?? '-'} ${s.status ?? ''} pid ${s.pid ?? '-'}`].join('\n'),
    );
  });

  dirFlags(program.command('gc').description('remove what crashed creates and deletes left behind'))
    .option('--dry-run', 'only report')
    .option('--cni-path <path>', 'plugin search path', '/usr/lib/cni:/opt/cni/bin')
    .option('--node-netns <path>', 'run CNI plugins inside this netns')
    .action(async (o: DirFlags & { dryRun?: boolean; cniPath: string; nodeNetns?: string }) => {
      const actions = await gc({ ...dirs(o), runtime: runtime(o), dryRun: !!o.dryRun, pluginPath: o.cniPath, ...(o.nodeNetns ? { nodeNetns: o.nodeNetns } : {}) });
      emit(io, o.json, actions, () =>
        actions.length === 0 ? 'nothing to clean' : actions.map((a) => `${o.dryRun ? 'would remove' : a.done ? 'removed' : 'FAILED'} ${a.kind} ${a.target}: ${a.reason}${a.error ? ` (${a.error})` : ''}`).join('\n'),
      );
      if (actions.some((a) => a.error)) throw new ExitCode(1);
    });
}
