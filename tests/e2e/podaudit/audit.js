// Issue #6's Deliver items that tests/e2e/pods does not cover, on one busybox
// pod with real VMs (driven by podaudit.sh):
// - pod stats come from the pod cgroup (the VMM's host cost), container
//   stats from the guest: the pod's CPU lies between two reads of the
//   cgroup taken around the call, its memory is the cgroup's, a second
//   sample carries usage_nano_cores; the process count is the guest's;
// - user by name from the image's /etc/passwd (run_as_username), for the
//   container and for ExecSync in it;
// - /dev/termination-log: what a non-root container writes there is in the
//   host file that ContainerStatus names;
// - working dir from the config; ReopenContainerLog moves the output to a
//   new file with no line lost or doubled;
// - StopContainer sends SIGTERM first (a trapping container exits 0 at
//   once), then SIGKILL after the timeout (an ignoring one: 137);
// - ListPodSandbox/ListContainers filters (id prefix, state, labels, pod);
//   ContainerStatus reason, message, mounts, log path, image, verbose info;
// - bad input (unknown pod, invalid mounts, image not pulled, 10 MB env,
//   container in a stopped pod, an unknown handler, hostPID/hostIPC) gets a
//   clear error and leaves the state store's records and the container
//   layers byte for byte as they were;
// - (`net`, on a CNI bridge) the pod's network stats are its eth0's.
'use strict';
const { clients, call, check, expectCode, expectAlive, done, grpc, BUSYBOX, sleep, createStart,
  waitContainer } =
  require(process.env.CRI_COMMON);
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const ZERO = '0'.repeat(64);
const V2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

const podCfg = {
  metadata: { name: 'audit', namespace: 'e2e', uid: 'uid-audit', attempt: 0 },
  hostname: 'audit', log_directory: `${T}/logs/audit`, labels: { app: 'audit', tier: 'x' },
  port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: 0 }],
};
function ctr(name, command, extra) {
  return Object.assign({
    metadata: { name, attempt: 0 }, image: { image: IMAGE }, command,
    log_path: `${name}.log`, labels: { c: name, app: 'audit' },
  }, extra || {});
}
async function status(id, verbose) {
  const r = await call(rt, 'ContainerStatus', { container_id: id, verbose: !!verbose });
  return r.err ? null : (verbose ? r.res : r.res.status);
}
const waitState = (id, state, ms) => waitContainer(rt, id, state, ms);
const run = (podId, cfg) => createStart(rt, podId, cfg, podCfg);
function logText(name) {
  try { return fs.readFileSync(`${T}/logs/audit/${name}.log`, 'utf8'); } catch (e) { return ''; }
}
async function waitLog(name, re, ms) {
  const until = Date.now() + ms;
  while (!re.test(logText(name)) && Date.now() < until) await sleep(200);
  return re.test(logText(name));
}

// The pod cgroup, read as stats_rpc.c reads it.
function cgRead(rel, ctrl, file) {
  const p = V2 ? `/sys/fs/cgroup/${rel}/${file}` : `/sys/fs/cgroup/${ctrl}/${rel}/${file}`;
  try { return fs.readFileSync(p, 'utf8'); } catch (e) { return null; }
}
function cgCpuNs(rel) {
  if (!V2) return Number(cgRead(rel, 'cpuacct', 'cpuacct.usage'));
  const m = /usage_usec (\d+)/.exec(cgRead(rel, 'cpu', 'cpu.stat') || '');
  return m ? Number(m[1]) * 1000 : NaN;
}
function cgMem(rel) {
  return Number(V2 ? cgRead(rel, 'memory', 'memory.current') : cgRead(rel, 'memory', 'memory.usage_in_bytes'));
}

