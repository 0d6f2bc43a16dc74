#!/usr/bin/env node
// The mailfleet CLI: one binary, two programs and the queue tool. Wiring lives in each program's main.ts.
const [command, ...args] = process.argv.slice(2);

const usage = `usage: mailfleet <command> [options]

commands:
  operator            run the Kubernetes operator (KUBECONFIG or in-cluster config)
  relay --config F    run an SMTP relay with the YAML config F
  tracker --key-file F  serve tracked links and open pixels (docs/tracking.md)
  queue <command>     inspect and change a pool's relay queues (mailfleet queue --help)
  suppression <cmd>   list and change a pool's suppression list (mailfleet suppression --help)
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
  case 'tracker': {
    const { main } = await import('../relay/src/tracker/main.ts');
    await main(args);
    break;
  }
  case 'queue': {
    const { queueMain } = await import('../operator/src/cli/queue.ts');
    process.exitCode = await queueMain(args, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
    break;
  }
  case 'suppression': {
    const { suppressionMain } = await import('../operator/src/cli/suppression.ts');
    process.exitCode = await suppressionMain(
      args,
      { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
      async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      },
    );
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
