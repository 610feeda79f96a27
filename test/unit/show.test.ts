// Values as errors and logs show them: capped, control characters escaped.
import { describe, expect, it } from 'vitest';
import { NstoolError } from '../../src/errors.js';
import { capError, showText, showValue } from '../../src/show.js';

describe('showValue / showText / capError', () => {
  it('quotes a short value as JSON', () => {
    expect(showValue('eth0')).toBe('"eth0"');
    expect(showValue('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
    expect(showValue(42)).toBe('42');
  });
  it('caps a long value at 200 characters and says how many bytes it had', () => {
    const v = 'é'.repeat(300);
    expect(showValue(v)).toBe(`${JSON.stringify('é'.repeat(200))}…(600 bytes)`);
    expect(showValue('x'.repeat(20 * 1024 * 1024)).length).toBeLessThan(230);
  });
  it('escapes every control character, C1 and line separators included', () => {
    const v = '\u001b[2J\r\n\u0000\u007f\u009b\u2028\u2029x';
    const shown = showValue(v);
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(JSON.parse(shown)).toBe(v);
    expect(showText(`line1\nline2\u001b[31m`)).toBe('line1\\u000aline2\\u001b[31m');
  });
  it('capError caps the message and string fields of an error and its causes, in place', () => {
    const big = 'z'.repeat(100_000);
    const cause = new Error(`inner ${big}`);
    const err = new NstoolError(`outer ${big}\nforged line`, { code: 'ERR_X', path: big, hint: 'short', cause });
    expect(capError(err, 100)).toBe(err);
    expect(err.message.length).toBeLessThan(130);
    expect(err.message).not.toContain('\n');
    expect(err.path!.length).toBeLessThan(130);
    expect(err.hint).toBe('short');
    expect(err.code).toBe('ERR_X');
    expect(cause.message.length).toBeLessThan(130);
    expect(capError('not an error')).toBe('not an error');
  });
});
