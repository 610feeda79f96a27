// nstool command line: exit 0 on success, 1 on failure, 2 on wrong usage.
// `nstool --version` and `nstool --help` are answered here from the catalog
// alone; anything else loads commander and the one command module it needs
// (program.ts). Startup time is measured in bench/.
import { topHelp, version } from './catalog.js';
import { Io, processIo } from './io.js';

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  if (argv.length === 1) {
    const a = argv[0];
    if (a === '--version' || a === '-V') {
      io.stdout(`${version()}\n`);
      return 0;
    }
    if (a === '--help' || a === '-h' || a === 'help') {
      io.stdout(topHelp(io.columns));
      return 0;
    }
  }
  const { run } = await import('./program.js');
  return run(argv, io);
}
