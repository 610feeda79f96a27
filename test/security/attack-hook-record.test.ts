// Attack: the hook's --cache-dir points somewhere another local user controls
// (a misconfiguration, but one that must fail closed): that user plants a
// record naming a netns whose dev/ino they copied from stat, so post-stop
// would DEL an interface in it. A record under a dir others can change is
// no record; create-runtime refuses to write one there.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { readRecord, writeRecord } from '../../src/hook/record.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';

const P = testPrefix('hookrec');
trackLeaks(P);

describeRoot('hook record dir owned by another user', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${P}-`));
  afterAll(() => execFileSync('rm', ['-rf', tmp]));

  it('a planted record is not believed, and none is written there', async () => {
    const cache = path.join(tmp, 'cache');
    mkdirSync(path.join(cache, 'nstool-hook'), { recursive: true, mode: 0o755 });
    chownSync(cache, 65534, 65534); // the other user owns a dir on the way
    const st = statSync('/proc/self/ns/net');
    const record = {
      kind: 'nstoolHookV1',
      containerId: `${P}-c`,
      network: 'pods',
      ifName: 'eth0',
      netns: { path: '/proc/self/ns/net', dev: String(st.dev), ino: String(st.ino), source: 'flag' },
    };
    writeFileSync(path.join(cache, 'nstool-hook', `${P}-c`), JSON.stringify(record), { mode: 0o600 });
    const r = await readRecord(cache, `${P}-c`);
    expect(r.state).toBe('corrupt');
    await expect(writeRecord(cache, record as Parameters<typeof writeRecord>[1])).rejects.toMatchObject({ code: 'ERR_NSTOOL_HOOK_SETTING' });
    // Root's own dir: the same record is believed (the check is not a blanket refusal).
    chownSync(cache, 0, 0);
    expect((await readRecord(cache, `${P}-c`)).state).toBe('ok');
  });
});
