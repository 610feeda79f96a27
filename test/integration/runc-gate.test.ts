// The idmap gate: Debian's runc 1.1.5 would turn an idmapped mount into a
// plain bind silently, so nstool refuses before `runc create`; a runtime
// whose features say idmap is enabled passes.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildSpec, writeBundle } from '../../src/oci/index.js';
import { RuncClient } from '../../src/runc/client.js';
import { idmapSupport } from '../../src/runc/idmap-gate.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('gate');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];
const FEATURES = { ociVersionMin: '1.0.0', ociVersionMax: '1.1.0', linux: { mountExtensions: { idmap: { enabled: true } } } };

describeRoot('idmap gate', () => {
  let dir: string;
  let bundle: string;
  let runcRoot: string;
  const created: RuncClient[] = [];

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    runcRoot = path.join(dir, 'runc-root');
    const rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    const vol = path.join(dir, 'vol');
    mkdirSync(vol);
    bundle = path.join(dir, 'bundle');
    mkdirSync(bundle, { mode: 0o755 });
    const spec = buildSpec({
      rootfs,
      command: ['sleep', '100'],
      mounts: [{ source: vol, destination: '/vol', idmap: { uidMappings: MAP, gidMappings: MAP } }],
    });
    await writeBundle(bundle, spec);
  });

  afterAll(async () => {
    const plain = new RuncClient({ root: runcRoot, logDir: dir });
    await plain.delete(`${prefix}-ok`, { force: true }).catch(() => {});
    const left = await plain.list().catch(() => []);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  it('refuses Debian runc before create: nothing is made', async () => {
    const runc = new RuncClient({ root: runcRoot, logDir: dir });
    const s = await idmapSupport(runc);
    expect(s.supported).toBe(false);
    const err = await runc.create(`${prefix}-no`, bundle, { pidFile: path.join(bundle, 'pid') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NSTOOL_IDMAP_UNSUPPORTED' });
    expect((err as Error).message).toMatch(/runc/);
    expect((err as Error).message).toMatch(/1\.1\.5/);
    expect((err as Error).message).toMatch(/mountExtensions/);
    expect(existsSync(path.join(bundle, 'pid'))).toBe(false);
    expect(await runc.list()).toEqual([]);
  });

  it('passes a runtime whose features say idmap is enabled, and asks it once', async () => {
    const counter = path.join(dir, 'features-calls');
    const wrapper = path.join(dir, 'idmap-runtime');
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        `if [ "$1" = features ] || { [ "$1" = --root ] && [ "$5" = --log-format ] && [ "$7" = features ]; }; then`,
        `  echo x >> '${counter}'`,
        `  echo '${JSON.stringify(FEATURES)}'`,
        '  exit 0',
        'fi',
        'exec runc "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const rt = new RuncClient({ binary: wrapper, root: runcRoot, logDir: dir });
    expect((await idmapSupport(rt)).supported).toBe(true);
    const id = `${prefix}-ok`;
    await rt.create(id, bundle);
    expect((await rt.state(id)).status).toBe('created');
    expect((await rt.list()).map((c) => c.id)).toEqual([id]);
    await rt.delete(id, { force: true });
    expect(await rt.list()).toEqual([]);
    // cached per binary: one features call for the probe and the create
    expect(readFileSync(counter, 'utf8')).toBe('x\n');
  });
});
