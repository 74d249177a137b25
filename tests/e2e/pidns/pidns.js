// Pid namespaces of a pod's containers (issue #6), on one busybox pod with a
// real VM (driven by pidns.sh):
// - containers in CRI pid mode POD (Kubernetes shareProcessNamespace) share
//   one namespace whose pid 1 is the pod VM's idle process: each sees the
//   other's processes in /proc and ps, and kills across containers work;
// - orphans go to that pid 1, which reaps them (no zombies left);
// - the end of one container's init ends that container's other processes,
//   not the other container's;
// - a container with pid mode unset (proto3 reads 0: POD) shares it too;
// - a container in mode CONTAINER has its own namespace (its init is pid 1,
//   it sees none of the shared ones' processes, they see none of its);
// - container stats stay per container.
'use strict';
const { clients, call, check, expectCode, done, grpc, sleep } = require(process.env.CRI_COMMON);
const fs = require('fs');
const L = require('./lib.js');
const { PS, procs, has } = L;

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();

const podCfg = {
  metadata: { name: 'pidns', namespace: 'e2e', uid: 'uid-pidns', attempt: 0 },
  hostname: 'pidns', log_directory: `${T}/logs/pidns`,
  linux: { security_context: { namespace_options: { pid: 'POD' } } },
};
const ctr = L.ctr;
const run = (podId, cfg) => L.run(rt, podCfg, podId, cfg);
const sh = (id, script) => L.sh(rt, id, script);
const state = (id) => L.state(rt, id);

