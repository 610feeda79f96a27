import { describe, expect, it } from 'vitest';
import { generateName, resolvePin, validateName } from '../../src/netns.js';

describe('pin names', () => {
  it('accepts one plain path component', () => {
    expect(validateName('pod-1')).toBe('pod-1');
    expect(validateName('a'.repeat(255))).toHaveLength(255);
    expect(generateName()).toMatch(/^pod-[0-9a-f]{16}$/);
    expect(generateName()).not.toBe(generateName());
  });

  it.each([
    ['', 'ERR_INVALID_ARG_VALUE'],
    ['a/b', 'ERR_INVALID_ARG_VALUE'],
    ['..', 'ERR_INVALID_ARG_VALUE'],
    ['.', 'ERR_INVALID_ARG_VALUE'],
    ['a\0b', 'ERR_INVALID_ARG_VALUE'],
    ['a'.repeat(256), 'ERR_INVALID_ARG_VALUE'],
    ['é'.repeat(128), 'ERR_INVALID_ARG_VALUE'], // 256 bytes
  ])('rejects %j', (name, code) => {
    expect(() => validateName(name)).toThrow(expect.objectContaining({ code }));
  });

  it('rejects non-strings with ERR_INVALID_ARG_TYPE', () => {
    expect(() => validateName(42)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('resolves names under the pin dir and keeps absolute paths', () => {
    expect(resolvePin('x')).toEqual({ name: 'x', path: '/run/netns/x', named: true });
    expect(resolvePin('x', '/tmp/pins/')).toEqual({ name: 'x', path: '/tmp/pins/x', named: true });
    expect(resolvePin('/var/run/netns/../netns/y')).toEqual({ name: 'y', path: '/var/run/netns/y', named: false });
    // A path in the pin dir stands for the pin of that name.
    expect(resolvePin('/run/netns/z')).toEqual({ name: 'z', path: '/run/netns/z', named: true });
    expect(() => resolvePin('x', 'relative')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
