// The attack: a writable idmapped volume whose path runs through a dir another
// user owns, below which a root-only dir seemed to close it off. That user
// can rename the root-only dir away and put a link to a place everyone
// reaches in its stead, between nstool's check and the mount: the pod's root
// then writes setuid-root files others run. A dir another user owns (or may
// write without the sticky bit) above the source opens it as much as one
// at the source: it must be refused like one.
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkIdmapVolumes } from '../../src/pod/idmap-fallback.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('atkvol');
trackLeaks(prefix);
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

function asNobody(argv: string[]): number | null {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@"', 'sh', ...argv]).status;
}

describeRoot('attack: a volume below a dir another user owns', () => {
  let dir: string;

  beforeAll(() => {
    dir = traversableTempDir(prefix);
  });

  afterAll(() => {
    removeTree(dir);
  });

  it('is refused as unsafe although a root-only dir sits between', async () => {
    const home = path.join(dir, 'home');
    mkdirSync(home, { mode: 0o755 });
    chownSync(home, 65534, 65534); // a user's home
    const priv = path.join(home, 'private');
    mkdirSync(priv, { mode: 0o700 });
    const vol = path.join(priv, 'vol');
    mkdirSync(vol, { mode: 0o755 });
    // The owner of HOME can swap PRIVATE, root's as it is: renaming it is HOME's business.
    expect(asNobody(['mv', priv, path.join(home, 'moved')])).toBe(0);
    expect(asNobody(['mv', path.join(home, 'moved'), priv])).toBe(0);
    const mounts = [{ source: vol, destination: '/vol', type: 'bind', options: ['rbind', 'idmap'] }];
    await expect(checkIdmapVolumes(mounts, MAP)).rejects.toMatchObject({ code: 'ERR_NSTOOL_VOLUME_UNSAFE', path: vol });
  });
});
