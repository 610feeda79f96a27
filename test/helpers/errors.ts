// The `code` a synchronous call throws, or 'no error': tests assert on codes.
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return String((e as { code?: string }).code);
  }
  return 'no error';
}
