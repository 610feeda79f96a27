import { describe, expect, it } from 'vitest';
import { checkReply, parsePidLine } from '../../src/rootless/protocol.js';
import { hasSysAdmin, isInitialUidMap } from '../../src/rootless/mode.js';
import { runtimeDirs } from '../../src/rootless/runtime-dir.js';
import { isOwnIdOnly, parseSubid } from '../../src/rootless/subid.js';

describe('rootless mode detection', () => {
  it('reads CAP_SYS_ADMIN (bit 21) from CapEff', () => {
    const status = (eff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t${eff}\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\n`;
    expect(hasSysAdmin(status('000001ffffffffff'))).toBe(true);
    expect(hasSysAdmin(status('0000000000200000'))).toBe(true);
    expect(hasSysAdmin(status('000001ffffdfffff'))).toBe(false);
    expect(hasSysAdmin(status('0000000000000000'))).toBe(false);
    expect(hasSysAdmin('Name:\tnode\n')).toBe(false);
  });

  it('takes only the full identity map for the initial user namespace', () => {
    expect(isInitialUidMap('         0          0 4294967295\n')).toBe(true);
    expect(isInitialUidMap('         0       1000          1\n')).toBe(false);
    expect(isInitialUidMap('         0          0 4294967294\n')).toBe(false);
    expect(isInitialUidMap('         0          0 4294967295\n         0          0          1\n')).toBe(false);
    expect(isInitialUidMap('')).toBe(false);
  });
});

describe('subordinate ids', () => {
  const text = ['alice:100000:65536', '1001:300000:10', 'bob:200000:65536', 'alice:x:1', 'alice:5:0', 'alice:4294967290:10', '# alice:1:1', 'alice:400000:65536:extra'].join('\n');

  it('finds the ranges of a user by name or uid, skipping malformed lines', () => {
    expect(parseSubid(text, 'alice', 1001)).toEqual([
      { start: 100000, count: 65536 },
      { start: 300000, count: 10 },
    ]);
    expect(parseSubid(text, 'carol', 1002)).toEqual([]);
  });

  it('tells a lone own id from a map that needs newuidmap', () => {
    expect(isOwnIdOnly([{ containerID: 0, hostID: 1001, size: 1 }], 1001)).toBe(true);
    expect(isOwnIdOnly([{ containerID: 0, hostID: 1001, size: 2 }], 1001)).toBe(false);
    expect(isOwnIdOnly([{ containerID: 0, hostID: 1002, size: 1 }], 1001)).toBe(false);
    expect(isOwnIdOnly([{ containerID: 0, hostID: 1001, size: 1 }, { containerID: 1, hostID: 100000, size: 1 }], 1001)).toBe(false);
  });
});

describe('the keeper protocol, as read back', () => {
  it('validates the pid file line before it forms a path', () => {
    expect(parsePidLine('1234 98765\n')).toEqual({ pid: 1234, start: '98765' });
    for (const bad of ['0 1\n', '01 1\n', '1234 98765', '1234 98765\n\n', '1234  1\n', '../1 2\n', '99999999999 1\n', '-1 2\n', '1 2 3\n']) {
      expect(parsePidLine(bad), bad).toBeNull();
    }
  });

  it('turns "err STEP ERRNO" into an error with the errno\'s code and anything else into ERR_NSTOOL_KEEPER', () => {
    expect(checkReply('ok 12 34\n', 'pin')).toBe('12 34');
    expect(() => checkReply('err pin-netns 17\n', 'pin')).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'pin-netns', errno: -17 }));
    expect(() => checkReply('err request 22\n', 'pin')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    for (const junk of ['', 'OK', 'okay', 'err', 'err x y\n', 'err ../x 1\n', 'err pin 1 2\n']) {
      expect(() => checkReply(junk, 'ping'), JSON.stringify(junk)).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_KEEPER' }));
    }
  });
});

describe('the runtime directory', () => {
  it('is $XDG_RUNTIME_DIR/nstool, else /run/user/UID/nstool', () => {
    expect(runtimeDirs({ XDG_RUNTIME_DIR: '/run/user/1000/' }, 1000)).toMatchObject({
      dir: '/run/user/1000/nstool',
      sock: '/run/user/1000/nstool/keeper.sock',
      netns: '/run/user/1000/nstool/pins/netns',
    });
    expect(runtimeDirs({}, 1234).dir).toBe('/run/user/1234/nstool');
    expect(runtimeDirs({ XDG_RUNTIME_DIR: '' }, 1234).dir).toBe('/run/user/1234/nstool');
  });

  it('refuses a relative one, and one too long for a unix socket, with ERR_NSTOOL_RUNTIME_DIR', () => {
    for (const xdg of ['run/user/1000', '/x'.repeat(60)]) {
      expect(() => runtimeDirs({ XDG_RUNTIME_DIR: xdg }, 1000)).toThrow(expect.objectContaining({ code: 'ERR_NSTOOL_RUNTIME_DIR' }));
    }
  });
});
