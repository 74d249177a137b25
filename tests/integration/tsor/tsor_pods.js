// TSoR through quarkd (driven by tsor_pods.sh): two pods with the
// annotation quark.io/tsor "true" on a test bridge whose subnet is the TSoR
// node's pod CIDR; pod B reaches pod A's echo server by pod IP over TSoR
// (t_tsor from the host, mounted read-only), a pod without the annotation
// reaches it over the bridge, a closed port is refused. Pods are removed.
'use strict';
const common = require(process.env.CRI_COMMON);
const { clients, call, check, done, BUSYBOX, sleep, createStart } = common;

const T = process.env.E2E_T;
const SUBNET = process.env.TSOR_SUBNET;
const PROG = process.env.TSOR_PROGDIR;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;

function podCfg(name, tsor) {
  return {
    metadata: { name, namespace: 'tsor', uid: `uid-${name}`, attempt: 0 },
    hostname: name, log_directory: `${T}/logs/${name}`,
    annotations: tsor ? { 'quark.io/tsor': 'true', 'quark.io/tsor-cidrs': `${SUBNET}.0/24` } : {},
  };
}
function ctr(name, command) {
  return {
    metadata: { name, attempt: 0 }, image: { image: IMAGE }, command, log_path: `${name}.log`,
    mounts: [{ container_path: '/tprog', host_path: PROG, readonly: true }],
  };
}
async function runPod(cfg) {
  const r = await call(rt, 'RunPodSandbox', { config: cfg, runtime_handler: 'quark' }, 120000);
  check(!r.err, `RunPodSandbox ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  if (r.err) done();
  const st = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: r.res.pod_sandbox_id })).res.status;
  return { id: r.res.pod_sandbox_id, ip: st.network && st.network.ip };
}
async function startCtr(pod, cfg, sandboxCfg) {
  const id = await createStart(rt, pod, cfg, sandboxCfg);
  if (id === null) done();
  return id;
}
const execOut = (id, cmd) => common.execOut(rt, id, cmd, 30);
const removePod = (pod, name) => common.removePod(rt, pod, name);

(async () => {
  const cfgA = podCfg('tsor-a', true);
  const a = await runPod(cfgA);
  check(a.ip && a.ip.startsWith(`${SUBNET}.`), `pod A's IP in the TSoR pod CIDR (${a.ip})`);
  await startCtr(a.id, ctr('echo', ['/tprog/t_tsor', 'serve', '7100', '1000']), cfgA);
  const cfgB = podCfg('tsor-b', true);
  const b = await runPod(cfgB);
  const sh = await startCtr(b.id, ctr('sleeper', ['sleep', '3600']), cfgB);
  let r;
  for (let i = 0; i < 30; i++) { // the server container may still be starting
    r = await execOut(sh, ['/tprog/t_tsor', 'echo', a.ip, '7100', 'pod-to-pod-over-tsor']);
    if (r.code === 0) break;
    await sleep(500);
  }
  check(r.code === 0 && (r.out || '').trim() === 'echo: pod-to-pod-over-tsor',
        `pod B -> pod A by pod IP over TSoR (${r.err || r.code} ${(r.out || '').trim()} ${(r.errOut || '').trim()})`);
  r = await execOut(sh, ['/tprog/t_tsor', 'refused', a.ip, '7999']);
  check(r.code === 0 && (r.out || '').trim() === 'refused: ECONNREFUSED',
        `closed port of pod A refused over TSoR (${r.err || r.code} ${(r.out || '').trim()})`);
  const cfgC = podCfg('plain', false);
  const c = await runPod(cfgC);
  const shC = await startCtr(c.id, ctr('sleeper', ['sleep', '3600']), cfgC);
  r = await execOut(shC, ['/tprog/t_tsor', 'echo', a.ip, '7100', 'over-the-bridge']);
  check(r.code === 0 && (r.out || '').trim() === 'echo: over-the-bridge',
        `a pod without TSoR reaches pod A over the bridge (${r.err || r.code} ${(r.out || '').trim()})`);
  await removePod(c.id, 'plain');
  await removePod(b.id, 'tsor-b');
  await removePod(a.id, 'tsor-a');
  done();
})();
