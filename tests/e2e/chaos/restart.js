// Restart chaos (issue 11 item 4, issue 6 item 7): several concurrent CRI
// clients create, start, stop and remove pods and containers while this
// script kills quarkd with SIGKILL at random (seeded) moments and starts it
// again on the same state root, run root and image store. After every
// restart, with the clients paused, it checks that every pod is either fully
// present or fully gone:
// - every pod a client was told was created (RunPodSandbox OK) and did not
//   try to remove is listed;
// - every listed pod finished its creation (its record has a control
//   socket) and no removal is pending; its netns is pinned (unless host
//   network); a READY pod's sandbox process is alive;
// - every listed container finished its creation, belongs to a listed pod,
//   has its root filesystem mounted, runs only in a READY pod, and reports
//   a finish time, an exit code and a reason once EXITED;
// - nothing of this quarkd is left for what is not listed: sandbox
//   processes (--control under its run root), pod netns (quark-<id> of a pod
//   its log names), mounts under its root, run dirs, root filesystems in its
//   image store.
// At the end every pod is stopped and removed (after one more kill and
// restart) and the host must hold none of the above, no CNI cache entries
// (loopback-only networking: the test configures no CNI network), no cgroup
// named after one of its pods, and quarkd's fd count must not have grown.
// Prints the figures. Environment: E2E_T, QUARKD, CHAOS_SEED, CHAOS_KILLS
// (default 10; --long: 40), CHAOS_WORKERS (3).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const { clients, call, check, done, grpc, BUSYBOX, sleep } =
  require(process.env.CRI_COMMON);

