// nstool features: what this host can do for pods with user namespaces.
import { Command } from 'commander';
import path from 'node:path';
import { DEFAULT_PLUGIN_PATH } from '../cni/plugin.js';
import { DEFAULT_FEATURES_CACHE_DIR, features, formatFeatures } from '../features/index.js';
import { DEFAULT_STATE_DIR } from '../pod/container.js';
import { summary } from './catalog.js';
import { emit, Io, withJson } from './context.js';

interface FeaturesFlags {
  runtime: string;
  rootfs?: string;
  pluginPath: string;
  stateDir: string;
  cacheDir: string;
  cache: boolean;
  json?: boolean;
}

export function registerFeaturesCommands(program: Command, io: Io): void {
  withJson(
    program
      .command('features')
      .description(summary('features'))
      .option('--runtime <binary>', 'OCI runtime binary', 'runc')
      .option('--rootfs <dir>', 'also probe an idmapped mount of this root filesystem')
      .option('--plugin-path <dirs>', 'CNI plugin dirs, colon-separated', DEFAULT_PLUGIN_PATH.join(':'))
      .option('--state-dir <dir>', 'where bundles live: the idmap probes run on its filesystem', DEFAULT_STATE_DIR)
      .option('--cache-dir <dir>', 'where answers are cached', DEFAULT_FEATURES_CACHE_DIR)
      .option('--no-cache', 'probe again instead of using the cached answer (the new one is cached)'),
  ).action(async (o: FeaturesFlags) => {
    const r = await features({
      runtime: o.runtime,
      ...(o.rootfs !== undefined ? { rootfs: path.resolve(o.rootfs) } : {}),
      pluginPath: o.pluginPath,
      stateDir: path.resolve(o.stateDir),
      cacheDir: path.resolve(o.cacheDir),
      noCache: !o.cache,
    });
    emit(io, o.json, r, () => formatFeatures(r));
  });
}
