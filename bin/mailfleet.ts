#!/usr/bin/env node
// The mailfleet CLI: one binary, two programs. Wiring lives in each program's main.ts.
const [command, ...args] = process.argv.slice(2);

const usage = `usage: mailfleet <command> [options]

commands:
  operator            run the Kubernetes operator (KUBECONFIG or in-cluster config)
  relay --config F    run an SMTP relay with the YAML config F
`;

switch (command) {
  case 'operator': {
    const { main } = await import('../operator/src/main.ts');
    await main(args);
    break;
  }
  case 'relay': {
    const { main } = await import('../relay/src/main.ts');
    await main(args);
    break;
  }
  case '-h':
  case '--help':
  case 'help':
    process.stdout.write(usage);
    break;
  default:
    process.stderr.write(usage);
    process.exitCode = 2;
}
