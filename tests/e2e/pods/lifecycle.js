// A busybox pod through its whole life with real VMs: two containers,
// mounts, the CRI log format, ExecSync (exit codes, output, timeout), stats,
// exits with their reasons, StopContainer, StopPodSandbox and
// RemovePodSandbox; then a hostNetwork pod. Driven by pods_lifecycle.sh.
'use strict';
const { clients, call, check, expectCode, expectAlive, done, grpc, BUSYBOX, sleep, waitContainer } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const LONG = 'y'.repeat(40000);

const podCfg = {
  metadata: { name: 'life', namespace: 'e2e', uid: 'uid-life', attempt: 0 },
  hostname: 'life-host', log_directory: `${T}/logs/life`,
  labels: { app: 'life', tier: 'test' }, annotations: { 'quark.test/a': 'b' },
  dns_config: { servers: ['10.0.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
};

function ctr(name, command, extra) {
  return Object.assign({
    metadata: { name, attempt: 0 }, image: { image: IMAGE }, command,
    log_path: `${name}.log`, labels: { c: name },
  }, extra || {});
}

async function status(id) {
  const r = await call(rt, 'ContainerStatus', { container_id: id });
  return r.err ? null : r.res.status;
}

const waitState = (id, state, ms) => waitContainer(rt, id, state, ms);

async function create(podId, cfg) {
  const r = await call(rt, 'CreateContainer', { pod_sandbox_id: podId, config: cfg, sandbox_config: podCfg }, 60000);
  check(!r.err, `CreateContainer ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  return r.res && r.res.container_id;
}

async function start(id, name) {
  const r = await call(rt, 'StartContainer', { container_id: id }, 60000);
  check(!r.err, `StartContainer ${name}` + (r.err ? ` (${r.err.details})` : ''));
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)) (stdout|stderr) (P|F) (.*)$/;

function readLog(path) {
  const recs = [];
  let text;
  try { text = fs.readFileSync(path, 'utf8'); } catch (e) { return { recs, bad: [`cannot read ${path}: ${e.message}`] }; }
  const bad = [];
  for (const l of text.split('\n')) {
    if (l === '') continue;
    const m = LINE.exec(l);
    if (!m) bad.push(l.slice(0, 80));
    else recs.push({ ts: m[1], stream: m[3], tag: m[4], msg: m[5] });
  }
  // Whole lines per stream: P records continue until an F.
  const lines = { stdout: [], stderr: [] }, cur = { stdout: '', stderr: '' };
  for (const r of recs) {
    cur[r.stream] += r.msg;
    if (r.tag === 'F') { lines[r.stream].push(cur[r.stream]); cur[r.stream] = ''; }
  }
  return { recs, bad, lines };
}

async function exec(id, cmd, timeout) {
  return call(rt, 'ExecSync', { container_id: id, cmd, timeout: timeout || 0 }, 60000);
}

(async () => {
  fs.mkdirSync(`${T}/data`, { recursive: true });
  fs.writeFileSync(`${T}/data/hello.txt`, 'from the host\n');

  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: 'quark' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  check(/^[0-9a-f]{64}$/.test(pod), 'pod id is 64 hex');
  const ps = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
  const st = ps.res.status;
  check(st.state === 'SANDBOX_READY', `pod READY (${st.state})`);
  check(Number(st.created_at) > 0 && Math.abs(Number(st.created_at) / 1e6 - Date.now()) < 120000, 'created_at is now');
  check(st.labels.app === 'life' && st.annotations['quark.test/a'] === 'b', 'labels and annotations');
  check(st.runtime_handler === 'quark', 'runtime handler quark');
  check(st.metadata.name === 'life' && st.metadata.namespace === 'e2e', 'metadata');
  const info = JSON.parse(ps.res.info.info);
  check(info.NetworkMode === 'loopback' && /loopback only/.test(info.NetworkNote || ''), `no CNI config: loopback only, said in verbose info (${info.NetworkMode}, ${info.NetworkNote})`);
  check(typeof info.ControlSocket === 'string' && info.ControlSocket.length > 0, 'control socket recorded');
  const lp = await call(rt, 'ListPodSandbox', { filter: { label_selector: { app: 'life' }, state: { state: 'SANDBOX_READY' } } });
  check(lp.res.items.length === 1 && lp.res.items[0].id === pod, 'ListPodSandbox by label and state');

  // Container 1: output on both streams, a long line, then it lives on.
  const c1 = await create(pod, ctr('main', ['/bin/sh', '-c',
    `echo hello from quark; echo oops >&2; echo ${LONG}; echo FOO=$FOO; while true; do sleep 1; done`], {
    envs: [{ key: 'FOO', value: 'bar' }],
    mounts: [{ container_path: '/data', host_path: `${T}/data`, readonly: true }],
  }));
  let s1 = await status(c1);
  check(s1 && s1.state === 'CONTAINER_CREATED', `CREATED before start (${s1 && s1.state})`);
  check(s1 && s1.log_path === `${T}/logs/life/main.log`, `log path is log_directory + log_path (${s1 && s1.log_path})`);
  check(s1 && s1.image.image === IMAGE && /sha256:/.test(s1.image_ref), `image and image_ref (${s1 && s1.image_ref})`);
  check(s1 && s1.mounts.some((m) => m.container_path === '/data' && m.readonly) &&
        s1.mounts.some((m) => m.container_path === '/etc/hosts') &&
        s1.mounts.some((m) => m.container_path === '/etc/resolv.conf') &&
        s1.mounts.some((m) => m.container_path === '/dev/termination-log'), 'mounts: hostPath, pod files, termination log');
  await start(c1, 'main');
  s1 = await waitState(c1, 'CONTAINER_RUNNING', 5000);
  check(s1 && s1.state === 'CONTAINER_RUNNING' && Number(s1.started_at) > 0, 'RUNNING with started_at');
  expectCode(await call(rt, 'StartContainer', { container_id: c1 }), S.FAILED_PRECONDITION, 'StartContainer twice');
  expectCode(await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: ctr('main', ['true']), sandbox_config: podCfg }),
             S.ALREADY_EXISTS, 'a second container named main');

  // Container 2 in the same pod.
  const c2 = await create(pod, ctr('side', ['/bin/sh', '-c', 'echo from side; while true; do sleep 1; done']));
  await start(c2, 'side');
  check((await waitState(c2, 'CONTAINER_RUNNING', 5000)).state === 'CONTAINER_RUNNING', 'two containers run in one pod');
  const lc = await call(rt, 'ListContainers', { filter: { pod_sandbox_id: pod, state: { state: 'CONTAINER_RUNNING' } } });
  check(lc.res.containers.length === 2, `ListContainers by pod and state: 2 (${lc.res.containers.length})`);
  const ll = await call(rt, 'ListContainers', { filter: { label_selector: { c: 'side' } } });
  check(ll.res.containers.length === 1 && ll.res.containers[0].id === c2, 'ListContainers by label');

  // Logs in kubelet's format.
  await sleep(1500);
  const log = readLog(s1.log_path);
  check(log.bad.length === 0 && log.recs.length > 0, `every log line is "<RFC3339Nano> <stream> <P|F> <msg>" (${log.bad.slice(0, 2)})`);
  check(log.lines.stdout.includes('hello from quark'), 'stdout line in the log');
  check(log.lines.stderr.includes('oops'), 'stderr line in the log');
  check(log.lines.stdout.includes('FOO=bar'), 'env from the config');
  check(log.recs.some((r) => r.tag === 'P') && log.lines.stdout.includes(LONG), 'a 40000-byte line comes as P records ending in F, whole again');

  // ExecSync.
  let r = await exec(c1, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
  check(!r.err && r.res.exit_code === 3 && r.res.stdout.toString() === 'out\n' && r.res.stderr.toString() === 'err\n',
        `ExecSync exit code 3 with stdout and stderr (${r.err ? r.err.details : JSON.stringify([r.res.exit_code, r.res.stdout.toString(), r.res.stderr.toString()])})`);
  r = await exec(c1, ['/bin/true']);
  check(!r.err && r.res.exit_code === 0, 'ExecSync /bin/true exits 0');
  r = await exec(c1, ['/bin/cat', '/data/hello.txt']);
  check(!r.err && r.res.stdout.toString() === 'from the host\n', 'hostPath mount readable');
  r = await exec(c1, ['/bin/sh', '-c', 'echo x > /data/nope']);
  check(!r.err && r.res.exit_code !== 0, 'read-only mount refuses writes');
  r = await exec(c2, ['/bin/cat', '/etc/hostname']);
  check(!r.err && r.res.stdout.toString().trim() === 'life-host', `hostname file (${r.res && r.res.stdout})`);
  r = await exec(c2, ['/bin/cat', '/etc/resolv.conf']);
  check(!r.err && /nameserver 10\.0\.0\.10/.test(r.res.stdout.toString()) && /ndots:5/.test(r.res.stdout.toString()), 'resolv.conf from DNSConfig');
  r = await exec(c1, ['/no/such/binary']);
  check(r.err || r.res.exit_code !== 0, 'ExecSync of a missing binary fails');
  const t0 = Date.now();
  r = await exec(c1, ['/bin/sleep', '30'], 1);
  check(r.err && r.err.code === S.DEADLINE_EXCEEDED && Date.now() - t0 < 10000, `ExecSync timeout 1 s: DEADLINE_EXCEEDED in ${Date.now() - t0} ms`);

  // Stats.
  r = await exec(c1, ['/bin/sh', '-c', 'head -c 200000 /dev/zero > /big; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done']);
  const cs = await call(rt, 'ContainerStats', { container_id: c1 });
  const cst = cs.res && cs.res.stats;
  check(cst && cst.cpu && Number(cst.cpu.usage_core_nano_seconds.value) > 0, `container CPU usage > 0 (${cst && cst.cpu && cst.cpu.usage_core_nano_seconds.value})`);
  check(cst && cst.memory && Number(cst.memory.working_set_bytes.value) > 0, 'container memory working set > 0');
  check(cst && Number(cst.writable_layer.used_bytes.value) >= 200000 && Number(cst.writable_layer.inodes_used.value) > 0,
        `writable layer counts /big (${cst && cst.writable_layer.used_bytes.value} bytes)`);
  const pst = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  check(pst.res && pst.res.stats.linux.cpu && Number(pst.res.stats.linux.cpu.usage_core_nano_seconds.value) > 0 &&
        Number(pst.res.stats.linux.memory.working_set_bytes.value) > 0, 'pod CPU and memory > 0');
  check(pst.res && pst.res.stats.linux.containers.length === 2, 'pod stats list both containers');
  const lcs = await call(rt, 'ListContainerStats', { filter: { pod_sandbox_id: pod } });
  check(lcs.res && lcs.res.stats.length === 2, 'ListContainerStats: 2');
  const lps = await call(rt, 'ListPodSandboxStats', {});
  check(lps.res && lps.res.stats.length === 1, 'ListPodSandboxStats: 1');

  // Exits and their reasons.
  const c3 = await create(pod, ctr('fails', ['/bin/sh', '-c', 'exit 7']));
  await start(c3, 'fails');
  const s3 = await waitState(c3, 'CONTAINER_EXITED', 10000);
  check(s3 && s3.exit_code === 7 && s3.reason === 'Error' && Number(s3.finished_at) >= Number(s3.started_at),
        `exit 7: EXITED, reason Error (${s3 && JSON.stringify([s3.state, s3.exit_code, s3.reason])})`);
  const c4 = await create(pod, ctr('ok', ['/bin/true']));
  await start(c4, 'ok');
  const s4 = await waitState(c4, 'CONTAINER_EXITED', 10000);
  check(s4 && s4.exit_code === 0 && s4.reason === 'Completed', `exit 0: reason Completed (${s4 && s4.reason})`);
  expectCode(await exec(c3, ['/bin/true']), S.FAILED_PRECONDITION, 'ExecSync in an exited container');
  expectCode(await call(rt, 'RemoveContainer', { container_id: c4 }), S.OK, 'RemoveContainer of an exited container');
  check((await status(c4)) === null, 'removed container is gone');

  // Log rotation as kubelet does it: rename the file away, ask for a reopen,
  // and the sandbox writes to a new file at the old path.
  const side = `${T}/logs/life/side.log`;
  fs.renameSync(side, `${side}.1`);
  expectCode(await call(rt, 'ReopenContainerLog', { container_id: c2 }), S.OK, 'ReopenContainerLog of a running container');
  check(fs.existsSync(side), 'the reopened log file exists at the old path');
  // Memory limits reach the guest kernel: a container growing past its
  // limit (from CreateContainer, or lowered by UpdateContainerResources) is
  // OOM-killed with reason OOMKilled while c2 of the same pod runs on.
  expectCode(await call(rt, 'UpdateContainerResources',
                        {container_id : c2, linux : {memory_limit_in_bytes : 64 << 20}}),
             S.OK, 'UpdateContainerResources of a running container');
  const grow = [
    '/bin/sh', '-c',
    'sleep 1; a=xxxxxxxxxxxxxxxx; i=0; while [ $i -lt 20 ]; do a=$a$a; i=$((i+1)); done; echo survived'
  ];
  const hog = await create(
      pod, ctr('hog', grow, {linux : {resources : {memory_limit_in_bytes : 8 << 20}}}));
  await start(hog, 'hog');
  const sh = await waitState(hog, 'CONTAINER_EXITED', 30000);
  check(sh && sh.reason === 'OOMKilled' && sh.exit_code === 137,
        `past its 8 MiB limit: reason OOMKilled, exit 137 (${
            sh && JSON.stringify([ sh.state, sh.exit_code, sh.reason ])})`);
  const hog2 = await create(pod, ctr('hog2', grow));
  await start(hog2, 'hog2');
  expectCode(await call(rt, 'UpdateContainerResources',
                        {container_id : hog2, linux : {memory_limit_in_bytes : 8 << 20}}),
             S.OK, 'UpdateContainerResources lowers a limit');
  const sh2 = await waitState(hog2, 'CONTAINER_EXITED', 30000);
  check(sh2 && sh2.reason === 'OOMKilled',
        `past the updated limit: OOMKilled (${sh2 && sh2.reason})`);
  check((await status(c2)).state === 'CONTAINER_RUNNING', 'c2 of the same pod still runs');

  // StopContainer: SIGTERM, then SIGKILL after the timeout.
  const t1 = Date.now();
  expectCode(await call(rt, 'StopContainer', { container_id: c1, timeout: 2 }, 30000), S.OK, 'StopContainer with timeout 2');
  const s1e = await status(c1);
  check(s1e.state === 'CONTAINER_EXITED' && Date.now() - t1 < 15000, `stopped within the timeout (+kill) in ${Date.now() - t1} ms, exit ${s1e.exit_code}`);
  expectCode(await call(rt, 'StopContainer', { container_id: c1, timeout: 2 }), S.OK, 'StopContainer again');

  // Pod stop and removal.
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  const ps2 = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod });
  check(ps2.res.status.state === 'SANDBOX_NOTREADY', 'pod NOTREADY after stop');
  check((await status(c2)).state === 'CONTAINER_EXITED', 'its running container EXITED');
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox again');
  expectCode(await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: ctr('late', ['true']), sandbox_config: podCfg }),
             S.FAILED_PRECONDITION, 'CreateContainer in a stopped pod');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
  const after = await call(rt, 'ListContainers', {});
  check(after.res.containers.length === 0, 'containers removed with their pod');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }), S.OK, 'RemovePodSandbox again');

  // A hostNetwork pod: no namespace of its own.
  const hp = await call(rt, 'RunPodSandbox', { config: Object.assign({}, podCfg, {
    metadata: { name: 'hostnet', namespace: 'e2e', uid: 'uid-hostnet', attempt: 0 }, hostname: '',
    linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER' } } } }) }, 120000);
  check(!hp.err, 'RunPodSandbox with hostNetwork' + (hp.err ? ` (${hp.err.details})` : ''));
  if (!hp.err) {
    const hs = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: hp.res.pod_sandbox_id, verbose: true });
    check(hs.res.status.linux.namespaces.options.network === 'NODE' && JSON.parse(hs.res.info.info).NetworkMode === 'host',
          'hostNetwork pod reports network NODE');
    check(hs.res.status.linux.namespaces.options.pid === 'CONTAINER',
          `a pod in pid mode CONTAINER reports it (${hs.res.status.linux.namespaces.options.pid})`);
    expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: hp.res.pod_sandbox_id }, 60000), S.OK, 'stop hostNetwork pod');
    expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: hp.res.pod_sandbox_id }, 60000), S.OK, 'remove hostNetwork pod');
  }
  await expectAlive(rt, 'the pod life cycle');
  done();
})().catch((e) => { console.log(`FAIL exception ${e.stack}`); process.exit(1); });