const T = process.env.E2E_T;
const QUARKD = process.env.QUARKD;
const KILLS = Number(process.env.CHAOS_KILLS || 10);
const WORKERS = Number(process.env.CHAOS_WORKERS || 3);
const MAX_PODS = 6;
let seed = Number(process.env.CHAOS_SEED || Date.now() % 100000);
const SEED0 = seed;
const rnd = (n) => { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const pick = (a) => a[rnd(a.length)];
const IMAGE = BUSYBOX;
const S = grpc.status;
const CHANNEL = { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 500 };
// Codes a healthy quarkd may answer in a random sequence (racing calls).
const CLEAN = new Set([S.NOT_FOUND, S.FAILED_PRECONDITION, S.INVALID_ARGUMENT, S.ALREADY_EXISTS]);

const fig = { ops: 0, ok: 0, kills: 0, restarts: 0, crashes: 0, podsCreated: 0, podsRemoved: 0,
  ctrsCreated: 0, ctrsRemoved: 0, inconsistent: 0, leaks: 0, bad: 0, checks: 0, errors: {} };
const problems = [];
function problem(kind, what) {
  if (kind === 'leak') fig.leaks++;
  else if (kind === 'error') fig.bad++;
  else fig.inconsistent++;
  if (problems.length < 40) problems.push(`${kind}: ${what}`);
  console.log(`PROBLEM ${kind}: ${what}`);
}

// ---- quarkd ----
let qd = null;
let gen = 0; // bumped at every kill: calls that span one do not count as errors
function startQuarkd() {
  const out = fs.openSync(`${T}/quarkd.log`, 'a');
  const proc = spawn(QUARKD, ['--config', `${T}/config.json`, '--foreground'],
    { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  fs.writeFileSync(`${T}/quarkd.pid`, String(proc.pid)); // for chaos.sh's clean-up
  const q = { proc, pid: proc.pid, killed: false };
  q.exited = new Promise((res) => proc.on('exit', (code, sig) => {
    q.code = code; q.sig = sig;
    if (!q.killed && !q.termed) {
      fig.crashes++;
      problems.push(`quarkd ${q.pid} exited by itself (code ${code}, signal ${sig})`);
    }
    res();
  }));
  qd = q;
  return q;
}
async function waitReady(rt) {
  for (let i = 0; i < 300; i++) {
    const r = await call(rt, 'Version', {}, 1000);
    if (!r.err) return true;
    if (qd.code !== undefined || qd.sig !== undefined) return false;
    await sleep(50);
  }
  return false;
}

// ---- host state ----
const RUN_ROOT = `${T}/run/pods`;
function cmdlines() {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let a;
    try { a = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0'); } catch (e) { continue; }
    let st = '';
    try { st = fs.readFileSync(`/proc/${p}/stat`, 'latin1').replace(/^.*\) /, '')[0]; } catch (e) { continue; }
    if (st === 'Z') continue;
    out.push({ pid: Number(p), argv: a });
  }
  return out;
}
// Sandbox processes of this quarkd: pod id -> [pids]
function sandboxes() {
  const m = new Map();
  for (const { pid, argv } of cmdlines()) {
    if (argv[1] !== 'pod') continue;
    const ci = argv.indexOf('--control'), pi = argv.indexOf('--pod-id');
    if (ci < 0 || pi < 0 || !String(argv[ci + 1]).startsWith(`${RUN_ROOT}/`)) continue;
    const id = argv[pi + 1];
    if (!m.has(id)) m.set(id, []);
    m.get(id).push(pid);
  }
  return m;
}
function mounts() {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    return { path: f[4], type: f[dash + 1] };
  });
}
const ls = (d) => { try { return fs.readdirSync(d); } catch (e) { return []; } };
function readJson(p) { try { return JSON.parse(fs.readFileSync(p, 'utf8')); } catch (e) { return null; } }
// quarkd's log: its LogFile, or its output with --foreground.
function quarkLog() {
  let log = '';
  for (const f of ['quark.log', 'quarkd.log']) try { log += fs.readFileSync(`${T}/${f}`, 'utf8'); } catch (e) { /* none */ }
  return log;
}
function logIds() { // 12-hex prefixes quarkd logged (pods and containers)
  const log = quarkLog();
  const s = new Set();
  for (const m of log.matchAll(/\[([0-9a-f]{12})/g)) s.add(m[1]);
  return s;
}
function ourNetns(ids) { // quark-<16 hex> namespaces of pods this quarkd logged
  return ls('/var/run/netns').filter((n) => /^quark-[0-9a-f]{16}$/.test(n) && ids.has(n.slice(6, 18)));
}

// ---- the model the clients keep ----
const told = new Map(); // pod id -> cfg: RunPodSandbox said OK, no removal tried since
const pool = new Map(); // pod id -> cfg: pods the workers act on (told + adopted after a restart)
let ctrs = []; // {id, pod}
let n = 0;
function podCfg() {
  const k = n++;
  return { metadata: { name: `rc-${k}`, namespace: 'chaos', uid: `uid-rc-${SEED0}-${k}`, attempt: 0 },
    hostname: `r${k}`, log_directory: `${T}/logs/rc-${k}`,
    linux: { security_context: { namespace_options: { network: rnd(4) ? 'POD' : 'NODE' } } } };
}
async function c(rt, method, req, ms) {
  fig.ops++;
  const g = gen;
  const r = await call(rt, method, req, ms || 30000);
  if (!r.err) { fig.ok++; return r; }
  const name = Object.keys(S).find((k) => S[k] === r.err.code) || String(r.err.code);
  fig.errors[name] = (fig.errors[name] || 0) + 1;
  r.spanned = g !== gen || qd.killed;
  if (!r.spanned && !CLEAN.has(r.err.code)) problem('error', `${method}: ${name} ${r.err.details}`);
  return r;
}
// Half of the kills wait for a RunPodSandbox or RemovePodSandbox to begin
// and land 0-150 ms into it (RunPodSandbox takes ~40-150 ms here), so the
// windows between its steps are hit, not only the idle time around them.
let onPodOp = null;
const stopped = new Set(); // pods a StopPodSandbox answered OK for
const actions = {
  async runPod(rt) {
    if (pool.size >= MAX_PODS) return actions.removePod(rt);
    const cfg = podCfg();
    if (onPodOp) onPodOp();
    const r = await c(rt, 'RunPodSandbox', { config: cfg }, 60000);
    if (!r.err) { told.set(r.res.pod_sandbox_id, cfg); pool.set(r.res.pod_sandbox_id, cfg); fig.podsCreated++; }
  },
  async createCtr(rt) {
    const live = [...pool].filter(([id]) => !stopped.has(id));
    if (!live.length) return actions.runPod(rt);
    const [id, cfg] = pick(live);
    const cmd = pick([['sleep', '30'], ['true'], ['sh', '-c', 'exit 3'], ['sleep', '1']]);
    const r = await c(rt, 'CreateContainer', { pod_sandbox_id: id, sandbox_config: cfg,
      config: { metadata: { name: `x${n++}`, attempt: 0 }, image: { image: IMAGE }, command: cmd, log_path: `x${n}.log` } });
    if (r.err) return;
    fig.ctrsCreated++;
    ctrs.push({ id: r.res.container_id, pod: id });
    if (rnd(4)) await c(rt, 'StartContainer', { container_id: r.res.container_id });
  },
  async startCtr(rt) {
    const live = ctrs.filter((x) => !stopped.has(x.pod));
    if (live.length) await c(rt, 'StartContainer', { container_id: pick(live).id });
  },
  async stopCtr(rt) { if (ctrs.length) await c(rt, 'StopContainer', { container_id: pick(ctrs).id, timeout: rnd(2) }); },
  async removeCtr(rt) {
    if (!ctrs.length) return;
    const x = pick(ctrs);
    const r = await c(rt, 'RemoveContainer', { container_id: x.id });
    if (!r.err) { ctrs = ctrs.filter((y) => y !== x); fig.ctrsRemoved++; }
  },
  async stopPod(rt) {
    if (!pool.size) return;
    const id = pick([...pool.keys()]);
    const r = await c(rt, 'StopPodSandbox', { pod_sandbox_id: id });
    if (!r.err) stopped.add(id);
  },
  async removePod(rt) {
    if (!pool.size) return;
    const id = pick([...pool.keys()]);
    told.delete(id); // from here on its fate is open until the answer
    if (onPodOp) onPodOp();
    const r = await c(rt, 'RemovePodSandbox', { pod_sandbox_id: id });
    if (!r.err) {
      pool.delete(id);
      ctrs = ctrs.filter((y) => y.pod !== id);
      fig.podsRemoved++;
    }
  },
  async list(rt) { await c(rt, 'ListPodSandbox', {}); await c(rt, 'ListContainers', {}); },
};
// Weighted towards what the check is about: creation and removal of pods.
const weighted = ['runPod', 'runPod', 'runPod', 'createCtr', 'createCtr', 'startCtr', 'stopCtr',
  'removeCtr', 'stopPod', 'removePod', 'removePod', 'list'];

let running = false;
let stopAll = false;
let inflight = 0;
let gate = null;
let openGate = null;
async function worker(w) {
  let rt = clients(CHANNEL).runtime;
  let myGen = -1;
  while (!stopAll) {
    if (!running) { await gate; continue; }
    if (myGen !== gen) { rt.close(); rt = clients(CHANNEL).runtime; myGen = gen; } // fresh channel per quarkd
    inflight++;
    try { await actions[pick(weighted)](rt); } catch (e) { problem('error', `worker ${w}: ${e.stack}`); }
    inflight--;
  }
  rt.close();
}
function pause() { running = false; gate = new Promise((r) => { openGate = r; }); }
function resume() { running = true; openGate(); }
async function quiesce() { for (let i = 0; inflight > 0 && i < 1200; i++) await sleep(50); }

async function killAndRestart(rt0) {
  qd.killed = true;
  gen++;
  try { process.kill(qd.pid, 'SIGKILL'); } catch (e) { /* it died by itself: counted as a crash */ }
  await qd.exited;
  fig.kills++;
  await quiesce();
  if (inflight > 0) problem('error', `${inflight} calls still in flight 60 s after the kill`);
  await sleep(rnd(300)); // sandboxes go on meanwhile
  startQuarkd();
  const rt = clients(CHANNEL).runtime;
  const ok = await waitReady(rt);
  if (!ok) { rt.close(); throw new Error(`quarkd did not come back after kill ${fig.kills}: ${qd.code} ${qd.sig}`); }
  fig.restarts++;
  return rt;
}

// ---- the check after a restart ----
async function consistency(rt, final) {
  fig.checks++;
  const lp = await call(rt, 'ListPodSandbox', {}, 30000);
  const lc = await call(rt, 'ListContainers', {}, 30000);
  if (lp.err || lc.err) { problem('inconsistent', `List after restart: ${(lp.err || lc.err).details}`); return null; }
  const pods = new Map(lp.res.items.map((p) => [p.id, p]));
  for (const id of told.keys())
    if (!pods.has(id)) problem('inconsistent', `pod ${id.slice(0, 12)} was created (RunPodSandbox OK) and is not listed`);
  const sbx = sandboxes();
  const mi = mounts();
  const mounted = new Set(mi.map((m) => m.path));
  for (const [id, p] of pods) {
    const rec = readJson(`${T}/state/pods/${id}.json`);
    const ext = (rec && rec.Ext) || {};
    if (!ext.ControlSocket) problem('inconsistent', `pod ${id.slice(0, 12)} listed but never became READY (half created)`);
    if (ext.Removing) problem('inconsistent', `pod ${id.slice(0, 12)} listed with a removal pending`);
    if (ext.NetworkMode !== 'host') {
      let ns = ext.NetnsPath;
      try { ns = `${fs.realpathSync(ns.replace(/\/[^/]*$/, ''))}/${ns.replace(/^.*\//, '')}`; } catch (e) { /* checked below */ }
      if (!ns || !mi.some((m) => m.path === ns && m.type === 'nsfs'))
        problem('inconsistent', `pod ${id.slice(0, 12)} (${ext.NetworkMode}): netns ${ns} not pinned`);
    }
    if (p.state === 'SANDBOX_READY' && !sbx.has(id))
      problem('inconsistent', `pod ${id.slice(0, 12)} READY without a sandbox process`);
  }
  for (const x of lc.res.containers) {
    const rec = readJson(`${T}/state/containers/${x.id}.json`);
    const ext = (rec && rec.Ext) || {};
    const p = pods.get(x.pod_sandbox_id);
    const tag = `container ${x.id.slice(0, 12)} (${x.state})`;
    if (!p) { problem('inconsistent', `${tag} of a pod that is not listed`); continue; }
    if (x.state === 'CONTAINER_CREATED' && !ext.Argv) problem('inconsistent', `${tag}: listed but its creation never finished`);
    if (ext.Removing) problem('inconsistent', `${tag}: listed with a removal pending`);
    if (!ext.Rootfs || !mounted.has(ext.Rootfs)) problem('inconsistent', `${tag}: root filesystem not mounted`);
    if (x.state === 'CONTAINER_RUNNING' && p.state !== 'SANDBOX_READY')
      problem('inconsistent', `${tag}: running in a pod that is not ready`);
    if (x.state === 'CONTAINER_EXITED') {
      const st = await call(rt, 'ContainerStatus', { container_id: x.id }, 30000);
      const s = st.res && st.res.status;
      if (!s || !(Number(s.finished_at) > 0) || typeof s.exit_code !== 'number' || !s.reason)
        problem('inconsistent', `${tag}: exit not reported (${s && JSON.stringify([s.finished_at, s.exit_code, s.reason])})`);
    }
  }
  // This quarkd's leftovers: whatever no listed pod or container explains.
  const ctrIds = new Set(lc.res.containers.map((x) => x.id));
  for (const [id, pids] of sbx)
    if (!pods.has(id)) problem('leak', `sandbox process ${pids.join(',')} of pod ${id.slice(0, 12)} that is not listed`);
  const ids = logIds();
  for (const ns of ourNetns(ids))
    if (![...pods.keys()].some((id) => id.startsWith(ns.slice(6)))) problem('leak', `netns ${ns}`);
  for (const d of ls(RUN_ROOT))
    if (![...pods.keys()].some((id) => id.startsWith(d))) problem('leak', `run dir ${RUN_ROOT}/${d}`);
  for (const d of ls(`${T}/images/containers`))
    if (!ctrIds.has(d)) problem('leak', `root filesystem ${T}/images/containers/${d}`);
  for (const m of mi) {
    if (!m.path.startsWith(`${T}/`)) continue;
    const own = lc.res.containers.some((x) => {
      const rec = readJson(`${T}/state/containers/${x.id}.json`);
      return rec && rec.Ext && rec.Ext.Rootfs && (m.path === rec.Ext.Rootfs || m.path.startsWith(`${rec.Ext.Rootfs}/`));
    });
    if (!own) problem('leak', `mount ${m.path} (${m.type})`);
  }
  // CNI (chaos.sh --cni): a cache entry or an IPAM lease only for a listed
  // pod (a NOTREADY pod whose sandbox died keeps its attachment until
  // StopPodSandbox, as with containerd); loopback-only: none at all.
  const ready = (id) => pods.has(id);
  for (const f of ls(`${T}/cni-cache/results`)) {
    const m = f.match(/-([0-9a-f]{64})-/);
    if (final || !m || !ready(m[1])) problem('leak', `CNI cache entry ${f}`);
  }
  if (process.env.CHAOS_IPAM) {
    for (const f of ls(process.env.CHAOS_IPAM)) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(f)) continue; // lock, last_reserved_ip.0
      const owner = (fs.readFileSync(`${process.env.CHAOS_IPAM}/${f}`, 'utf8').split(/\s/)[0] || '').trim();
      if (final || !ready(owner)) problem('leak', `IPAM lease ${f} of ${owner.slice(0, 12)}`);
    }
  }
  return { pods, ctrs: lc.res.containers };
}