async function main() {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: '' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const pst = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod });
  const pidMode = pst.err ? pst.err.details : pst.res.status.linux.namespaces.options.pid;
  check(pidMode === 'POD', `PodSandboxStatus says pid mode POD (${pidMode})`);

  // a: a background sleep of its own, exits 3 on SIGUSR1.
  const a = await run(pod, ctr('a', "sleep 1001 & trap 'exit 3' USR1; echo a-up; while true; do sleep 1; done", 'POD'));
  const b = await run(pod, ctr('b', 'sleep 1002 & echo b-up; while true; do sleep 1; done', 'POD'));
  const u = await run(pod, ctr('u', 'echo u-up; while true; do sleep 1; done', null));
  const c = await run(pod, ctr('c', 'echo c-up; while true; do sleep 1; done', 'CONTAINER'));
  await sleep(1500);

  // The shared namespace: pid 1 is the pod's idle process, every POD-mode
  // container's processes are listed, the CONTAINER-mode one's are not.
  const inB = procs(await sh(b, PS));
  const one = inB.find((p) => p.pid === 1);
  check(one && /quark-pod-idle/.test(one.args), `b: pid 1 is the pod's init (${one ? one.args : JSON.stringify(inB).slice(0, 200)})`);
  check(has(inB, /marker-a/) && has(inB, /marker-b/) && has(inB, /marker-u/),
        `b sees a's, its own and u's inits (${inB.map((p) => p.args).join('; ').slice(0, 300)})`);
  check(has(inB, /^sleep 1001/) && has(inB, /^sleep 1002/), 'b sees a\'s background sleep and its own');
  check(!has(inB, /marker-c/), 'b does not see c (own pid namespace)');
  const aInit = inB.find((p) => /marker-a/.test(p.args));
  const bInit = inB.find((p) => /marker-b/.test(p.args));
  check(aInit && aInit.pid > 1 && aInit.ppid === 0 && bInit && bInit.pid > 1 && bInit.pid !== aInit.pid,
        `containers' inits are not pid 1 there, ppid 0 (a ${aInit && [aInit.pid, aInit.ppid]}, b ${bInit && [bInit.pid, bInit.ppid]})`);
  const inA = procs(await sh(a, PS));
  check(has(inA, /marker-b/) && has(inA, /^sleep 1002/) && inA.some((p) => p.pid === 1 && /quark-pod-idle/.test(p.args)),
        `a sees b's processes and the same pid 1 (${inA.map((p) => `${p.pid}:${p.args}`).join('; ').slice(0, 300)})`);
  const ps = await sh(a, 'ps');
  check(/marker-b/.test(ps) && /marker-a/.test(ps), `ps in a lists both containers' inits (${ps.slice(0, 300)})`);
  const inU = procs(await sh(u, PS));
  check(inU.some((p) => p.pid === 1 && /quark-pod-idle/.test(p.args)) && has(inU, /marker-a/),
        'u (pid mode unset, proto3\'s POD) is in the shared namespace');

  // Own namespace: c's init is its pid 1 and it sees none of the others.
  const inC = procs(await sh(c, PS));
  const c1 = inC.find((p) => p.pid === 1);
  check(c1 && /marker-c/.test(c1.args), `c: pid 1 is its own init (${c1 ? c1.args : '-'})`);
  check(!has(inC, /marker-a|marker-b|quark-pod-idle/), `c sees no other container (${inC.map((p) => p.args).join('; ').slice(0, 200)})`);

  // Orphans: reparented to pid 1 and reaped as they end.
  const orph = await sh(b, 'i=0; while [ $i -lt 20 ]; do (true &); i=$((i+1)); done; (exec sleep 1003 &); sleep 1; ' + PS);
  const after = procs(orph);
  const s3 = after.find((p) => /^sleep 1003/.test(p.args));
  check(s3 && s3.ppid === 1, `an orphan's parent is pid 1 (${s3 ? s3.ppid : orph.slice(0, 200)})`);
  const zombies = after.filter((p) => p.st === 'Z');
  check(zombies.length === 0, `no zombies after 20 orphans ended (${JSON.stringify(zombies).slice(0, 200)})`);
  // The shared init cannot be killed from inside; the pod goes on.
  await sh(b, 'kill -9 1');
  check(/^alive/.test(await sh(b, 'echo alive')), 'kill -9 1 from a container leaves the pod running');
  // The shared init's root (an empty host directory) is read-only to the containers.
  const w = await sh(b, 'touch /proc/1/root/x 2>&1; echo rc=$?; ls -a /proc/1/root | tr "\n" " "');
  check(/rc=1/.test(w) && /Read-only/i.test(w) && !/\bx\b/.test(w.split('rc=1')[1] || 'x'),
        `touch /proc/1/root/x from a container is EROFS (${w.trim().slice(0, 200)})`);

  // Stats stay per container.
  const cs = await call(rt, 'ListContainerStats', { filter: { pod_sandbox_id: pod } });
  const stats = cs.err ? [] : cs.res.stats;
  const st = (id) => stats.find((x) => x.attributes && x.attributes.id === id);
  check([a, b, c].every((id) => st(id) && st(id).memory && Number(st(id).memory.working_set_bytes.value) > 0),
        `container stats per container (${stats.length} of 4)`);

  // A kill across containers: b signals a's init, which exits 3; a's other
  // process ends with it, b's live on.
  const k = await sh(b, `kill -USR1 ${aInit ? aInit.pid : 0}; echo rc=$?`);
  check(/rc=0/.test(k), `kill from b to a's init (${k.trim()})`);
  let sa = null;
  for (let i = 0; i < 50 && !(sa && sa.state === 'CONTAINER_EXITED'); i++) { await sleep(200); sa = await state(a); }
  check(sa && sa.state === 'CONTAINER_EXITED' && sa.exit_code === 3, `a exited 3 (${sa && [sa.state, sa.exit_code]})`);
  const sb = await state(b);
  check(sb && sb.state === 'CONTAINER_RUNNING', `b still runs (${sb && sb.state})`);
  const left = procs(await sh(b, PS));
  check(!has(left, /marker-a/) && !has(left, /^sleep 1001/), 'a\'s init and its background sleep are gone');
  check(has(left, /marker-b/) && has(left, /^sleep 1002/) && has(left, /^sleep 1003/) && has(left, /marker-u/),
        `b's and u's processes live on (${left.map((p) => p.args).join('; ').slice(0, 300)})`);

  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
  fs.rmSync(`${T}/logs/pidns`, { recursive: true, force: true });
  done();
}
main().catch((e) => { console.error(e); process.exit(1); });
