// CNI plugin invocation: config lists, ADD/DEL/CHECK, result cache.
export { DEFAULT_CONF_DIR, loadNetworkList, loadNetworkListFile, parseNetworkList, toNetworkList } from './config.js';
export type { LoadOptions, NetworkConfigList, PluginConf } from './config.js';
export { DEFAULT_CACHE_DIR, ResultCache } from './cache.js';
export type { CacheEntry, CacheKey, CacheRead } from './cache.js';
export { CNI_ERROR, CniError, cniErrorJson } from './errors.js';
export type { CniErrorFields } from './errors.js';
export { formatCniArgs, validateContainerId, validateIfName, validateNetworkName, validatePluginType } from './names.js';
export { clearVersionCache, DEFAULT_PLUGIN_PATH, findPlugin, pluginEnv, pluginPath } from './plugin.js';
export type { ExecOptions } from './plugin.js';
export { addNetwork, cachedResult, checkNetwork, CniNetwork, delNetwork, DEFAULT_IFNAME, pluginStdin, pluginVersions } from './network.js';
export type { AddOptions, CniInterface, CniIpConfig, CniOptions, CniResult, DelOutcome, RuntimeConf } from './network.js';
export { compareVersions, parseVersion, pluginTakes, versionHasVerb } from './version.js';
export type { CniVerb } from './version.js';
