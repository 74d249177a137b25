// Job control and kill(-1) in a pod's shared pid namespace, on one busybox
// pod with a real VM (driven by pidns.sh jobctl.js):
// - b stops u's init with kill -STOP: /proc says T, the CRI state stays
//   RUNNING (as runc reports a stopped process); kill -CONT: it runs again;
// - StopContainer ends a stopped container (its SIGTERM waits for the
//   continue that never comes, the SIGKILL after the timeout does not);
// - kill -TERM -1 from an exec in b reaches b's init (an ordinary process
//   of the shared namespace, not its pid 1), but neither pid 1 nor the
//   container with a namespace of its own.
'use strict';
const { clients, call, check, expectCode, done, grpc, sleep } = require(process.env.CRI_COMMON);
const fs = require('fs');
const L = require('./lib.js');
const { PS, procs } = L;

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();

const podCfg = {
  metadata: { name: 'jobctl', namespace: 'e2e', uid: 'uid-jobctl', attempt: 0 },
  hostname: 'jobctl', log_directory: `${T}/logs/jobctl`,
  linux: { security_context: { namespace_options: { pid: 'POD' } } },
};
const run = (podId, cfg) => L.run(rt, podCfg, podId, cfg);
const sh = (id, script) => L.sh(rt, id, script);
const state = (id) => L.state(rt, id);
const loop = 'while true; do sleep 1; done';

// The state letter of pid as b's /proc shows it ('' once gone).
async function stOf(b, pid) {
  const p = procs(await sh(b, PS)).find((x) => x.pid === pid);
  return p ? p.st : '';
}
// Polls (bounded) until pred(value of get()) holds; the last value.
async function until(get, pred) {
  let v = await get();
  for (let i = 0; i < 50 && !pred(v); i++) { await sleep(200); v = await get(); }
  return v;
}

async function main() {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: '' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const u = await run(pod, L.ctr('u', `echo u-up; ${loop}`, 'POD'));
  const b = await run(pod, L.ctr('b', `sleep 1002 & echo b-up; ${loop}`, 'POD'));
  const c = await run(pod, L.ctr('c', `echo c-up; ${loop}`, 'CONTAINER'));
  await sleep(1500);
  const uInit = procs(await sh(b, PS)).find((p) => /marker-u/.test(p.args));
  check(uInit && uInit.pid > 1, `b sees u's init (${uInit && uInit.pid})`);
  const upid = uInit ? uInit.pid : 0;

  await sh(b, `kill -STOP ${upid}`);
  let st = await until(() => stOf(b, upid), (s) => s === 'T');
  check(st === 'T', `kill -STOP: u's init is stopped (state ${st})`);
  const su = await state(u);
  check(su && su.state === 'CONTAINER_RUNNING', `a stopped container stays RUNNING (${su && su.state})`);
  await sh(b, `kill -CONT ${upid}`);
  st = await until(() => stOf(b, upid), (s) => s !== 'T');
  check(st === 'S' || st === 'R', `kill -CONT: it runs again (state ${st})`);

  await sh(b, `kill -STOP ${upid}`);
  st = await until(() => stOf(b, upid), (s) => s === 'T');
  check(st === 'T', `stopped again (state ${st})`);
  expectCode(await call(rt, 'StopContainer', { container_id: u, timeout: 1 }, 60000), S.OK, 'StopContainer of a stopped container');
  const su2 = await until(() => state(u), (s) => s && s.state === 'CONTAINER_EXITED');
  check(su2 && su2.state === 'CONTAINER_EXITED' && su2.exit_code === 137,
        `it ended by SIGKILL (${su2 && [su2.state, su2.exit_code]})`);

  await sh(b, 'kill -TERM -1');
  const sb = await until(() => state(b), (s) => s && s.state === 'CONTAINER_EXITED');
  check(sb && sb.state === 'CONTAINER_EXITED' && sb.exit_code === 143,
        `kill -TERM -1 from an exec ended b's init (${sb && [sb.state, sb.exit_code]})`);
  const sc = await state(c);
  check(sc && sc.state === 'CONTAINER_RUNNING', `the container with its own namespace lives on (${sc && sc.state})`);
  check(/^alive/.test(await sh(c, 'echo alive')), 'the pod VM still serves execs');

  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
  fs.rmSync(`${T}/logs/jobctl`, { recursive: true, force: true });
  done();
}
main().catch((e) => { console.error(e); process.exit(1); });
