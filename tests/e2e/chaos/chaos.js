// Random CRI call sequences against a live quarkd with real VMs: pods and
// containers created, started, stopped and removed in random interleavings,
// several calls at once on the same pod, unknown and removed ids, stop
// before start, remove before stop. Every answer must be OK or a clean gRPC
// error (never UNKNOWN/INTERNAL from a crash, never a dropped connection);
// afterwards everything is removed and quarkd still answers. The shell
// driver (chaos.sh) then checks the host side: no sandbox processes, netns,
// mounts or extra quarkd fds left. CHAOS_OPS (default 60) sets the size;
// CHAOS_SEED the seed. Prints figures.
'use strict';
const { clients, call, check, done, grpc, BUSYBOX } =
  require(process.env.CRI_COMMON);

const T = process.env.E2E_T;
const OPS = Number(process.env.CHAOS_OPS || 60);
let seed = Number(process.env.CHAOS_SEED || Date.now() % 100000);
const SEED0 = seed;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pick = (a) => a[rnd(a.length)];
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const S = grpc.status;
const OKCODES = new Set([S.NOT_FOUND, S.FAILED_PRECONDITION, S.INVALID_ARGUMENT, S.ALREADY_EXISTS,
  S.DEADLINE_EXCEEDED, S.RESOURCE_EXHAUSTED, S.ABORTED, S.UNAVAILABLE]);

const pods = [];   // {id, cfg}
const ctrs = [];   // {id, pod}
const stats = { calls: 0, ok: 0, errors: {}, bad: [] };
let n = 0;

function podCfg() {
  const k = n++;
  return { metadata: { name: `chaos-${k}`, namespace: 'chaos', uid: `uid-chaos-${SEED0}-${k}`, attempt: 0 },
    hostname: `c${k}`, log_directory: `${T}/logs/chaos-${k}`,
    linux: { security_context: { namespace_options: { network: rnd(2) ? 'NODE' : 'POD' } } } };
}

async function c(method, req, ms) {
  stats.calls++;
  const r = await call(rt, method, req, ms || 60000);
  if (!r.err) stats.ok++;
  else {
    const name = Object.keys(S).find((k) => S[k] === r.err.code) || String(r.err.code);
    stats.errors[name] = (stats.errors[name] || 0) + 1;
    if (!OKCODES.has(r.err.code)) stats.bad.push(`${method}: ${name} ${r.err.details}`);
  }
  return r;
}

const actions = {
  async runPod() {
    if (pods.length >= 3) return;
    const cfg = podCfg();
    const r = await c('RunPodSandbox', { config: cfg });
    if (!r.err) pods.push({ id: r.res.pod_sandbox_id, cfg });
  },
  async createCtr() {
    if (!pods.length) return;
    const p = pick(pods);
    const cmd = pick([['sleep', '30'], ['true'], ['sh', '-c', 'exit 3'], ['/nonexistent']]);
    const r = await c('CreateContainer', { pod_sandbox_id: p.id, sandbox_config: p.cfg,
      config: { metadata: { name: `x${n++}`, attempt: 0 }, image: { image: IMAGE }, command: cmd,
        log_path: `x${n}.log` } });
    if (!r.err) ctrs.push({ id: r.res.container_id, pod: p });
  },
  async startCtr() { if (ctrs.length) await c('StartContainer', { container_id: pick(ctrs).id }); },
  async stopCtr() { if (ctrs.length) await c('StopContainer', { container_id: pick(ctrs).id, timeout: rnd(2) }); },
  async removeCtr() {
    if (!ctrs.length) return;
    const x = pick(ctrs);
    const r = await c('RemoveContainer', { container_id: x.id });
    if (!r.err) ctrs.splice(ctrs.indexOf(x), 1);
  },
  async stopPod() { if (pods.length) await c('StopPodSandbox', { pod_sandbox_id: pick(pods).id }); },
  async removePod() {
    if (!pods.length) return;
    const p = pick(pods);
    const r = await c('RemovePodSandbox', { pod_sandbox_id: p.id });
    if (!r.err) {
      pods.splice(pods.indexOf(p), 1);
      for (let i = ctrs.length - 1; i >= 0; i--) if (ctrs[i].pod === p) ctrs.splice(i, 1);
    }
  },
  async unknownIds() {
    const id = pick(['0'.repeat(64), 'nope', '', 'x'.repeat(300)]);
    await c(pick(['StartContainer', 'StopContainer', 'RemoveContainer', 'ContainerStatus']), { container_id: id });
    await c(pick(['StopPodSandbox', 'RemovePodSandbox', 'PodSandboxStatus']), { pod_sandbox_id: id });
  },
  async burstOnOnePod() { // concurrent calls on one pod
    if (!pods.length) return;
    const p = pick(pods);
    const todo = [];
    for (let i = 0; i < 4; i++) todo.push(pick([actions.createCtr, actions.startCtr, actions.stopCtr, actions.removeCtr])());
    todo.push(c('PodSandboxStatus', { pod_sandbox_id: p.id }));
    todo.push(c(pick(['StopPodSandbox', 'PodSandboxStatus']), { pod_sandbox_id: p.id }));
    await Promise.all(todo);
  },
  async listAll() { await c('ListContainers', {}); await c('ListPodSandbox', {}); },
};
const names = Object.keys(actions);

(async () => {
  const t0 = Date.now();
  for (let i = 0; i < OPS; i++) {
    const par = 1 + rnd(3); // up to three actions at once
    const todo = [];
    for (let j = 0; j < par; j++) todo.push(actions[pick(names)]());
    await Promise.all(todo);
  }
  // clean up: everything that is left goes away
  const lp = await c('ListPodSandbox', {});
  for (const p of (lp.res ? lp.res.items : [])) {
    await c('StopPodSandbox', { pod_sandbox_id: p.id });
    const r = await c('RemovePodSandbox', { pod_sandbox_id: p.id });
    check(!r.err, `final RemovePodSandbox ${p.id.slice(0, 12)}` + (r.err ? ` (${r.err.details})` : ''));
  }
  const v = await call(rt, 'Version', {});
  check(!v.err, 'quarkd answers after the chaos');
  const left = await call(rt, 'ListContainers', {});
  check(!left.err && left.res.containers.length === 0, 'no containers left');
  console.log(`chaos: seed ${SEED0}, ${OPS} rounds, ${stats.calls} calls (${stats.ok} OK), errors ${JSON.stringify(stats.errors)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  check(stats.bad.length === 0, `only clean errors (${stats.bad.slice(0, 5).join('; ')})`);
  done();
})().catch((e) => { console.error(e); process.exit(1); });
