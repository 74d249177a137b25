// The pod cgroup through CRI (see podjail_cri.sh).
'use strict';
const { clients, call, check, done, BUSYBOX, sleep } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const T = process.env.E2E_T;
const PARENT = process.env.PODJAIL_PARENT;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const V2 = (() => {
  try { return fs.existsSync('/sys/fs/cgroup/cgroup.controllers'); } catch (e) { return false; }
})();

function cgFile(id, ctrl, file) {
  const rel = `${PARENT.replace(/^\//, '')}/quark-${id.slice(0, 32)}`;
  return V2 ? `/sys/fs/cgroup/${rel}/${file}` : `/sys/fs/cgroup/${ctrl}/${rel}/${file}`;
}
function cg(id, ctrl, file) {
  try { return fs.readFileSync(cgFile(id, ctrl, file), 'utf8').trim(); } catch (e) { return null; }
}
const quota = (id) => (V2 ? cg(id, 'cpu', 'cpu.max') : cg(id, 'cpu', 'cpu.cfs_quota_us'));
const shares = (id) => (V2 ? cg(id, 'cpu', 'cpu.weight') : cg(id, 'cpu', 'cpu.shares'));
function usageNs(id) {
  if (!V2) return Number(cg(id, 'cpuacct', 'cpuacct.usage'));
  const m = /usage_usec (\d+)/.exec(cg(id, 'cpu', 'cpu.stat') || '');
  return m ? Number(m[1]) * 1000 : NaN;
}

const podCfg = {
  metadata: { name: 'cg', namespace: 'podjail', uid: 'uid-cg', attempt: 0 },
  log_directory: `${T}/logs/cg`,
  linux: {
    cgroup_parent: PARENT,
    // kubelet's pod-level sum: 0.5 CPU, 768 shares
    resources: { cpu_period: 100000, cpu_quota: 50000, cpu_shares: 768, memory_limit_in_bytes: 128 << 20 },
  },
};

// Across a restart (podjail_cri.sh kills quarkd with SIGKILL between the
// phases): the pod's cgroup is found from its record and removed.
async function restartPhase(phase) {
  const idFile = `${T}/restart-pod-id`;
  if (phase === 'run') {
    const cfg = Object.assign({}, podCfg, { metadata: { name: 'cg2', namespace: 'podjail', uid: 'uid-cg2', attempt: 0 } });
    const rp = await call(rt, 'RunPodSandbox', { config: cfg, runtime_handler: 'quark' }, 120000);
    check(!rp.err, 'RunPodSandbox before the restart' + (rp.err ? ` (${rp.err.details})` : ''));
    if (rp.err) done();
    fs.writeFileSync(idFile, rp.res.pod_sandbox_id);
    check(fs.existsSync(cgFile(rp.res.pod_sandbox_id, 'cpu', '.')), 'its cgroup exists');
  } else {
    const pod = fs.readFileSync(idFile, 'utf8');
    const rm = await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 120000);
    check(!rm.err, 'RemovePodSandbox after kill -9 and restart' + (rm.err ? ` (${rm.err.details})` : ''));
    const left = ['cpu', 'cpuacct', 'memory', 'pids'].filter((c) => fs.existsSync(cgFile(pod, c, '.')));
    check(left.length === 0, `no cgroup left after the restart and RemovePodSandbox (${left.join(',')})`);
  }
  done();
}

