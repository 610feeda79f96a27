// Attacks on the process runner: what a child nstool starts (a runtime, a
// CNI plugin, a program in a pod) may inherit, which groups it keeps, and
// whether it outlives nstool; and the runtime client's files at rest. The
// first three run in a Node child built from dist/, so the fds, groups and
// the SIGKILL belong to that child, not the test runner.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_RUNTIME_LOG_DIR, gcRuntimeFiles, RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { makeNodeNetns, NodeNetns } from '../helpers/node-netns.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('proc');
trackLeaks(prefix);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(root, 'dist');

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs SCRIPT (an ES module; argv[1] is dist/, the rest ARGS) in a Node
 * child, started by bash with fds 200 and 251 open and not close-on-exec.
 */
function runNode(script: string, args: string[], onStart?: (pid: number) => void): Promise<ChildRun> {
  // A fixed script; everything variable goes in as positional arguments.
  const wrapper = 'exec "$@" 200</dev/null 251</dev/null';
  const child = spawn('bash', ['-c', wrapper, 'bash', process.execPath, '--input-type=module', '-e', script, DIST, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onStart?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** The fd numbers in an `ls -l /proc/self/fd` listing. */
function fdsIn(listing: string): number[] {
  return [...listing.matchAll(/\s(\d+) -> /g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** The Node child's own view of fds 200 and 251: open and without O_CLOEXEC (02000000 in fdinfo flags). */
const CHECK_FDS = `
import { readFileSync } from 'node:fs';
for (const fd of [200, 251]) {
  const flags = parseInt(readFileSync('/proc/self/fdinfo/' + fd, 'utf8').match(/flags:\\s*(\\d+)/)[1], 8);
  if (flags & 0o2000000) throw new Error('fd ' + fd + ' is close-on-exec: the test would prove nothing');
}`;

/** Process start time (field 22 of /proc/PID/stat), or null when the pid is gone or a zombie. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? null : f[19]!;
  } catch {
    return null;
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describeRoot('process runner: what children inherit and whether they outlive nstool', () => {
  let dir: string;
  let node: NodeNetns;

  beforeAll(() => {
    expect(existsSync(path.join(DIST, 'runc/client.js')), 'dist missing: run `npx tsc -p .` first').toBe(true);
    dir = traversableTempDir(prefix);
    node = makeNodeNetns(prefix);
  });

  afterAll(() => {
    node?.remove();
    if (dir) removeTree(dir);
  });

  it('fds the caller left open without O_CLOEXEC reach neither the runtime nor a CNI plugin', async () => {
    // A "runtime" and a "plugin" that record the fds they were given, then do their job.
    const runtime = path.join(dir, 'fd-runtime');
    const plugin = path.join(dir, 'fd-plugin');
    writeFileSync(runtime, `#!/bin/sh\nls -l /proc/self/fd > '${dir}/runtime.fds'\nexec runc "$@"\n`, { mode: 0o755 });
    writeFileSync(
      plugin,
      `#!/bin/sh\nls -l /proc/self/fd >> '${dir}/plugin.fds'\necho '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'\n`,
      { mode: 0o755 },
    );
    const script = `${CHECK_FDS}
const dist = process.argv[1];
const [runtime, plugin, logDir, nodeNetns] = process.argv.slice(2);
const { RuncClient } = await import(dist + '/runc/client.js');
const { invokePlugin } = await import(dist + '/cni/plugin.js');
const v = await new RuncClient({ binary: runtime, logDir }).version();
if (v.name !== 'runc') throw new Error('not runc: ' + v.raw);
const inv = { command: 'VERSION', pluginDirs: [logDir], stdin: '{"cniVersion":"1.0.0"}' };
await invokePlugin(plugin, inv);
await invokePlugin(plugin, inv, { nodeNetns });
`;
    const r = await runNode(script, [runtime, plugin, dir, node.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // ls's own directory is fd 3; nothing above it, and certainly not 200 or 251.
    expect(fdsIn(readFileSync(path.join(dir, 'runtime.fds'), 'utf8'))).toEqual([0, 1, 2, 3]);
    const plugins = readFileSync(path.join(dir, 'plugin.fds'), 'utf8').split(/^total .*$/m).filter((s) => s.trim());
    expect(plugins).toHaveLength(2);
    for (const listing of plugins) expect(fdsIn(listing)).toEqual([0, 1, 2, 3]);
  });

  it('exec into a pod whose userns denies setgroups keeps none of the caller\'s supplementary groups', async () => {
    const script = `
const dist = process.argv[1];
const name = process.argv[2];
const { createPodNetns, deletePodNetns } = await import(dist + '/netns.js');
const { execInNetns, runInNamespaces } = await import(dist + '/exec.js');
const { readFileSync } = await import('node:fs');
// A caller with host supplementary groups (adm, sudo on Debian).
process.setgroups([4, 27]);
const groups = (t) => t.match(/^Groups:(.*)$/m)[1].trim();
const ns = await createPodNetns({ name, uidMap: '0:100000:65536', setgroups: 'deny', pinUserns: true });
try {
  const a = await execInNetns(name, ['cat', '/proc/self/status']);
  const b = await runInNamespaces(['cat', '/proc/self/status'], { netns: ns.path, ownerUserns: true });
  const c = await runInNamespaces(['cat', '/proc/self/status'], { userns: ns.usernsPath });
  const self = groups(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(JSON.stringify({ self, a: groups(a.stdout), b: groups(b.stdout), c: groups(c.stdout) }));
} finally {
  await deletePodNetns(name);
}`;
    const r = await runNode(script, [`${prefix}-deny`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect(out['self']).toBe('4 27'); // the caller really holds them
    expect(out['a']).toBe('');
    expect(out['b']).toBe('');
    expect(out['c']).toBe('');
  });

  it('a plugin, a runtime and a program in a pod die with the Node process that started them', async () => {
    const pod = `${prefix}-orphan`;
    const files = { plugin: path.join(dir, 'plugin.pid'), runtime: path.join(dir, 'runtime.pid'), pod: path.join(dir, 'pod.pid') };
    // The pod's root (host uid 100000) writes its pid into a file made writable for it.
    for (const f of Object.values(files)) writeFileSync(f, '');
    chmodSync(files.pod, 0o666);
    const sleeper = (file: string) => `#!/bin/sh\necho $$ > '${file}'\nexec sleep 1000\n`;
    writeFileSync(path.join(dir, 'sleepy-plugin'), sleeper(files.plugin), { mode: 0o755 });
    writeFileSync(path.join(dir, 'sleepy-runtime'), sleeper(files.runtime), { mode: 0o755 });
    const script = `
const dist = process.argv[1];
const [dir, name, podPidFile] = process.argv.slice(2);
const { createPodNetns } = await import(dist + '/netns.js');
const { execInNetns } = await import(dist + '/exec.js');
const { RuncClient } = await import(dist + '/runc/client.js');
const { invokePlugin } = await import(dist + '/cni/plugin.js');
await createPodNetns({ name, uidMap: '0:100000:65536' });
const inv = { command: 'ADD', containerId: 'x', netns: '/proc/self/ns/net', ifName: 'eth0', pluginDirs: [dir], stdin: '{}' };
invokePlugin(dir + '/sleepy-plugin', inv).catch(() => {});
new RuncClient({ binary: dir + '/sleepy-runtime', logDir: dir }).list().catch(() => {});
execInNetns(name, ['sh', '-c', 'echo $$ > "$0"; exec sleep 1000', podPidFile]).catch(() => {});
setInterval(() => {}, 1000);
`;
    let nodePid = 0;
    const running = runNode(script, [dir, pod, files.pod], (pid) => (nodePid = pid));
    const started: Array<{ pid: number; start: string }> = [];
    try {
      const pids = () => Object.values(files).map((f) => Number(readFileSync(f, 'utf8').trim()));
      await until('the three children to start', () => pids().every((p) => p > 0 && startTime(p) !== null));
      for (const pid of pids()) started.push({ pid, start: startTime(pid)! });
      process.kill(nodePid, 'SIGKILL');
      const r = await running;
      expect(r.signal).toBe('SIGKILL');
      // Bounded: the death signal is immediate, the reaper may take a moment.
      const alive = () => started.filter((s) => startTime(s.pid) === s.start);
      await until('the children to die', () => alive().length === 0).catch(() => {});
      expect(alive()).toEqual([]);
    } finally {
      // On the old code the children survive: do not leave them running.
      for (const s of started) if (startTime(s.pid) === s.start) process.kill(s.pid, 'SIGKILL');
      if (nodePid && startTime(nodePid) !== null) process.kill(nodePid, 'SIGKILL');
      await running;
      const { deletePodNetns } = await import('../../src/netns.js');
      await deletePodNetns(pod).catch(() => {});
    }
  });
});

describeRoot('runtime client files at rest', () => {
  let dir: string;

  beforeAll(() => {
    dir = traversableTempDir(`${prefix}-logs`);
  });

  afterAll(() => {
    if (dir) removeTree(dir);
  });

  /** A fake runtime recording the mode of the --log file it was given. */
  function fakeRuntime(name: string): { binary: string; seen: string } {
    const binary = path.join(dir, name);
    const seen = path.join(dir, `${name}.seen`);
    writeFileSync(
      binary,
      `#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ "$1" = --log ]; then stat -c '%a %n' "$2" > '${seen}'; fi; shift; done\necho '[]'\n`,
      { mode: 0o755 },
    );
    return { binary, seen };
  }

  it('the runtime log is 0600 while it runs, and files of dead processes are swept', async () => {
    const logs = path.join(dir, 'logs');
    const dead = spawnSync('true').pid!;
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const myStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    const names = {
      dead: `${dead}-1234-log-0123456789ab.json`,
      reused: `${process.pid}-1-process-0123456789ab.json`, // our pid, another process's start time
      live: `${process.pid}-${myStart}-log-0123456789ab.json`,
      foreign: `${dead}-1234-log-notours.json`,
    };
    mkdirSync(logs, { mode: 0o700 });
    for (const n of Object.values(names)) writeFileSync(path.join(logs, n), '{}', { mode: 0o600 });
    const rt = fakeRuntime('rt');
    expect(await new RuncClient({ binary: rt.binary, logDir: logs }).list()).toEqual([]);
    const [mode, file] = readFileSync(rt.seen, 'utf8').trim().split(' ');
    expect(mode).toBe('600');
    expect(path.dirname(file!)).toBe(logs);
    expect(path.basename(file!)).toMatch(new RegExp(`^${process.pid}-${myStart}-log-[0-9a-f]{12}\\.json$`));
    const left = readdirSync(logs).sort();
    expect(left).toEqual([names.foreign, names.live].sort());
    // gc can call the sweep itself; the live file is ours and stays.
    expect(await gcRuntimeFiles(logs)).toEqual([]);
  });

  it('by default they live in a 0700 dir under /run/nstool, which stays traversable', async () => {
    const rt = fakeRuntime('rt-default');
    await new RuncClient({ binary: rt.binary }).list();
    const file = readFileSync(rt.seen, 'utf8').trim().split(' ')[1]!;
    expect(path.dirname(file)).toBe(DEFAULT_RUNTIME_LOG_DIR);
    expect(statSync(DEFAULT_RUNTIME_LOG_DIR).mode & 0o777).toBe(0o700);
    expect(statSync(path.dirname(DEFAULT_RUNTIME_LOG_DIR)).mode & 0o011).toBe(0o011);
    expect(() => statSync(file)).toThrow();
  });
});
