import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseNetRecord, parsePortSpec } from '../../src/rootless/network.js';

describe('port specs', () => {
  it('reads [HOSTIP:]HOSTPORT:PODPORT[/tcp|/udp], tcp by default', () => {
    expect(parsePortSpec('8080:80')).toEqual({ hostPort: 8080, podPort: 80, protocol: 'tcp' });
    expect(parsePortSpec('127.0.0.1:8080:80/udp')).toEqual({ hostIp: '127.0.0.1', hostPort: 8080, podPort: 80, protocol: 'udp' });
    expect(parsePortSpec('0.0.0.0:1:65535/tcp')).toEqual({ hostIp: '0.0.0.0', hostPort: 1, podPort: 65535, protocol: 'tcp' });
  });

  it('refuses anything else with ERR_INVALID_ARG_VALUE', () => {
    for (const bad of ['', '80', '0:80', '8080:0', '65536:80', '8080:80/sctp', '256.0.0.1:8080:80', '::1:8080:80', '[::1]:8080:80', 'a:8080:80', '8080:80 ', ' 8080:80', '8080:80/TCP', '1.2.3:8080:80', '8080-8090:80']) {
      expect(() => parsePortSpec(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => parsePortSpec(8080 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('network records read back from disk', () => {
  const saved = process.env['XDG_RUNTIME_DIR'];
  beforeEach(() => {
    process.env['XDG_RUNTIME_DIR'] = '/run/user/4242';
  });
  afterEach(() => {
    if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
    else process.env['XDG_RUNTIME_DIR'] = saved;
  });

  const good = {
    backend: 'slirp4netns',
    pid: 1234,
    start: '987654',
    ifname: 'tap0',
    ips: ['10.0.2.100/24'],
    gateway: '10.0.2.2',
    dns: '10.0.2.3',
    ports: [{ hostIp: '127.0.0.1', hostPort: 8080, podPort: 80, protocol: 'tcp' }],
    apiSocket: '/run/user/4242/nstool/net/0123456789ab-01234567.sock',
    log: '/run/user/4242/nstool/net/0123456789ab-01234567.log',
  };

  it('takes a record as startRootlessNetwork writes it, and only its known fields', () => {
    expect(parseNetRecord(good)).toEqual(good);
    expect(parseNetRecord(JSON.parse(JSON.stringify({ ...good, extra: 'x' })))).toEqual(good);
    const { apiSocket: _a, log: _l, dns: _d, ...bare } = good;
    expect(parseNetRecord({ ...bare, backend: 'pasta', ports: [] })).toEqual({ ...bare, backend: 'pasta', ports: [] });
  });

  it('refuses a record whose files are not under this user\'s net dir, or whose fields are malformed', () => {
    const bad: Array<Record<string, unknown>> = [
      { ...good, log: '/etc/passwd' },
      { ...good, log: '/run/user/4242/nstool/net/../../../../etc/shadow' },
      { ...good, log: '/run/user/4242/nstool/net/0123456789ab-01234567.sock' },
      { ...good, apiSocket: '/run/user/999/nstool/net/0123456789ab-01234567.sock' },
      { ...good, apiSocket: '/run/user/4242/nstool/net/x.sock' },
      { ...good, backend: 'vpnkit' },
      { ...good, pid: 0 },
      { ...good, pid: 1.5 },
      { ...good, pid: '1234' },
      { ...good, pid: 2 ** 31 },
      { ...good, start: '12a' },
      { ...good, start: 12 },
      { ...good, ifname: 'a/b' },
      { ...good, ifname: 'x'.repeat(16) },
      { ...good, ips: ['10.0.2.100'] },
      { ...good, ips: '10.0.2.100/24' },
      { ...good, gateway: '10.0.2.256' },
      { ...good, dns: 'localhost' },
      { ...good, ports: [{ hostPort: 0, podPort: 80, protocol: 'tcp' }] },
      { ...good, ports: [{ hostPort: 80, podPort: 80, protocol: 'tcp' }, { hostPort: 80, podPort: 81, protocol: 'tcp' }] },
      { ...good, ports: undefined },
    ];
    for (const r of bad) expect(parseNetRecord(r), JSON.stringify(r)).toBeNull();
    for (const junk of [null, undefined, 'x', 1, [], [good]]) expect(parseNetRecord(junk)).toBeNull();
  });
});
