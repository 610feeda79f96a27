import { describe, expect, it } from 'vitest';
import { generateName, resolvePin, validateName } from '../../src/netns.js';
import {
  showName,
  showValue,
  validateContainerId,
  validateIfName,
  validateNetworkName,
  validatePinName,
  validatePluginType,
} from '../../src/names.js';
import { validateContainerId as runcValidateId } from '../../src/runc/args.js';
import * as cniNames from '../../src/cni/names.js';
import { errorCode } from '../helpers/errors.js';

const BAD = 'ERR_INVALID_ARG_VALUE';
const TYPE = 'ERR_INVALID_ARG_TYPE';
// Characters that change what a terminal, a log line or `ip netns list` shows.
const CONTROLS = ['\t', '\n', '\r', '\x1b', '\x7f', '\x80', '\x9b', '\x85', '\u2028', '\u2029', '\u202e', '\u2066', '\u200f', '\u061c', '\x01', '\x1f'];

describe('pin names', () => {
  it('accepts one plain path component', () => {
    expect(validateName('pod-1')).toBe('pod-1');
    expect(validateName('a'.repeat(255))).toHaveLength(255);
    expect(validateName('é'.repeat(127))).toHaveLength(127); // 254 bytes
    expect(validateName('a b')).toBe('a b');
    expect(validateName('a-')).toBe('a-');
    expect(validateName('.hidden')).toBe('.hidden');
    expect(validateName('名前😀')).toBe('名前😀'); // a surrogate pair is well-formed
    expect(generateName()).toMatch(/^pod-[0-9a-f]{16}$/);
    expect(generateName()).not.toBe(generateName());
  });

  it.each([
    '',
    'a/b',
    '..',
    '.',
    'a\0b',
    'a'.repeat(256),
    'é'.repeat(128), // 256 bytes
    '-',
    '-rf',
    '--help',
    'x\ud800', // a lone surrogate has no UTF-8 form: the file would get another name
    '\udc00x',
    ...CONTROLS.map((c) => `a${c}b`),
    ...CONTROLS,
  ])('rejects %j', (name) => {
    expect(errorCode(() => validateName(name))).toBe(BAD);
    expect(errorCode(() => validatePinName(name))).toBe(BAD);
    expect(errorCode(() => resolvePin(name))).toBe(BAD);
  });

  it('rejects non-strings with ERR_INVALID_ARG_TYPE', () => {
    for (const v of [42, null, undefined, {}, ['a'], Symbol('s')]) expect(errorCode(() => validateName(v))).toBe(TYPE);
  });

  it('resolves names under the pin dir and keeps absolute paths', () => {
    expect(resolvePin('x')).toEqual({ name: 'x', path: '/run/netns/x', named: true });
    expect(resolvePin('x', '/tmp/pins/')).toEqual({ name: 'x', path: '/tmp/pins/x', named: true });
    expect(resolvePin('/var/run/netns/../netns/y')).toEqual({ name: 'y', path: '/var/run/netns/y', named: false });
    // A path in the pin dir stands for the pin of that name.
    expect(resolvePin('/run/netns/z')).toEqual({ name: 'z', path: '/run/netns/z', named: true });
    expect(() => resolvePin('x', 'relative')).toThrow(expect.objectContaining({ code: BAD }));
  });

  it('reaches a pin another tool named oddly only by its path, and refuses paths the kernel cannot take', () => {
    expect(resolvePin('/run/netns/-x\ty')).toEqual({ name: '-x\ty', path: '/run/netns/-x\ty', named: true });
    expect(errorCode(() => resolvePin(`/${'d'.repeat(4095)}`))).toBe(BAD);
    expect(errorCode(() => resolvePin('x', `/${'d'.repeat(4095)}`))).toBe(BAD);
  });
});

describe('container ids', () => {
  it.each(['abc', 'A1', '0a_b.c-d', 'a-', 'a.', 'x'.repeat(1024)])('accepts %j', (id) => {
    expect(validateContainerId(id)).toBe(id);
  });

  it.each(['', '-a', '-rf', '_a', '.a', '..', 'a/b', 'a b', 'a:b', 'é', 'a\nb', 'a\n', '\na', 'a\0', 'x'.repeat(1025), ...CONTROLS.map((c) => `a${c}`)])(
    'rejects %j',
    (id) => {
      expect(errorCode(() => validateContainerId(id))).toBe(BAD);
    },
  );

  it('is the one rule behind the runc and CNI names', () => {
    expect(runcValidateId).toBe(validateContainerId);
    expect(cniNames.validateContainerId).toBe(validateContainerId);
    expect(cniNames.validateIfName).toBe(validateIfName);
    expect(cniNames.validateNetworkName).toBe(validateNetworkName);
    expect(cniNames.validatePluginType).toBe(validatePluginType);
    expect(validateName).toBe(validatePinName);
    expect(errorCode(() => validateContainerId(3))).toBe(TYPE);
  });
});