// Every file under the state root and the container layers' top level:
// path -> sha256 (files) or 'dir'.
function snapshot() {
  const out = {};
  const walk = (d) => {
    let ents;
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch (e) { return; }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) { out[p] = 'dir'; walk(p); } else if (e.isFile()) {
        out[p] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      }
    }
  };
  walk(`${T}/state`);
  try { for (const n of fs.readdirSync(`${T}/images/containers`)) out[`layers/${n}`] = 'dir'; } catch (e) { /* none */ }
  return out;
}
function diff(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => a[k] !== b[k]).map((k) => `${k}: ${a[k] ? 'changed' : 'new'}${b[k] ? '' : ' gone'}`);
}
// A call that must fail with `code` (message matching re) and change nothing
// on disk.
async function refusedNoChange(method, req, code, what, re) {
  const before = snapshot();
  const r = await call(rt, method, req, 60000);
  expectCode(r, code, what);
  if (re) check(r.err && re.test(r.err.details), `${what}: message ${r.err ? JSON.stringify(r.err.details.slice(0, 160)) : '(none)'} matches ${re}`);
  const d = diff(before, snapshot());
  check(d.length === 0, `${what}: state records and layers unchanged (${d.slice(0, 3).join('; ')})`);
}

async function main() {
  // Pods quark cannot run are refused before anything is made.
  const nsPod = (name, ns) => Object.assign({}, podCfg, {
    metadata: { name, namespace: 'e2e', uid: `uid-${name}`, attempt: 0 },
    linux: { security_context: { namespace_options: ns } } });
  await refusedNoChange('RunPodSandbox', { config: podCfg, runtime_handler: 'runc' }, S.INVALID_ARGUMENT,
                        'RunPodSandbox with handler runc', /handler 'runc'.*quark/);
  await refusedNoChange('RunPodSandbox', { config: nsPod('hostpid', { pid: 'NODE' }) }, S.UNIMPLEMENTED,
                        'RunPodSandbox with hostPID', /host's pid namespace/);
  await refusedNoChange('RunPodSandbox', { config: nsPod('hostipc', { ipc: 'NODE', pid: 'CONTAINER' }) }, S.UNIMPLEMENTED,
                        'RunPodSandbox with hostIPC', /host's IPC namespace/);

  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: '' }, 120000);
  check(!rp.err, 'RunPodSandbox with handler ""' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const ps = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
  const info = JSON.parse(ps.res.info.info);
  const cgPath = info.Cgroup && info.Cgroup.Path;
  check(typeof cgPath === 'string' && cgPath.endsWith(`quark-${pod.slice(0, 32)}`), `verbose info names the pod cgroup (${cgPath})`);
  const pm0 = (info.PortMappings || [])[0];
  check(pm0 && pm0.ContainerPort === 8080 && /tcp/i.test(pm0.Protocol), `port mappings recorded (${JSON.stringify(info.PortMappings)})`);

  // User by name, SIGTERM handled, termination log.
  const user = await run(pod, ctr('user', ['/bin/sh', '-c',
    "trap 'echo got TERM; exit 0' TERM; echo uid=$(id -u) gid=$(id -g); echo bye-msg > /dev/termination-log; while true; do sleep 1; done"],
  { linux: { security_context: { run_as_username: 'nobody', namespace_options: { pid: 'CONTAINER' } } } }));
  const termproof = await run(pod, ctr('termproof', ['/bin/sh', '-c', "trap '' TERM; echo ready; while true; do sleep 1; done"],
                                      { linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } } }));
  const term = await run(pod, ctr('term', ['/bin/sh', '-c', 'echo last words > /dev/termination-log; echo done in $(pwd); exit 2'],
                                  { working_dir: '/etc' }));
  const ticker = await run(pod, ctr('ticker', ['/bin/sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']));
  check(await waitLog('user', /uid=65534 gid=65534/, 15000), `run_as_username nobody: uid and gid 65534 from the image's /etc/passwd (log: ${JSON.stringify(logText('user').slice(-120))})`);
  let r = await call(rt, 'ExecSync', { container_id: user, cmd: ['/bin/id', '-u'], timeout: 20 }, 30000);
  check(!r.err && r.res.stdout.toString().trim() === '65534', `ExecSync runs as the container's user (${r.err ? r.err.details : r.res.stdout.toString().trim()})`);
  // Separate roots, and separate pid namespaces for containers in pid mode
  // CONTAINER (the shared one of mode POD: tests/e2e/pidns).
  r = await call(rt, 'ExecSync', { container_id: termproof, cmd: ['/bin/sh', '-c', 'touch /only-in-termproof && cat /proc/1/cmdline'], timeout: 20 }, 30000);
  check(!r.err && r.res.exit_code === 0 && /trap '' TERM/.test(r.res.stdout.toString()), `pid 1 of termproof is its own init (${r.err ? r.err.details : JSON.stringify(r.res.stdout.toString().slice(0, 60))})`);
  r = await call(rt, 'ExecSync', { container_id: user, cmd: ['/bin/sh', '-c', 'test -e /only-in-termproof; echo $?; cat /proc/1/cmdline'], timeout: 20 }, 30000);
  check(!r.err && /^1\n/.test(r.res.stdout.toString()) && /got TERM/.test(r.res.stdout.toString()),
        `user has its own root and its own pid 1 (${r.err ? r.err.details : JSON.stringify(r.res.stdout.toString().slice(0, 60))})`);

  const st = await waitState(term, 'CONTAINER_EXITED', 15000);
  check(st && st.exit_code === 2 && st.reason === 'Error' && Number(st.finished_at) >= Number(st.started_at) && Number(st.started_at) > 0,
        `exit 2: EXITED, reason Error, times (${st && JSON.stringify([st.state, st.exit_code, st.reason])})`);
  check(st && typeof st.message === 'string', 'message is there');
  check(st && st.image.image === IMAGE && /sha256:/.test(st.image_ref), 'image and image ref');
  check(st && st.log_path === `${T}/logs/audit/term.log` && /done in \/etc/.test(logText('term')),
        `log path, working dir from the config (${st && st.log_path}: ${JSON.stringify(logText('term').slice(-60))})`);
  const tm = st && st.mounts.find((m) => m.container_path === '/dev/termination-log');
  check(tm && tm.host_path && !tm.readonly, `termination log mount listed (${tm && tm.host_path})`);
  let tl = '';
  try { tl = fs.readFileSync(tm.host_path, 'utf8'); } catch (e) { tl = `(${e.message})`; }
  check(tl === 'last words\n', `the host file holds what the container wrote (${JSON.stringify(tl)})`);
  const um = (await status(user)).mounts.find((m) => m.container_path === '/dev/termination-log');
  try { tl = fs.readFileSync(um.host_path, 'utf8'); } catch (e) { tl = `(${e.message})`; }
  check(tl === 'bye-msg\n', `a non-root container can write its termination log (${JSON.stringify(tl)})`);
  const sv = await status(user, true);
  let vinfo = null;
  try { vinfo = JSON.parse(sv.info.info); } catch (e) { /* checked below */ }
  check(vinfo && typeof vinfo === 'object', 'ContainerStatus verbose info is JSON');

  // Filters.
  let lp = await call(rt, 'ListPodSandbox', { filter: { id: pod.slice(0, 12) } });
  check(lp.res.items.length === 1 && lp.res.items[0].id === pod, 'ListPodSandbox by id prefix');
  lp = await call(rt, 'ListPodSandbox', { filter: { id: pod, state: { state: 'SANDBOX_NOTREADY' } } });
  check(lp.res.items.length === 0, 'ListPodSandbox by id and the wrong state: none');
  lp = await call(rt, 'ListPodSandbox', { filter: { label_selector: { app: 'audit', tier: 'y' } } });
  check(lp.res.items.length === 0, 'ListPodSandbox: every label of the selector must match');
  let lc = await call(rt, 'ListContainers', { filter: { id: term.slice(0, 10) } });
  check(lc.res.containers.length === 1 && lc.res.containers[0].id === term, 'ListContainers by id prefix');
  lc = await call(rt, 'ListContainers', { filter: { pod_sandbox_id: pod.slice(0, 12), state: { state: 'CONTAINER_EXITED' } } });
  check(lc.res.containers.length === 1 && lc.res.containers[0].id === term, `ListContainers by pod id prefix and EXITED (${lc.res.containers.length})`);
  lc = await call(rt, 'ListContainers', { filter: { label_selector: { app: 'audit', c: 'termproof' } } });
  check(lc.res.containers.length === 1 && lc.res.containers[0].id === termproof, 'ListContainers by two labels');
  lc = await call(rt, 'ListContainers', { filter: { pod_sandbox_id: ZERO } });
  check(lc.res.containers.length === 0, 'ListContainers of an unknown pod: none');

  // Log rotation: after ReopenContainerLog new lines go to a new file at
  // the path and the renamed one stops growing.
  const tlog = `${T}/logs/audit/ticker.log`;
  check(await waitLog('ticker', /tick 2\n/, 10000), 'ticker logs');
  fs.renameSync(tlog, `${tlog}.1`);
  expectCode(await call(rt, 'ReopenContainerLog', { container_id: ticker }), S.OK, 'ReopenContainerLog');
  const old1 = fs.statSync(`${tlog}.1`).size;
  check(await waitLog('ticker', /tick \d+\n/, 10000), 'new lines in the reopened file');
  await sleep(1000);
  check(fs.statSync(`${tlog}.1`).size === old1, 'the renamed file no longer grows');
  const first = /tick (\d+)/.exec(logText('ticker'));
  const lastOld = [...fs.readFileSync(`${tlog}.1`, 'utf8').matchAll(/tick (\d+)/g)].pop();
  check(first && lastOld && Number(first[1]) === Number(lastOld[1]) + 1,
        `no line lost or doubled across the reopen (${lastOld && lastOld[1]} then ${first && first[1]})`);
  expectCode(await call(rt, 'StopContainer', { container_id: ticker, timeout: 0 }, 30000), S.OK, 'StopContainer ticker');

  // Stats: containers from the guest, the pod from its cgroup.
  await call(rt, 'ExecSync', { container_id: termproof, cmd: ['/bin/sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'], timeout: 60 }, 90000);
  const cpu0 = cgCpuNs(cgPath), mem0 = cgMem(cgPath);
  const pst = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  const cpu1 = cgCpuNs(cgPath), mem1 = cgMem(cgPath);
  check(!pst.err, 'PodSandboxStats' + (pst.err ? ` (${pst.err.details})` : ''));
  const l = pst.res && pst.res.stats.linux;
  const pc = l && l.cpu ? Number(l.cpu.usage_core_nano_seconds.value) : -1;
  check(cpu0 > 0 && pc >= cpu0 && pc <= cpu1, `pod CPU ${pc} ns is the cgroup's (read ${cpu0} before, ${cpu1} after)`);
  check(l && l.cpu && !l.cpu.usage_nano_cores, 'a pod\'s first CPU sample has no usage_nano_cores');
  const npr = l && l.process && l.process.process_count ? Number(l.process.process_count.value) : -1;
  check(npr >= 2 && npr <= 20, `pod process count from the guest: ${npr} (two running shells and their sleeps)`);
  const pm = l && l.memory ? l.memory : null;
  const usage = pm ? Number(pm.usage_bytes.value) : -1;
  check(pm && usage >= Math.min(mem0, mem1) * 0.9 && usage <= Math.max(mem0, mem1) * 1.1,
        `pod memory usage ${usage} is the cgroup's (${mem0}, ${mem1})`);
  check(pm && Number(pm.working_set_bytes.value) > 0 && Number(pm.working_set_bytes.value) <= usage &&
        Number(pm.rss_bytes.value) > 0, `pod working set and RSS (${pm && [pm.working_set_bytes.value, pm.rss_bytes.value]})`);
  check(pm && pm.available_bytes && Number(pm.available_bytes.value) > 0, `available bytes under the cgroup limit (${pm && pm.available_bytes && pm.available_bytes.value})`);
  const cstats = (l && l.containers) || [];
  const csum = cstats.reduce((a, c) => a + (c.cpu ? Number(c.cpu.usage_core_nano_seconds.value) : 0), 0);
  check(cstats.length === 2 && cstats.every((c) => c.cpu && Number(c.cpu.usage_core_nano_seconds.value) > 0),
        `pod stats list the 2 running containers with guest CPU (${cstats.length})`);
  // Not compared with pc: under load the containers' guest CPU can exceed
  // what the host charged the pod (seen: 128 ms against 89 ms): the guest
  // charges TSC time between task switches, host steal time included.
  console.log(`note pod CPU (host cgroup) ${pc} ns, its containers' (guest) ${csum} ns`);
  // ... and the cgroup holds every thread of the jailed VMM (the processes
  // of the pod's sandbox in a pid namespace of their own; the one-thread
  // supervisor outside the jail stays outside the cgroup, README "The
  // sandbox jail").
  const tasks = new Set((cgRead(cgPath, 'cpuacct', V2 ? 'cgroup.threads' : 'tasks') || '').split('\n').filter(Boolean));
  const mark = `${T}/run/pods/${pod.slice(0, 32)}`;
  const threads = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cmd = '', nspid = [];
    try {
      cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      nspid = (/NSpid:\s+([^\n]*)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8')) || ['', ''])[1].split(/\s+/);
    } catch (e) { continue; }
    if (!cmd.includes(mark) || nspid.length < 2) continue;
    try { threads.push(...fs.readdirSync(`/proc/${p}/task`)); } catch (e) { /* exited */ }
  }
  const outside = threads.filter((t) => !tasks.has(t));
  check(threads.length > 1 && outside.length === 0,
        `all ${threads.length} threads of the pod's jailed VMM are in its cgroup (outside: ${outside.join(',')})`);
  const lps = await call(rt, 'ListPodSandboxStats', { filter: { id: pod } });
  const lpc = lps.res && lps.res.stats[0] && lps.res.stats[0].linux.cpu;
  check(lpc && Number(lpc.usage_core_nano_seconds.value) >= pc, 'ListPodSandboxStats: the same cgroup counter');
  await call(rt, 'ExecSync', { container_id: termproof, cmd: ['/bin/sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'], timeout: 60 }, 90000);
  const pst2 = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  const nc = pst2.res && pst2.res.stats.linux.cpu && pst2.res.stats.linux.cpu.usage_nano_cores;
  const ncores = require('os').cpus().length;
  check(nc && Number(nc.value) > 0 && Number(nc.value) <= ncores * 1.1e9,
        `usage_nano_cores from the previous sample: ${nc && nc.value} (> 0, <= ${ncores} host CPUs)`);

  // Bad input changes nothing.
  await refusedNoChange('CreateContainer', { pod_sandbox_id: ZERO, config: ctr('x1', ['true']), sandbox_config: podCfg },
                        S.NOT_FOUND, 'CreateContainer in an unknown pod', /pod sandbox/);
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('x2', ['true'], { mounts: [{ container_path: '/d', host_path: 'rel/dir' }] }), sandbox_config: podCfg },
                        S.INVALID_ARGUMENT, 'CreateContainer with a relative host_path', /host_path/);
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('x3', ['true'], { mounts: [{ container_path: '/d', host_path: `${T}/no/such/dir` }] }), sandbox_config: podCfg },
                        S.INVALID_ARGUMENT, 'CreateContainer with a missing host_path', /no\/such/);
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('x4', ['true'], { image: { image: 'docker.io/library/not-pulled:9' } }), sandbox_config: podCfg },
                        S.NOT_FOUND, 'CreateContainer with an image not pulled', /not-pulled/);
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('x5', ['true'], { envs: [{ key: 'BIG', value: 'x'.repeat(10 << 20) }] }), sandbox_config: podCfg },
                        S.INVALID_ARGUMENT, 'CreateContainer with a 10 MB env', /BIG/);
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('user', ['true']), sandbox_config: podCfg },
                        S.ALREADY_EXISTS, 'CreateContainer with a name in use', /user/);
  await refusedNoChange('StartContainer', { container_id: term }, S.FAILED_PRECONDITION, 'StartContainer of an exited container', /exited/);

  // StopContainer: SIGTERM first, SIGKILL after the timeout.
  expectCode(await call(rt, 'StopContainer', { container_id: user, timeout: 30 }, 60000), S.OK, 'StopContainer of a TERM-trapping container');
  const su = await status(user);
  check(su.state === 'CONTAINER_EXITED' && su.exit_code === 0 && su.reason === 'Completed',
        `it got SIGTERM and exited 0 (${JSON.stringify([su.state, su.exit_code, su.reason])})`);
  check(await waitLog('user', /got TERM/, 5000), 'its TERM handler ran');
  const t0 = Date.now();
  expectCode(await call(rt, 'StopContainer', { container_id: termproof, timeout: 2 }, 60000), S.OK, 'StopContainer of a TERM-ignoring container, timeout 2');
  const ss = await status(termproof);
  check(ss.state === 'CONTAINER_EXITED' && ss.exit_code === 137 && Date.now() - t0 >= 1900,
        `SIGKILL after the 2 s timeout: exit 137 after ${Date.now() - t0} ms (${JSON.stringify([ss.state, ss.exit_code, ss.reason])})`);
  expectCode(await call(rt, 'StopContainer', { container_id: termproof, timeout: 2 }), S.OK, 'StopContainer again');

  // A stopped pod refuses new containers and changes nothing.
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  await refusedNoChange('CreateContainer', { pod_sandbox_id: pod, config: ctr('late', ['true']), sandbox_config: podCfg },
                        S.FAILED_PRECONDITION, 'CreateContainer in a stopped pod', /not ready/);
  const sp = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  check(!sp.err && !sp.res.stats.linux.cpu && !sp.res.stats.linux.memory,
        'PodSandboxStats of the stopped pod: no CPU or memory (StopPodSandbox removed its cgroup and VM)');
  lp = await call(rt, 'ListPodSandbox', { filter: { id: pod, state: { state: 'SANDBOX_NOTREADY' } } });
  check(lp.res.items.length === 1, 'ListPodSandbox by id and NOTREADY after stop');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox again');
  const left = ['cpu', 'cpuacct', 'memory', 'pids'].filter((c) => cgRead(cgPath, c, V2 ? 'cgroup.procs' : 'tasks') !== null);
  check(left.length === 0, `pod cgroup removed (${left.join(',')})`);
  await expectAlive(rt, 'the audit');
}

