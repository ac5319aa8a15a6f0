/**
 * Test helper: a real one-node SLURM cluster on localhost, in a temporary folder, with Debian's slurm-wlm 22.05 and
 * munge 0.5. It writes a munge key and a slurm.conf (one node with this machine's CPUs taken as configured, one
 * default partition, free ports, no cgroups, no accounting database: the job completion log `jobcomp/filetxt` is what
 * `sacct --completion` reads), starts munged, slurmctld and slurmd as root, waits for the node to be idle, and stops
 * them all afterwards.
 * `startLocalCluster` resolves to `{ skip }` with the reason only when not root (the daemons need root); as root, a
 * cluster that cannot start (programs missing, a daemon failing) is an error with the daemons' logs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A running test cluster. */
export interface LocalCluster {
  dir: string;
  /** The slurm.conf (SLURM_CONF for the client commands). */
  conf: string;
  /** The node's name. */
  node: string;
  /** Daemon logs (slurmctld, slurmd, munged), for failure messages. */
  logs(): string;
  /** Cancels every job, stops the daemons and removes the folder. */
  stop(): Promise<void>;
}

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the cluster and points this process's SLURM_CONF at it; or says why it cannot. */
export async function startLocalCluster(): Promise<LocalCluster | { skip: string }> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { skip: `slurmctld and slurmd must run as root to start jobs as other users, and this test runs as uid ${process.getuid()}; run it as root (CI does)` };
  }
  // as root the cluster must start: missing programs are a failure, not a skip (CI installs them)
  const missing = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sacct', 'scancel', 'sinfo'].filter((c) => !which(c));
  if (missing.length) throw new Error(`the one-node SLURM cluster cannot start: ${missing.join(', ')} not installed; apt-get install -y slurm-wlm munge (.ci/setup does)`);
  // 1. the folder, the munge key (readable by root only) and a socket folder munged accepts (execute for all)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-slurm-'));
  fs.chmodSync(dir, 0o755);
  for (const d of ['munge', 'sock', 'state', 'spool', 'log']) fs.mkdirSync(path.join(dir, d), { mode: d === 'munge' ? 0o700 : 0o755 });
  fs.chmodSync(path.join(dir, 'sock'), 0o755);
  const key = path.join(dir, 'munge', 'munge.key');
  fs.writeFileSync(key, crypto.randomBytes(1024), { mode: 0o400 });
  const socket = path.join(dir, 'sock', 'munge.socket');
  const mungePid = path.join(dir, 'munge', 'munged.pid');
  const logs = () => ['log/slurmctld.log', 'log/slurmd.log', 'munge/munged.log'].map((f) => {
    try {
      return `--- ${f}\n${fs.readFileSync(path.join(dir, f), 'utf8').split('\n').slice(-25).join('\n')}`;
    } catch {
      return `--- ${f}: none`;
    }
  }).join('\n');
  const stop = async () => {
    if (fs.existsSync(conf)) spawnSync('scancel', ['--full', '--quiet', '--signal=KILL', '-u', 'root'], { env: { ...process.env, SLURM_CONF: conf } });
    for (const f of ['slurmd.pid', 'slurmctld.pid']) {
      const pid = readPid(path.join(dir, f));
      if (pid && alive(pid)) process.kill(pid, 'SIGTERM');
    }
    spawnSync('munged', ['--stop', `--socket=${socket}`]);
    for (let i = 0; i < 50; i++) {
      const pids = ['slurmd.pid', 'slurmctld.pid', 'munge/munged.pid'].map((f) => readPid(path.join(dir, f))).filter((p): p is number => !!p && alive(p));
      if (!pids.length) break;
      await sleep(200);
      if (i === 40) pids.forEach((p) => process.kill(p, 'SIGKILL'));
    }
    if (process.env.SLURM_CONF === conf) delete process.env.SLURM_CONF;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const conf = path.join(dir, 'slurm.conf');
  try {
    execFileSync('munged', [`--key-file=${key}`, `--socket=${socket}`, `--pid-file=${mungePid}`, `--log-file=${path.join(dir, 'munge', 'munged.log')}`, `--seed-file=${path.join(dir, 'munge', 'munged.seed')}`], { stdio: 'pipe' });
    // 2. slurm.conf: this host as controller and as the one node, on free ports; no cgroups; a job completion log
    const node = os.hostname().split('.')[0]!;
    // CPUs as the OS counts them, without a topology; SlurmdParameters=config_overrides makes slurmd report this
    // configuration instead of the hardware it detects, so that a VM whose 2 CPUs are 1 core x 2 threads does not
    // drain the node ("Low socket*core count"), and CR_CPU gives each task one CPU (2 tasks at once on 2 CPUs).
    // Memory is not enforced here (no cgroups): RealMemory only has to admit --mem=1G tasks on a small machine.
    const cpus = os.cpus().length;
    const memMB = Math.max(4096, Math.floor((os.totalmem() / 2 ** 20) * 0.9));
    fs.writeFileSync(conf, [
      'ClusterName=brainnet-test',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${await freePort()}`,
      `SlurmdPort=${await freePort()}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${path.join(dir, 'state')}`,
      `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
      `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${path.join(dir, 'log', 'jobcomp.txt')}`,
      'SchedulerType=sched/backfill',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU_Memory',
      'SlurmdParameters=config_overrides',
      'ReturnToService=2',
      'MpiDefault=none',
      'KillWait=10',
      'MinJobAge=600',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memMB} State=UNKNOWN`,
      `PartitionName=test Nodes=${node} Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=${Math.floor(memMB / cpus)}`,
      '',
    ].join('\n'));
    // 3. the daemons (they fork into the background), then wait for the node to be idle
    execFileSync('slurmctld', ['-f', conf], { stdio: 'pipe' });
    execFileSync('slurmd', ['-f', conf], { stdio: 'pipe' });
    const env = { ...process.env, SLURM_CONF: conf };
    let state = '';
    for (let i = 0; i < 150 && !/^idle/.test(state); i++) {
      await sleep(200);
      state = spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim();
    }
    if (!/^idle/.test(state)) throw new Error(`the node did not become idle within 30 s (sinfo says "${state}")`);
    process.env.SLURM_CONF = conf;
    return { dir, conf, node, logs, stop };
  } catch (e) {
    const msg = `${(e as Error).message}\n${logs()}`;
    await stop();
    throw new Error(`the one-node SLURM cluster did not start: ${msg}`);
  }
}
