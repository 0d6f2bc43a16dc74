// The relay config contract, re-exported for the operator:
//   import { validateConfig, type RelayConfig } from '../../relay/src/config/index.ts';
export type * from './types.ts';
export { validateConfig, DEFAULTS, type ValidateOptions } from './validate.ts';
export { parseDuration, durationMs } from './duration.ts';
