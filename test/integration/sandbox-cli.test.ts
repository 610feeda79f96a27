// The sandbox commands spawned as a user runs them, with --json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { containerIdOf } from '../../src/sandbox/names.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { bridgeNetwork, makeNodeNetns, NodeNetns } from '../helpers/node-netns.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('sbcli');
trackLeaks(P);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

describeRoot('nstool sandbox and gc commands', () => {
  let node: NodeNetns;
  let tmp: string;
  let flags: string[];
  beforeAll(() => {
    node = makeNodeNetns(P);
    tmp = traversableTempDir(P);
    mkdirSync(path.join(tmp, 'runc'), { mode: 0o700 });
    flags = [
      '--state-dir', path.join(tmp, 'state'),
      '--bundle-dir', path.join(tmp, 'bundles'),
      '--cni-cache-dir', path.join(tmp, 'cni'),
      '--runtime-root', path.join(tmp, 'runc'),
      '--pin-dir', path.join(tmp, 'netns'),
      '--userns-pin-dir', path.join(tmp, 'userns'),
    ];
  });
  afterAll(() => {
    nstool(['gc', ...flags, '--node-netns', node.path]);
    node.remove();
    for (const d of ['netns', 'userns'].map((n) => path.join(tmp, n))) while (mountPoints().includes(d)) execFileSync('umount', [d]);
    removeTree(tmp);
  });
  function pauseStatus(containerId: string): string {
    const r = spawnSync('runc', ['--root', path.join(tmp, 'runc'), 'state', containerId], { encoding: 'utf8' });
    return r.status === 0 ? (JSON.parse(r.stdout) as { status: string }).status : 'missing';
  }
  function nstool(args: string[]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  it('create, list, inspect, delete and gc with --json', () => {
    const { net, list } = bridgeNetwork(`${P}-net`, path.join(tmp, 'ipam'));
    const conflist = path.join(tmp, 'net.conflist');
    writeFileSync(conflist, JSON.stringify(list));
    const rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs'));
    const id = `${P}-a`;
    const c = nstool(['sandbox', 'create', id, '--rootfs', rootfs, '--conflist', conflist, '--node-netns', node.path, ...flags, '--json']);
    expect(c.code, c.err).toBe(0);
    const made = JSON.parse(c.out) as { id: string; phase: string; ips: string[]; netnsPath: string; containerId: string; pid: number };
    expect(made).toMatchObject({ id, phase: 'ready', netnsPath: path.join(tmp, 'netns', made.containerId) });
    // One vocabulary: namespaces as {path}, the pause container by id; the old names are aliases.
    expect(made).toMatchObject({
      netns: { path: made.netnsPath },
      userns: { path: path.join(tmp, 'userns', made.containerId) },
      pause: { id: made.containerId, pid: made.pid },
    });
    expect(made.containerId).toMatch(new RegExp(`^nstool-sb-[0-9a-f]{8}-${id}$`));
    expect(made.ips[0]!.startsWith(net.base)).toBe(true);

    const l = nstool(['sandbox', 'list', ...flags, '--json']);
    const listed = JSON.parse(l.out) as Array<Record<string, unknown>>;
    expect(listed).toMatchObject([{ id, ips: made.ips }]);
    // create and list: the same keys in the same order.
    expect(Object.keys(listed[0]!)).toEqual(Object.keys(made));
    const i = nstool(['sandbox', 'inspect', id, ...flags, '--json']);
    expect(JSON.parse(i.out)).toMatchObject({ id, status: 'running', netnsPresent: true, netns: { present: true }, pause: { status: 'running' } });

    const healthy = nstool(['sandbox', 'check', id, ...flags, '--json']);
    expect(healthy.code, healthy.err).toBe(0);
    const report = JSON.parse(healthy.out) as { healthy: boolean; checks: Array<{ name: string; ok: boolean }> };
    expect(report.healthy).toBe(true);
    expect(report.checks.map((x) => [x.name, x.ok])).toEqual([['state', true], ['netns', true], ['userns', true], ['pause', true], ['network', true]]);

    expect(JSON.parse(nstool(['gc', ...flags, '--dry-run', '--json']).out)).toEqual([]);
    // The pause container dies: check says so, exit 1, the findings in the error document.
    execFileSync('runc', ['--root', path.join(tmp, 'runc'), 'kill', made.containerId, 'KILL']);
    for (let n = 0; n < 100 && pauseStatus(made.containerId) !== 'stopped'; n++) execFileSync('sleep', ['0.05']);
    const sick = nstool(['sandbox', 'check', id, ...flags, '--json']);
    expect(sick.code, sick.err).toBe(1);
    const e = (JSON.parse(sick.out) as { error: { code: string; id: string; checks: Array<{ name: string; ok: boolean }> } }).error;
    expect(e).toMatchObject({ code: 'ERR_NSTOOL_SANDBOX_UNHEALTHY', id });
    expect(e.checks.filter((x) => !x.ok).map((x) => x.name)).toEqual(['pause']);
    const sickText = nstool(['sandbox', 'check', id, ...flags]);
    expect(sickText.code).toBe(1);
    expect(sickText.out).toMatch(/^pause\s+FAILED/m);
    expect(sickText.err).toContain('unhealthy');

    const d = nstool(['sandbox', 'delete', id, ...flags, '--json']);
    expect(JSON.parse(d.out)).toEqual([{ id, existed: true }]);
    expect(JSON.parse(nstool(['sandbox', 'list', ...flags, '--json']).out)).toEqual([]);
    expect(nstool(['sandbox', 'inspect', id, ...flags]).code).toBe(1);
  });

  it('create and list print the same columns; a terminal gets a header row, a pipe does not', async () => {
    const rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs-cols'));
    const id = `${P}-cols`;
    const c = nstool(['sandbox', 'create', id, '--rootfs', rootfs, '--no-network', ...flags]);
    try {
      expect(c.code, c.err).toBe(0);
      const line = c.out.trim();
      expect(line.split('\t')).toEqual([id, 'ready', '-', path.join(tmp, 'netns', containerIdOf(id, { stateDir: path.join(tmp, 'state') })), expect.stringMatching(/^\d+$/)]);
      const listed = nstool(['sandbox', 'list', ...flags]).out.trim().split('\n');
      expect(listed).toContain(line);
      let out = '';
      const code = await main(['sandbox', 'list', ...flags], { stdout: (s) => void (out += s), stderr: () => {}, isTTY: true });
      expect(code).toBe(0);
      const rows = out.trim().split('\n');
      expect(rows[0]!.split(/\s+/)).toEqual(['ID', 'PHASE', 'IPS', 'NETNS', 'PID']);
      expect(rows.slice(1).map((r) => r.split(/\s+/))).toContainEqual(line.split('\t'));
    } finally {
      expect(nstool(['sandbox', 'delete', id, ...flags]).code).toBe(0);
    }
  });

  it('--sandbox ID gives exec, spec and run-pod the sandbox\'s namespaces', () => {
    const rootfs = buildBusyboxRootfs(path.join(tmp, 'rootfs-ref'));
    const id = `${P}-ref`;
    const c = nstool(['sandbox', 'create', id, '--rootfs', rootfs, '--no-network', ...flags, '--json']);
    expect(c.code, c.err).toBe(0);
    const made = JSON.parse(c.out) as { netns: { path: string }; userns: { path: string } };
    const netnsInode = statSync(made.netns.path).ino;
    const ref = ['--sandbox', id, '--sandbox-state-dir', path.join(tmp, 'state')];
    const containers = path.join(tmp, 'containers');
    const runcRoot = ['--runtime-root', path.join(tmp, 'runc'), '--state-dir', containers];
    try {
      const e = nstool(['exec', ...ref, '--json', '--', 'sh', '-c', 'cat /proc/self/uid_map; stat -L -c %i /proc/self/ns/net']);
      expect(e.code, e.err).toBe(0);
      const ran = JSON.parse(e.out) as { exitCode: number; stdout: string };
      expect(ran.exitCode).toBe(0);
      expect(ran.stdout.trim().split(/\s+/)).toEqual(['0', '100000', '65536', String(netnsInode)]);

      const spec = JSON.parse(nstool(['spec', ...ref, '--rootfs', rootfs, '--', 'true']).out) as { linux: { namespaces: Array<{ type: string; path?: string }> } };
      expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: made.netns.path });
      expect(spec.linux.namespaces).toContainEqual({ type: 'user', path: made.userns.path });

      const cid = `${P}-app`;
      const r = nstool(['run-pod', ...ref, '--id', cid, '--rootfs', rootfs, ...runcRoot, '--json', '--', 'sh', '-c', 'echo hello; exec sleep 1000']);
      expect(r.code, r.err).toBe(0);
      const rec = JSON.parse(r.out) as { id: string; pid: number; netns: { path: string }; userns: { path: string; pinned: boolean } };
      expect(rec).toMatchObject({ id: cid, netns: { path: made.netns.path }, userns: { path: made.userns.path, pinned: false } });
      try {
        expect(statSync(`/proc/${rec.pid}/ns/net`).ino).toBe(netnsInode);
        for (let n = 0; n < 100 && !readFileSync(path.join(containers, cid, 'stdout.log'), 'utf8'); n++) execFileSync('sleep', ['0.05']);
        const logs = nstool(['logs', cid, '--state-dir', containers]);
        expect(logs.code, logs.err).toBe(0);
        expect(logs.out).toBe('hello\n');
      } finally {
        expect(nstool(['rm-pod', cid, ...runcRoot]).code).toBe(0);
      }
      // Neither a netns operand and --sandbox, nor a sandbox that is not there.
      const both = nstool(['spec', '--netns', made.netns.path, ...ref, '--rootfs', rootfs, '--json', '--', 'true']);
      expect(both.code).toBe(2);
      const none = nstool(['exec', '--sandbox', `${P}-none`, '--sandbox-state-dir', path.join(tmp, 'state'), '--json', '--', 'true']);
      expect(none.code).toBe(1);
      expect(JSON.parse(none.out)).toMatchObject({ error: { code: 'ENOENT' } });
    } finally {
      expect(nstool(['sandbox', 'delete', id, ...flags]).code).toBe(0);
    }
  });

  it('refuses wrong usage with exit 2 and a bad id before any side effect', () => {
    expect(nstool(['sandbox', 'create', `${P}-u`, ...flags]).code).toBe(2); // no --rootfs
    expect(nstool(['sandbox', 'create', `${P}-u`, '--rootfs', tmp, ...flags]).code).toBe(2); // no network choice
    const bad = nstool(['sandbox', 'create', 'bad/id', '--rootfs', tmp, '--no-network', ...flags, '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out)).toMatchObject({ error: { code: 'ERR_INVALID_ARG_VALUE' } });
    // A sandbox id is called a sandbox id.
    expect((JSON.parse(bad.out) as { error: { message: string } }).error.message).toMatch(/^sandbox id /);
  });
});