// `node audit.js net`, with a CNI bridge network configured by
// podaudit.sh: the pod's network stats are its netns's eth0 counters.
async function net() {
  const cfg = Object.assign({}, podCfg, { metadata: { name: 'net', namespace: 'e2e', uid: 'uid-net', attempt: 0 },
    log_directory: `${T}/logs/net` });
  const rp = await call(rt, 'RunPodSandbox', { config: cfg }, 120000);
  check(!rp.err, 'RunPodSandbox on a bridge network' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) return;
  const pod = rp.res.pod_sandbox_id;
  const ip = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod })).res.status.network.ip;
  const c = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, sandbox_config: cfg,
    config: ctr('n', ['/bin/sh', '-c', 'while true; do sleep 1; done']) }, 60000);
  check(!c.err, 'CreateContainer' + (c.err ? ` (${c.err.details})` : ''));
  expectCode(await call(rt, 'StartContainer', { container_id: c.res.container_id }, 60000), S.OK, 'StartContainer');
  const gw = ip.replace(/\.\d+$/, '.1');
  // A TCP connection attempt to the gateway: ARP, SYN and RST both ways.
  await call(rt, 'ExecSync', { container_id: c.res.container_id, cmd: ['/bin/sh', '-c', `wget -T 2 -q -O /dev/null http://${gw}:9/ || true`], timeout: 20 }, 30000);
  const st = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  const n = st.res && st.res.stats.linux.network;
  const d = n && n.default_interface;
  check(d && d.name === 'eth0' && Number(d.tx_bytes.value) > 0 && Number(d.rx_bytes.value) > 0,
        `pod network stats: eth0 of its netns with traffic (${d && JSON.stringify([d.name, d.rx_bytes.value, d.tx_bytes.value])}, pod ${ip})`);
  check(n && n.interfaces.every((i) => i.name !== 'lo'), 'loopback left out');
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
}

(async () => {
  if (process.argv[2] === 'net') await net();
  else await main();
  done();
})().catch((e) => { console.log(`FAIL exception ${e.stack}`); process.exit(1); });
