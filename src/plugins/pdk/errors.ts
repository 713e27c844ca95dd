/**
 * Errors raised by the plugin framework. Every one carries a stable `code`
 * (tests and operators match on it, never on the message). Denials a plugin
 * means to give (401, 403, 429) are not errors: they are `Exit` values.
 */
export type PluginErrorCode =
  | 'GW_ERR_PLUGIN' // a handler threw or rejected
  | 'GW_ERR_PLUGIN_CONF' // a plugin conf failed its schema where the worker applies it
  | 'GW_ERR_UNKNOWN_PLUGIN' // the conf names a plugin nobody registered
  | 'GW_ERR_PLUGIN_LOAD' // a custom plugin folder could not be loaded
  | 'GW_ERR_BAD_HEADER' // a plugin set a header name or value that could split or smuggle a header
  | 'GW_ERR_BAD_PATH' // a plugin set an upstream path that is not an origin-form path
  | 'GW_ERR_NO_DICT'; // env.dict() named a shared dict the conf does not declare

export class GatewayError extends Error {
  readonly code: PluginErrorCode;
  constructor(code: PluginErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
  }
}

export type Phase = 'rewrite' | 'access' | 'headerFilter' | 'bodyFilter' | 'log';

/** A handler threw: names the plugin and phase so the log line says who failed where. */
export class PluginError extends GatewayError {
  readonly plugin: string;
  readonly phase: Phase;
  constructor(plugin: string, phase: Phase, cause: unknown) {
    super('GW_ERR_PLUGIN', `plugin "${plugin}" failed in ${phase}`, { cause });
    this.name = 'PluginError';
    this.plugin = plugin;
    this.phase = phase;
  }
}