(async () => {
  if (process.env.PODJAIL_PHASE) return restartPhase(process.env.PODJAIL_PHASE);
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: 'quark' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const q0 = quota(pod);
  check(q0 === (V2 ? '50000 100000' : '50000'), `pod-level quota in the cgroup (${q0})`);
  const s0 = shares(pod);
  check(V2 ? Number(s0) > 0 : s0 === '768', `pod-level shares (${s0})`);
  const pm = cg(pod, 'pids', 'pids.max');
  check(pm && pm !== 'max', `pids.max bounded (${pm})`);
  const mem = Number(V2 ? cg(pod, 'memory', 'memory.max') : cg(pod, 'memory', 'memory.limit_in_bytes'));
  check(mem >= 128 * 2 ** 20 && mem < 2 ** 40, `memory limit = guest memory + VMM overhead (${mem})`);
  // The pod daemon's supervisor moves it into the cgroup while the daemon
  // answers ready (sandbox/jail/jail.c; the daemon waits for the move before
  // it starts a guest): it is there within moments of RunPodSandbox.
  let procs = [];
  for (let i = 0; i < 100 && procs.length === 0; i++) {
    procs = (cg(pod, 'pids', 'cgroup.procs') || '').split('\n').filter(Boolean);
    if (procs.length === 0) await sleep(50);
  }
  const info = JSON.parse((await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).res.info.info);
  check(procs.length >= 1, `the pod daemon is in the cgroup (${procs.join(',')})`);
  check(info.Cgroup && info.Cgroup.Path, `cgroup recorded in the pod (${info.Cgroup && info.Cgroup.Path})`);

  // A CPU hog with a 0.2 CPU limit: the pod's quota becomes the sum (0.2).
  const cr = await call(rt, 'CreateContainer', {
    pod_sandbox_id: pod, sandbox_config: podCfg,
    config: {
      metadata: { name: 'hog', attempt: 0 }, image: { image: IMAGE }, log_path: 'hog.log',
      command: ['/bin/sh', '-c', 'while :; do :; done'],
      linux: { resources: { cpu_period: 100000, cpu_quota: 20000, cpu_shares: 204 } },
    },
  }, 60000);
  check(!cr.err, 'CreateContainer hog' + (cr.err ? ` (${cr.err.details})` : ''));
  if (cr.err) done();
  const hog = cr.res.container_id;
  const q1 = quota(pod);
  check(q1 === (V2 ? '20000 100000' : '20000'), `quota = the container's limit after CreateContainer (${q1})`);
  check(V2 || shares(pod) === '204', `shares = the container's (${shares(pod)})`);
  const st = await call(rt, 'StartContainer', { container_id: hog }, 60000);
  check(!st.err, 'StartContainer hog');
  await sleep(500);
  const u0 = usageNs(pod), t0 = process.hrtime.bigint();
  await sleep(2000);
  const used = usageNs(pod) - u0, wall = Number(process.hrtime.bigint() - t0);
  console.log(`CPU hog under a 0.2 CPU limit: ${(used / wall).toFixed(2)} CPUs over ${(wall / 1e9).toFixed(2)} s`);
  check(used > 0 && used / wall < 0.6, `the hog stays well under one CPU (${(used / wall).toFixed(2)})`);

  const up = await call(rt, 'UpdateContainerResources', {
    container_id: hog, linux: { cpu_period: 50000, cpu_quota: 35000, cpu_shares: 512 },
  }, 60000);
  check(!up.err, 'UpdateContainerResources' + (up.err ? ` (${up.err.details})` : ''));
  const q2 = quota(pod);
  check(q2 === (V2 ? '70000 100000' : '70000'), `quota after UpdateContainerResources: 0.7 CPU (${q2})`);
  check(V2 || shares(pod) === '512', `shares after the update (${shares(pod)})`);

  const peak = V2 ? cg(pod, 'memory', 'memory.peak') : cg(pod, 'memory', 'memory.max_usage_in_bytes');
  console.log(`pod cgroup memory peak: ${Math.round(Number(peak) / 1024)} KiB (limit ${Math.round(mem / 1024)} KiB)`);
  const sp = await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 120000);
  check(!sp.err, 'StopPodSandbox');
  check(!fs.existsSync(cgFile(pod, 'cpu', '.')), 'cgroup gone after StopPodSandbox');
  const rm = await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 120000);
  check(!rm.err, 'RemovePodSandbox');
  const left = ['cpu', 'cpuacct', 'memory', 'pids'].filter((c) => fs.existsSync(cgFile(pod, c, '.')));
  check(left.length === 0, `no cgroup left after RemovePodSandbox (${left.join(',')})`);
  done();
})();
