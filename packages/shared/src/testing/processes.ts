import { spawn, spawnSync, type ChildProcess, type IOType } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { builtEntry, PROCESSES, processSpec, type ProcessName } from '../contracts/processes.js';
import { LineLog } from './line-log.js';

/** The repository root, the working directory of every process (the same depth from src/ and dist/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Where a process's output goes: into a line log (read line by line, tagged with the process), or
 * to a file descriptor as it is, which costs the caller nothing per line (a benchmark's log file).
 */
export type ProcessOutput = LineLog | number | 'inherit' | 'ignore';

export interface SpawnOptions {
  /** The whole environment of the process, used as given. */
  env: NodeJS.ProcessEnv;
  stdout: ProcessOutput;
  /** Where stdout goes, unless given. */
  stderr?: ProcessOutput;
  cwd?: string;
  /** Node's own flags, before the entry point (the bench's `--cpu-prof`). */
  nodeFlags?: readonly string[];
}

export interface NodeProcess {
  child: ChildProcess;
  /** Settles once the process exited and its output was read to the end. */
  exited: Promise<Exit>;
}

function stdio(output: ProcessOutput): IOType | number {
  return output instanceof LineLog ? 'pipe' : output;
}

function readInto(stream: Readable | null, log: LineLog, source: string | undefined): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (source === undefined) log.push(line);
    else log.pushFrom(source, line);
  });
}

/**
 * `node <args>` from the repository root. With a line log, lines are tagged with `source`, or, without
 * one, taken as already tagged (the output of `scripts/start.mjs`).
 */
export function spawnNode(args: readonly string[], options: SpawnOptions, source?: string): NodeProcess {
  const stdout = options.stdout;
  const stderr = options.stderr ?? stdout;
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    stdio: ['ignore', stdio(stdout), stdio(stderr)],
  });
  // `close`, not `exit`: only then has the last line of output been read.
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  if (stdout instanceof LineLog) readInto(child.stdout, stdout, source);
  if (stderr instanceof LineLog) readInto(child.stderr, stderr, source);
  return { child, exited };
}

export function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Signals the process, SIGKILLs it if it is still there after `killAfterMs`, and waits for it. */
export async function terminate(running: NodeProcess, signal: NodeJS.Signals, killAfterMs?: number): Promise<Exit> {
  if (!isAlive(running.child)) return running.exited;
  running.child.kill(signal);
  if (killAfterMs === undefined) return running.exited;
  const timer = setTimeout(() => running.child.kill('SIGKILL'), killAfterMs);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

let built = false;

/**
 * `pnpm build`, once per test process: the processes run from their built entry points, and the
 * sources do not change while the tests run.
 */
export function buildWorkspace(): void {
  if (built) return;
  const result = spawnSync('pnpm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`pnpm build failed (${result.signal ?? `exit ${result.status}`})`);
  built = true;
}

/**
 * The system's processes (`PROCESSES`) each started on its own from its built entry point, so that
 * one can be stopped, killed or restarted while the others run. The caller gives the environment
 * and the output targets; nothing here adds a database, a port or a default. It does not build.
 */
export class ProcessGroup {
  private readonly running = new Map<string, NodeProcess>();
  private readonly stopped = new Set<string>();

  constructor(private readonly options: SpawnOptions) {}

  get env(): NodeJS.ProcessEnv {
    return this.options.env;
  }

  start(name: ProcessName): ChildProcess {
    return this.launch(name, [builtEntry(processSpec(name))]);
  }

  /** All four, in the order of `PROCESSES` (each needs the ones before it to answer). */
  startAll(): void {
    for (const spec of PROCESSES) this.start(spec.name);
  }

  /** Any other node program with the same environment and output, e.g. a fault-test fixture. */
  startExtra(label: string, args: readonly string[]): ChildProcess {
    return this.launch(label, args);
  }

  private launch(label: string, args: readonly string[]): ChildProcess {
    const current = this.running.get(label);
    if (current && isAlive(current.child)) throw new Error(`${label} is running already`);
    const started = spawnNode(args, this.options, label);
    this.running.set(label, started);
    this.stopped.delete(label);
    return started.child;
  }

  /** Resolves with how the process ended; at once when it had ended already. */
  stop(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    const running = this.running.get(name);
    if (!running) throw new Error(`${name} was never started`);
    this.stopped.add(name);
    return terminate(running, signal);
  }

  kill(name: string): Promise<Exit> {
    return this.stop(name, 'SIGKILL');
  }

  /** Stops the process (gracefully unless told otherwise), starts it again, and says how it had ended. */
  async restart(name: ProcessName, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    const exit = await this.stop(name, signal);
    this.start(name);
    return exit;
  }

  /** Everything still running, all at once, SIGKILLed after `killAfterMs` if need be. */
  async stopAll(killAfterMs = 12_000): Promise<void> {
    for (const name of this.running.keys()) this.stopped.add(name);
    await Promise.all([...this.running.values()].map((running) => terminate(running, 'SIGTERM', killAfterMs)));
  }

  /** Settles when the process ends by itself or otherwise, without signalling it. */
  exited(name: string): Promise<Exit> {
    const running = this.running.get(name);
    if (!running) throw new Error(`${name} was never started`);
    return running.exited;
  }

  child(name: string): ChildProcess | undefined {
    return this.running.get(name)?.child;
  }

  pid(name: string): number | undefined {
    const child = this.child(name);
    return child && isAlive(child) ? child.pid : undefined;
  }

  /**
   * The system's processes that ended without being told to: a readiness wait gives up at once on
   * these. Extras are left out, since a test may end one itself.
   */
  crashed(): ProcessName[] {
    return PROCESSES.map((spec) => spec.name).filter((name) => {
      const running = this.running.get(name);
      return running !== undefined && !isAlive(running.child) && !this.stopped.has(name);
    });
  }
}
