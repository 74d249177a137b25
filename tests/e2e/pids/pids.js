// Sandbox.PidsLimit 8 (pids.sh): a container's shell starts 12 background
// sleeps; 7 start (the shell is the 8th task), the 8th fork fails with
// EAGAIN ("can't fork: Resource temporarily unavailable") and the shell
// ends; ExecSync in another container of the pod answers; the pod goes.
'use strict';
const { clients, call, check, expectCode, done, grpc, BUSYBOX, createStart, waitContainer } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const podCfg = {
  metadata: { name: 'pids', namespace: 'e2e', uid: 'uid-pids', attempt: 0 },
  hostname: 'pids', log_directory: `${T}/logs/pids`,
};
const ctr = (name, command) => ({ metadata: { name, attempt: 0 }, image: { image: IMAGE }, command, log_path: `${name}.log` });

const run = (pod, name, command) => createStart(rt, pod, ctr(name, command), podCfg);

const waitExited = (id, ms) => waitContainer(rt, id, 'CONTAINER_EXITED', ms);

(async () => {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: 'quark' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const keep = await run(pod, 'keep', ['/bin/sh', '-c', 'exec sleep 600']);
  const lim = await run(pod, 'lim', ['/bin/sh', '-c',
    'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 600 & echo started=$i; done']);
  const st = lim && await waitExited(lim, 60000);
  check(st && st.state === 'CONTAINER_EXITED', `the limited shell ended (${st && st.state}, exit ${st && st.exit_code})`);
  let log = '';
  try { log = fs.readFileSync(`${T}/logs/pids/lim.log`, 'utf8'); } catch (e) { /* checked below */ }
  check(/started=7\n/.test(log) && !/started=8\n/.test(log), '7 background sleeps started, not 8 (the shell is the 8th task)');
  check(/can't fork: Resource temporarily unavailable/.test(log), 'the 8th fork failed with EAGAIN');
  if (keep) {
    const x = await call(rt, 'ExecSync', { container_id: keep, cmd: ['/bin/echo', 'alive'], timeout: 30 }, 60000);
    check(!x.err && x.res.exit_code === 0 && Buffer.from(x.res.stdout).toString() === 'alive\n',
      'ExecSync in the other container answers' + (x.err ? ` (${x.err.details})` : ''));
  }
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'StopPodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000), S.OK, 'RemovePodSandbox');
  done();
})();