function cgroupLeaks(ids) {
  const found = [];
  const walk = (d, depth) => {
    if (depth > 5) return;
    for (const e of ls(d)) {
      let st;
      try { st = fs.lstatSync(`${d}/${e}`); } catch (x) { continue; }
      if (!st.isDirectory()) continue;
      for (const id of ids) if (e.includes(id)) found.push(`${d}/${e}`);
      walk(`${d}/${e}`, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}
const fdCount = (pid) => ls(`/proc/${pid}/fd`).length;

(async () => {
  const t0 = Date.now();
  startQuarkd();
  let rt = clients(CHANNEL).runtime;
  if (!(await waitReady(rt))) throw new Error('quarkd did not start');
  const ws = [];
  pause();
  for (let w = 0; w < WORKERS; w++) ws.push(worker(w));
  for (let k = 0; k < KILLS; k++) {
    resume();
    await sleep(300 + rnd(1500)); // clients at work
    if (k % 2) { // then into the next pod creation or removal
      await Promise.race([new Promise((r) => { onPodOp = r; }), sleep(3000)]);
      onPodOp = null;
      await sleep(rnd(150));
    }
    pause();
    rt.close();
    rt = await killAndRestart(rt);
    const seen = await consistency(rt, false);
    if (!seen) break;
    // The clients go on with what is there now (pods they may not know of
    // were created fully: a client that timed out would find them listed).
    for (const id of [...pool.keys()]) if (!seen.pods.has(id)) pool.delete(id);
    for (const [id, p] of seen.pods) if (!pool.has(id)) pool.set(id, { metadata: p.metadata, log_directory: `${T}/logs/adopted` });
    ctrs = seen.ctrs.map((x) => ({ id: x.id, pod: x.pod_sandbox_id }));
    stopped.clear();
    for (const [id, p] of seen.pods) if (p.state !== 'SANDBOX_READY') stopped.add(id);
  }
  stopAll = true;
  resume();
  await Promise.all(ws);
  // One more kill at rest, then everything goes away.
  rt.close();
  rt = await killAndRestart(rt);
  const seen = await consistency(rt, false);
  await sleep(500);
  const fds0 = fdCount(qd.pid);
  const podIds = seen ? [...seen.pods.keys()] : [];
  for (const id of podIds) {
    const s = await call(rt, 'StopPodSandbox', { pod_sandbox_id: id }, 60000);
    const r = await call(rt, 'RemovePodSandbox', { pod_sandbox_id: id }, 60000);
    if (s.err || r.err) problem('error', `final stop/remove of ${id.slice(0, 12)}: ${(s.err || r.err).details}`);
    else fig.podsRemoved++;
  }
  // And a restart after the removals: nothing may come back.
  await sleep(500);
  const fds1 = fdCount(qd.pid);
  rt.close();
  rt = await killAndRestart(rt);
  told.clear();
  const end = await consistency(rt, true);
  const ids = logIds();
  for (const g of cgroupLeaks([...ids])) problem('leak', `cgroup ${g}`);
  check(end && end.pods.size === 0 && end.ctrs.length === 0, 'no pods or containers left after the final removal and restart');
  // Recovery work the restarts did, from quarkd's log.
  const log = quarkLog();
  const rec = { rolledBack: 0, removals: 0, ctrRolledBack: 0, ctrRemovals: 0, starts: 0, killed: 0 };
  for (const m of log.matchAll(/recovery: \d+ pods: \d+ reattached, \d+ sandbox gone, (\d+) half-created rolled back, (\d+) removals finished, \d+ CNI DEL redone; containers: (\d+) creates rolled back, (\d+) removals finished, (\d+) starts recorded; leftovers: (\d+) sandbox/g)) {
    rec.rolledBack += +m[1]; rec.removals += +m[2]; rec.ctrRolledBack += +m[3];
    rec.ctrRemovals += +m[4]; rec.starts += +m[5]; rec.killed += +m[6];
  }
  const sanitizer = (fs.existsSync(`${T}/quarkd.log`) ? fs.readFileSync(`${T}/quarkd.log`, 'utf8') : '')
    .match(/ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:/g);
  if (sanitizer) { fig.crashes += sanitizer.length; problems.push(`sanitizer reports in quarkd.log: ${sanitizer.length}`); }
  qd.termed = true;
  process.kill(qd.pid, 'SIGTERM');
  await qd.exited;
  if (qd.code !== 0) { fig.crashes++; problems.push(`quarkd exited ${qd.code}/${qd.sig} after SIGTERM`); }
  if (fds1 > fds0 + 2) problem('leak', `quarkd fds grew over the final removals: ${fds0} -> ${fds1}`);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`chaos-restart: seed ${SEED0}, ${WORKERS} clients, ${fig.ops} ops (${fig.ok} OK, errors ${JSON.stringify(fig.errors)}), ` +
    `${fig.kills} kills, ${fig.restarts} restarts, ${fig.checks} checks, pods created ${fig.podsCreated} removed ${fig.podsRemoved}, ` +
    `containers created ${fig.ctrsCreated} removed ${fig.ctrsRemoved}; recovery: ${rec.rolledBack} half-created pods rolled back, ` +
    `${rec.removals} pod removals finished, ${rec.ctrRolledBack} container creates rolled back, ${rec.ctrRemovals} container removals finished, ` +
    `${rec.starts} starts recorded, ${rec.killed} sandbox processes killed; quarkd fds ${fds0} -> ${fds1}; ` +
    `crashes ${fig.crashes}, inconsistencies ${fig.inconsistent}, leaks ${fig.leaks}, bad errors ${fig.bad}, ${secs} s`);
  check(fig.crashes === 0, `no quarkd crash (${problems.filter((p) => /quarkd|sanitizer/.test(p)).join('; ')})`);
  check(fig.inconsistent === 0, `every pod fully present or fully gone after each restart (${fig.inconsistent} problems)`);
  check(fig.leaks === 0, `nothing leaked (${fig.leaks})`);
  check(fig.bad === 0, `only clean gRPC errors outside the kills (${fig.bad})`);
  if (problems.length) console.log(problems.slice(0, 20).join('\n'));
  done();
})().catch((e) => { console.error(e); if (qd && !qd.killed) try { process.kill(qd.pid, 'SIGKILL'); } catch (x) { /* gone */ } process.exit(1); });
