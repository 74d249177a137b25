// Restart recovery, with pods_recovery.sh killing quarkd with SIGKILL in
// between: `node recovery.js before` starts a pod with a long-running
// container and one that exits 5 after 3 s (ids in $E2E_T/ids.json);
// `node recovery.js after` checks that the restarted quarkd reports the same
// pod and containers, the exit that happened while it was down, a live
// ExecSync, and a log that goes on; then removes the pod.
'use strict';
const { clients, call, check, expectCode, done, grpc, sleep } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();
const podCfg = {
  metadata: { name: 'rec', namespace: 'e2e', uid: 'uid-rec', attempt: 0 },
  hostname: 'rec', log_directory: `${T}/logs/rec`, labels: { app: 'rec' },
};
function ctr(name, command) {
  return { metadata: { name, attempt: 0 }, image: { image: 'docker.io/library/busybox:latest' }, command, log_path: `${name}.log` };
}

async function before() {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const ids = { pod };
  for (const [name, cmd] of [['ticker', ['/bin/sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done']],
                             ['short', ['/bin/sh', '-c', 'sleep 3; exit 5']]]) {
    const c = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: ctr(name, cmd), sandbox_config: podCfg }, 60000);
    check(!c.err, `CreateContainer ${name}` + (c.err ? ` (${c.err.details})` : ''));
    expectCode(await call(rt, 'StartContainer', { container_id: c.res.container_id }, 60000), S.OK, `StartContainer ${name}`);
    ids[name] = c.res.container_id;
  }
  await sleep(1500);
  ids.logBytes = fs.statSync(`${T}/logs/rec/ticker.log`).size;
  fs.writeFileSync(`${T}/ids.json`, JSON.stringify(ids));
  done();
}

async function after() {
  const ids = JSON.parse(fs.readFileSync(`${T}/ids.json`, 'utf8'));
  const ps = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: ids.pod });
  check(!ps.err && ps.res.status.state === 'SANDBOX_READY', `pod still READY after kill -9 and restart (${ps.res && ps.res.status.state})`);
  const t = await call(rt, 'ContainerStatus', { container_id: ids.ticker });
  check(!t.err && t.res.status.state === 'CONTAINER_RUNNING', 'long-running container still RUNNING');
  let s;
  for (let i = 0; i < 50; i++) {
    s = await call(rt, 'ContainerStatus', { container_id: ids.short });
    if (s.res && s.res.status.state === 'CONTAINER_EXITED') break;
    await sleep(200);
  }
  check(s.res && s.res.status.state === 'CONTAINER_EXITED' && s.res.status.exit_code === 5,
        `container that exited while quarkd was down reports exit 5 (${s.res && JSON.stringify([s.res.status.state, s.res.status.exit_code])})`);
  const e = await call(rt, 'ExecSync', { container_id: ids.ticker, cmd: ['/bin/echo', 'alive'], timeout: 10 }, 30000);
  check(!e.err && e.res.stdout.toString() === 'alive\n', 'ExecSync through the reattached sandbox');
  await sleep(2500);
  const size = fs.statSync(`${T}/logs/rec/ticker.log`).size;
  check(size > ids.logBytes, `log goes on (${ids.logBytes} -> ${size} bytes)`);
  const lc = await call(rt, 'ListContainers', { filter: { pod_sandbox_id: ids.pod } });
  check(lc.res.containers.length === 2, 'both containers listed');
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: ids.pod }, 60000), S.OK, 'StopPodSandbox after the restart');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: ids.pod }, 60000), S.OK, 'RemovePodSandbox after the restart');
  done();
}

async function empty() {
  const p = await call(rt, 'ListPodSandbox', {});
  const c = await call(rt, 'ListContainers', {});
  check(p.res.items.length === 0 && c.res.containers.length === 0, 'no pods or containers after the second restart');
  done();
}

const modes = { before, after, empty };
modes[process.argv[2]]().catch((e) => { console.log(`FAIL exception ${e.stack}`); process.exit(1); });
