// The runc client against the real runc: lifecycle, typed errors carrying
// runc's own message, and the process hygiene (no NOTIFY_SOCKET, timeouts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, miniSpec, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('runc');
trackLeaks(prefix);

describeRoot('runc client', () => {
  let dir: string;
  let rootfs: string;
  let runc: RuncClient;
  const created: string[] = [];

  function bundle(name: string, args: string[]): string {
    const b = path.join(dir, name);
    mkdirSync(b, { mode: 0o755 });
    writeFileSync(path.join(b, 'config.json'), JSON.stringify(miniSpec({ rootfs, args })));
    return b;
  }

  beforeAll(() => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    runc = new RuncClient({ root: path.join(dir, 'runc-root'), logDir: dir, timeoutMs: 20_000 });
  });

  afterAll(async () => {
    for (const id of created) await runc.delete(id, { force: true }).catch(() => {});
    // Nothing of ours may be left in runc's state.
    const left = runc ? await runc.list().catch(() => []) : [];
    removeTree(dir);
    expect(left.map((c) => c.id)).toEqual([]);
  });

  it('reports version and features of Debian runc', async () => {
    const v = await runc.version();
    expect(v.name).toBe('runc');
    expect(v.version).toMatch(/^1\.\d+\.\d+/);
    const f = await runc.features();
    expect(f['ociVersionMin']).toBe('1.0.0');
    expect(Array.isArray(f['hooks'])).toBe(true);
  });

  it('creates, starts, execs in, kills and deletes a container', async () => {
    const id = `${prefix}-life`;
    const b = bundle('life', ['sleep', '1000']);
    created.push(id);
    await runc.create(id, b, { pidFile: path.join(b, 'pid') });
    const pid = Number(readFileSync(path.join(b, 'pid'), 'utf8'));
    expect((await runc.state(id)).status).toBe('created');
    await runc.start(id);
    const st = await runc.state(id);
    expect(st).toMatchObject({ id, status: 'running', pid, bundle: b });
    expect((await runc.list()).map((c) => c.id)).toEqual([id]);

    const r = await runc.exec(id, ['cat', '/etc/hostname-missing']);
    expect(r.exitCode).not.toBe(0); // the program's failure is a result
    const ok = await runc.exec(id, ['sh', '-c', 'echo $FOO; cat'], { env: { FOO: 'bar' }, input: 'from-stdin' });
    expect(ok).toMatchObject({ exitCode: 0, stdout: 'bar\nfrom-stdin' });
    const viaProcess = await runc.exec(id, { args: ['id', '-u'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } });
    expect(viaProcess.stdout.trim()).toBe('0');

    await runc.kill(id, 'KILL');
    for (let i = 0; i < 100 && (await runc.state(id)).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await runc.state(id)).status).toBe('stopped');
    await runc.delete(id);
    created.pop();
    expect(await runc.list()).toEqual([]);
  });

  it('a bundle without config.json is a typed error with runc\'s message', async () => {
    const b = path.join(dir, 'empty');
    mkdirSync(b);
    const err = await runc.create(`${prefix}-bad`, b).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RuntimeError', code: 'ERR_NSTOOL_RUNTIME', reason: 'other', exitCode: 1 });
    expect((err as { runtimeMessage: string }).runtimeMessage).toMatch(/config\.json/);
    expect((err as { argv: string[] }).argv).toContain(`${prefix}-bad`);
    expect(await runc.list()).toEqual([]);
  });

  it('a duplicate id is a typed error, the first container untouched', async () => {
    const id = `${prefix}-dup`;
    const b = bundle('dup', ['sleep', '1000']);
    created.push(id);
    await runc.create(id, b);
    const err = await runc.create(id, b).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'exists', exitCode: 1 });
    expect((await runc.state(id)).status).toBe('created');
    await runc.delete(id, { force: true });
    created.pop();
  });

  it('kill, state and exec of a missing container are typed errors', async () => {
    const id = `${prefix}-missing`;
    const calls = [() => runc.kill(id, 'KILL'), () => runc.state(id), () => runc.exec(id, ['true']), () => runc.delete(id)];
    for (const call of calls) {
      const err = await call().catch((e: unknown) => e);
      // runc exits 1, or 255 for exec's own failures.
      expect(err).toMatchObject({ code: 'ERR_NSTOOL_RUNTIME', reason: 'not-found', exitCode: expect.toBeOneOf([1, 255]) });
    }
  });

  it('drops NOTIFY_SOCKET from the runtime env; times out and aborts', async () => {
    const fake = path.join(dir, 'fake-runtime');
    const envOut = path.join(dir, 'fake-env');
    writeFileSync(fake, `#!/bin/sh\nenv > '${envOut}'\ncase "$1" in --version) echo "fakert version 9.9";; *) exec sleep 30;; esac\n`, { mode: 0o755 });
    process.env['NOTIFY_SOCKET'] = '/run/nowhere.sock';
    try {
      const c = new RuncClient({ binary: fake, logDir: dir, timeoutMs: 300 });
      expect(await c.version()).toMatchObject({ name: 'fakert', version: '9.9' });
      const env = readFileSync(envOut, 'utf8');
      expect(env).not.toMatch(/NOTIFY_SOCKET/);
      expect(env).toMatch(/^PATH=/m);
      await expect(c.list()).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      const ac = new AbortController();
      const p = c.list({ signal: ac.signal, timeoutMs: 20_000 });
      setTimeout(() => ac.abort(), 50);
      await expect(p).rejects.toMatchObject({ code: 'ABORT_ERR' });
    } finally {
      delete process.env['NOTIFY_SOCKET'];
    }
    const missing = new RuncClient({ binary: path.join(dir, 'no-such-runtime'), logDir: dir });
    await expect(missing.list()).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
