// Wiring only: parse arguments, load the config, build the relay and run it until a signal.
import { hostname } from 'node:os';
import { loadConfigFile } from './config/load.ts';

export async function main(args: string[]): Promise<void> {
  const configIndex = args.indexOf('--config');
  const configPath = configIndex >= 0 ? args[configIndex + 1] : undefined;
  if (!configPath) {
    process.stderr.write('usage: mailfleet relay --config <file>\n');
    process.exitCode = 2;
    return;
  }
  const loaded = await loadConfigFile(configPath, { defaultHostname: hostname() });
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(`${configPath}: ${e.path}: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
}