describe('interface names', () => {
  it.each(['eth0', 'a', 'x'.repeat(15), 'net-1.2', '-x', 'a_b@c'])('accepts %j', (n) => expect(validateIfName(n)).toBe(n));
  it.each(['', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', '.', '..', 'a\0', 'é', 'a\u00a0b', ...CONTROLS.map((c) => `a${c}`)])(
    'rejects %j',
    (n) => expect(errorCode(() => validateIfName(n))).toBe(BAD),
  );
  it('rejects non-strings with ERR_INVALID_ARG_TYPE', () => expect(errorCode(() => validateIfName(1))).toBe(TYPE));
});

describe('network names and plugin types', () => {
  it.each(['net', 'cni0', 'my_net.v2-a', 'n'.repeat(255)])('accepts network name %j', (n) => expect(validateNetworkName(n)).toBe(n));
  it.each(['', '-net', '.net', 'a/b', 'a b', 'a\nb', '..', 'n'.repeat(256), ...CONTROLS.map((c) => `a${c}`)])('rejects network name %j', (n) =>
    expect(errorCode(() => validateNetworkName(n))).toBe(BAD),
  );
  it.each(['bridge', 'host-local', 'calico-ipam'])('accepts plugin type %j', (t) => expect(validatePluginType(t)).toBe(t));
  it.each(['', '/bin/sh', '../bin/sh', '.', '..', '-x', 'a\0', ...CONTROLS.map((c) => `a${c}`)])('rejects plugin type %j', (t) =>
    expect(errorCode(() => validatePluginType(t))).toBe(BAD),
  );
  it('rejects non-strings with ERR_INVALID_ARG_TYPE', () => {
    expect(errorCode(() => validateNetworkName(undefined))).toBe(TYPE);
    expect(errorCode(() => validatePluginType({}))).toBe(TYPE);
  });
});

describe('showValue', () => {
  it('quotes strings and escapes every control character', () => {
    expect(showValue('pod-1')).toBe('"pod-1"');
    expect(showValue('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(showValue('a\tb\nc\rd')).toBe('"a\\tb\\nc\\rd"');
    expect(showValue('\x1b[31m\x7f\x9b\u2028\u202e\0')).toBe('"\\u001b[31m\\u007f\\u009b\\u2028\\u202e\\u0000"');
    expect(showValue('x\ud800')).toBe('"x\\ud800"');
    expect(showValue('é😀')).toBe('"é😀"');
    for (const c of CONTROLS) expect(showValue(c)).not.toContain(c);
  });

  it('caps a long value at 200 characters and gives its size in bytes', () => {
    expect(showValue('a'.repeat(200))).toBe(`"${'a'.repeat(200)}"`);
    expect(showValue('a'.repeat(201))).toBe(`"${'a'.repeat(200)}"…(201 bytes)`);
    expect(showValue('é'.repeat(300))).toBe(`"${'é'.repeat(200)}"…(600 bytes)`);
    const huge = 'x'.repeat(20 * 1024 * 1024);
    expect(showValue(huge).length).toBeLessThan(300);
    expect(showValue(huge)).toContain('(20971520 bytes)');
    // Escapes count as one character each: still bounded.
    expect(showValue('\x1b'.repeat(1e6)).length).toBeLessThan(1300);
  });

  it('names other values by their kind, boundedly', () => {
    expect(showValue(42)).toBe('42');
    expect(showValue(undefined)).toBe('undefined');
    expect(showValue(null)).toBe('null');
    expect(showValue(true)).toBe('true');
    expect(showValue(10n ** 1000n).length).toBeLessThan(300);
    expect(showValue(Symbol('s\n'))).toBe('Symbol(s\\n)');
    expect(showValue([1, 2])).toBe('an array of 2 items');
    expect(showValue({})).toBe('an object');
    expect(showValue(new Map())).toBe('an instance of Map');
    expect(showValue(Object.create(null))).toBe('an object');
    expect(showValue(function named() {})).toBe('function named');
    const hostile = new Proxy({}, { getPrototypeOf: () => { throw new Error('no'); } });
    expect(showValue(hostile)).toBe('an object');
  });

  it('every validator quotes input through it', () => {
    const huge = `\x1b${'v'.repeat(20 * 1024 * 1024)}`;
    for (const validate of [validatePinName, validateContainerId, validateIfName, validateNetworkName, validatePluginType]) {
      let msg = '';
      try {
        validate(huge);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg.length).toBeGreaterThan(0);
      expect(msg.length).toBeLessThan(1000);
      expect(msg).not.toContain('\x1b');
    }
  });

  it('showName leaves plain names alone and escapes the rest', () => {
    expect(showName('pod-1')).toBe('pod-1');
    expect(showName('a b')).toBe('a b');
    expect(showName('n'.repeat(255))).toBe('n'.repeat(255));
    expect(showName('a\x1b[2Jb')).toBe('"a\\u001b[2Jb"');
    expect(showName('"quoted"')).toBe('"\\"quoted\\""');
  });
});
