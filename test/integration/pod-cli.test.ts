// nstool spec / run-pod / rm-pod through commander, against real runc.
import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseMountFlag, registerPodCommands } from '../../src/cli/pod-commands.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('podcli');
trackLeaks(prefix);

async function cli(args: string[]): Promise<string> {
  let out = '';
  const io = { stdout: (s: string) => void (out += s), stderr: () => {} };
  const program = new Command('nstool').exitOverride();
  registerPodCommands(program, io);
  await program.parseAsync(args, { from: 'user' });
  return out;
}

it('parses --mount SRC:DST[:opts]', () => {
  expect(parseMountFlag('/a:/b')).toEqual({ source: '/a', destination: '/b' });
  expect(parseMountFlag('/a:/b:ro,idmap,rbind')).toEqual({ source: '/a', destination: '/b', readonly: true, idmap: true, recursive: true });
  for (const bad of ['/a', 'a:/b', '/a:/b:rw,zap', '/a:/b:ro:x', ':/b']) {
    expect(() => parseMountFlag(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  }
});

describeRoot('pod commands', () => {
  let dir: string;
  let rootfs: string;
  let pod: PodNetns;
  let runcRoot: string;
  let stateDir: string;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    mkdirSync(path.join(dir, 'vol'));
    runcRoot = path.join(dir, 'runc-root');
    stateDir = path.join(dir, 'state');
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: '0:200000:65536', pinUserns: true });
  });

  afterAll(async () => {
    const runc = new RuncClient({ root: runcRoot, logDir: dir });
    await cli(['rm-pod', `${prefix}-c`, `${prefix}-v`, '--state-dir', stateDir, '--runtime-root', runcRoot]).catch(() => {});
    const left = await runc.list().catch(() => []);
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  it('spec prints a config joining the pod namespaces with their maps', async () => {
    const spec = JSON.parse(await cli(['spec', '--netns', pod.name, '--rootfs', rootfs, '--mount', `${dir}/vol:/vol:ro,idmap`, '--', 'sleep', '5'])) as {
      process: { args: string[] };
      linux: { namespaces: Array<{ type: string; path?: string }>; uidMappings: unknown };
      mounts: Array<{ destination: string; uidMappings?: unknown; options?: string[] }>;
    };
    expect(spec.process.args).toEqual(['sleep', '5']);
    expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: pod.path });
    expect(spec.linux.namespaces).toContainEqual({ type: 'user', path: pod.usernsPath });
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
    const vol = spec.mounts.find((m) => m.destination === '/vol')!;
    expect(vol.uidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
    expect(vol.options).toContain('ro');

    const bundle = path.join(dir, 'b');
    const out = JSON.parse(await cli(['spec', '--netns', pod.name, '--rootfs', rootfs, '--bundle', bundle, '--json', '--', 'true'])) as { config: string };
    expect(out.config).toBe(path.join(bundle, 'config.json'));
    expect(JSON.parse(readFileSync(out.config, 'utf8')).process.args).toEqual(['true']);
  });

  it('run-pod starts a container in the pod, rm-pod removes every trace', async () => {
    const id = `${prefix}-c`;
    const rec = JSON.parse(
      await cli(['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--json', '--', 'sleep', '1000']),
    ) as { id: string; pid: number; bundle: string; staged: string[] };
    expect(rec.id).toBe(id);
    const runc = new RuncClient({ root: runcRoot, logDir: dir });
    expect(await runc.state(id)).toMatchObject({ status: 'running', pid: rec.pid });
    expect(mountPoints()).toContain(path.join(stateDir, id, 'rootfs'));

    const removed = JSON.parse(await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot, '--json'])) as unknown;
    expect(removed).toEqual([{ id, existed: true }]);
    expect(await runc.list()).toEqual([]);
    expect(existsSync(rec.bundle)).toBe(false);
    expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
  });

  it('run-pod refuses a writable idmap volume other users can reach unless --allow-unsafe-idmap-volumes', async () => {
    const id = `${prefix}-v`;
    const args = ['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--mount', `${dir}/vol:/vol:idmap`];
    await expect(cli([...args, '--', 'sleep', '1000'])).rejects.toMatchObject({ code: 'ERR_NSTOOL_VOLUME_UNSAFE', path: `${dir}/vol` });
    expect(existsSync(path.join(stateDir, id))).toBe(false);
    // Read-only is fine as it is; writable only with the opt-in.
    const ro = ['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--mount', `${dir}/vol:/vol:ro,idmap`];
    expect(JSON.parse(await cli([...ro, '--json', '--', 'sleep', '1000']))).toMatchObject({ id });
    await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot]);
    expect(JSON.parse(await cli([...args, '--allow-unsafe-idmap-volumes', '--json', '--', 'sleep', '1000']))).toMatchObject({ id });
    await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot]);
    expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
  });
});
