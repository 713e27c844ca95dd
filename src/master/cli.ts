import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { VERSION } from './version.ts';

// Everything else is imported where a path needs it: `-v` and `-h` load nothing, `-t` and `-s`
// not the master (its logger, status server, supervisor), so each answers as fast as it can.

/**
 * `sluice [-c FILE] [-p PREFIX] [-t | -T] [-s reload|reopen|quit|stop] [-v]`,
 * nginx's habits: -t tests the conf, -s signals the running master through the
 * pid file, no flag runs in the foreground (systemd Type=exec). As in nginx, a
 * relative -c, and every relative path in the conf, resolves against the prefix.
 */
const USAGE = `usage: sluice [-c FILE] [-p PREFIX] [-t | -T] [-s reload|reopen|quit|stop] [-v]
       sluice hash-password [--algorithm bcrypt|scrypt|argon2]   (password on stdin)

  -c FILE        conf file, relative to the prefix (default: conf/sluice.yaml)
  -p PREFIX      prefix a relative -c and the conf's relative paths resolve against (default: current directory)
  -t             test the conf and exit
  -T             test the conf, print the resolved conf, and exit
  -s SIGNAL      send reload | reopen | quit | stop to the master named by the conf's pid file
  -v, --version  print the version and exit
  -h, --help     print this help and exit
`;

const SIGNALS: Readonly<Record<string, NodeJS.Signals>> = {
  reload: 'SIGHUP',
  reopen: 'SIGUSR1',
  quit: 'SIGQUIT',
  stop: 'SIGTERM',
};

/**
 * `sluice hash-password [--algorithm bcrypt|scrypt|argon2]`: reads a password
 * on stdin (one line, so `echo pw | sluice hash-password` works) and prints
 * the hash a basic-auth credential's `password_hash` takes.
 */
async function hashPasswordCommand(argv: readonly string[]): Promise<number> {
  const { ALGORITHMS, hashPassword } = await import('../plugins/basic-auth/hash.ts');
  let algorithm;
  try {
    algorithm = parseArgs({ args: [...argv], options: { algorithm: { type: 'string', default: 'bcrypt' } }, strict: true }).values.algorithm;
  } catch (err) {
    process.stderr.write(`sluice hash-password: ${(err as Error).message}\n`);
    return 2;
  }
  const alg = ALGORITHMS.find((a) => a === algorithm);
  if (alg === undefined) {
    process.stderr.write(`sluice hash-password: --algorithm must be one of ${ALGORITHMS.join(', ')}\n`);
    return 2;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') {
    process.stderr.write('sluice hash-password: no password on stdin\n');
    return 2;
  }
  process.stdout.write(`${await hashPassword(password, alg)}\n`);
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'hash-password') return hashPasswordCommand(argv.slice(1));
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: {
        c: { type: 'string' },
        p: { type: 'string' },
        t: { type: 'boolean' },
        T: { type: 'boolean' },
        s: { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`sluice: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.version === true) {
    process.stdout.write(`sluice version: ${VERSION}\n`);
    return 0;
  }
  const prefix = resolve(args.p ?? process.cwd());
  const confFile = resolve(prefix, args.c ?? 'conf/sluice.yaml');
  const [{ loadConfWithPlugins }, { dumpConf, formatIssue }] = await Promise.all([import('../plugins/load-conf.ts'), import('../config/format.ts')]);
  const loaded = await loadConfWithPlugins(confFile, { prefix });

  if (args.s !== undefined) {
    const signal = SIGNALS[args.s];
    if (signal === undefined) {
      process.stderr.write(`sluice: invalid signal "${args.s}"\n${USAGE}`);
      return 2;
    }
    // The pid file's path comes from the conf; a conf that no longer validates still names it
    // in the default place, so `-s stop` works while fixing a broken conf.
    const pidFile = loaded.ok ? loaded.conf.pid : resolve(prefix, 'logs/sluice.pid');
    const failed = (reason: string): number => {
      const source = loaded.ok ? `the pid file named by ${confFile}` : `the default pid file (${confFile} does not load)`;
      process.stderr.write(`sluice: cannot signal the master (${pidFile}): ${reason}\n`
        + `sluice: looked for ${source}, relative paths under the prefix ${prefix}; pass the -c and -p the master was started with\n`);
      return 1;
    };
    const { isPidFileLocked, readPidFile } = await import('./pid-file.ts');
    try {
      const pid = readPidFile(pidFile);
      // Only a live master holds the lock: a pid file left by a crash may name some other process by now.
      if (!(await isPidFileLocked(pidFile))) return failed(`no master is running (the file names pid ${pid}, left by a master that did not exit cleanly)`);
      process.kill(pid, signal);
    } catch (err) {
      return failed((err as Error).message);
    }
    return 0;
  }

  if (!loaded.ok) {
    for (const issue of loaded.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    process.stderr.write(`sluice: configuration file ${confFile} test failed\n`);
    return 1;
  }
  // nginx's form: the conf still runs, and the operator hears of it on every test and start.
  for (const w of loaded.warnings) process.stderr.write(`sluice: [warn] ${formatIssue(w)}\n`);
  if (args.t === true || args.T === true) {
    if (args.T === true) process.stdout.write(dumpConf(loaded.written, confFile));
    process.stderr.write(`sluice: the configuration file ${confFile} syntax is ok\nsluice: configuration file ${confFile} test is successful\n`);
    return 0;
  }

  const { Master } = await import('./master.ts');
  const master = new Master(loaded.conf, { confFile, prefix });
  try {
    await master.start();
  } catch (err) {
    process.stderr.write(`sluice: could not start: ${(err as Error).message}\n`);
    return 1;
  }
  return -1; // keep running: the master exits from its signal handlers
}
