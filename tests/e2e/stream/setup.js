// Creates the pod of the streaming e2e test (stream_pods.sh) and prints
// "POD MAIN ATTACH WEB TTY" on success: a busybox pod with a long-running
// shell (exec target), cat with stdin + StdinOnce (attach target), busybox
// httpd on 127.0.0.1:8080 inside the pod (port-forward target) and, with
// STREAM_E2E_TTY=1, sh with tty + stdin + StdinOnce as `kubectl run -it`
// makes it ("-" for a target not made).
'use strict';
const { clients, call, BUSYBOX, sleep } =
  require(process.env.CRI_COMMON);

const T = process.env.E2E_T;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const podCfg = {
  metadata: { name: 'streams', namespace: 'e2e', uid: 'uid-streams', attempt: 0 },
  hostname: 'streams', log_directory: `${T}/logs/streams`,
};

function die(what, r) {
  console.error(`${what}: ${r && r.err ? r.err.details : 'failed'}`);
  process.exit(1);
}

async function run(pod, name, command, extra) {
  const cfg = Object.assign({ metadata: { name, attempt: 0 }, image: { image: IMAGE }, command,
    log_path: `${name}.log` }, extra || {});
  const c = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: cfg, sandbox_config: podCfg }, 60000);
  if (c.err) die(`CreateContainer ${name}`, c);
  const s = await call(rt, 'StartContainer', { container_id: c.res.container_id }, 60000);
  if (s.err) die(`StartContainer ${name}`, s);
  return c.res.container_id;
}

(async () => {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: 'quark' }, 120000);
  if (rp.err) die('RunPodSandbox', rp);
  const pod = rp.res.pod_sandbox_id;
  const main = await run(pod, 'main', ['/bin/sh', '-c', 'while true; do sleep 1; done']);
  // No attach target when STREAM_E2E_NO_ATTACH=1: in the pod VM mode a
  // container blocked reading its stdin holds the VM's QCall worker.
  const att = process.env.STREAM_E2E_NO_ATTACH === '1' ? '-'
    : await run(pod, 'att', ['cat'], { stdin: true, stdin_once: true });
  const web = await run(pod, 'web', ['/bin/sh', '-c',
    'mkdir -p /tmp/www && echo pod-ok >/tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www']);
  const tty = process.env.STREAM_E2E_TTY === '1'
    ? await run(pod, 'ttyc', ['/bin/sh'], { stdin: true, stdin_once: true, tty: true }) : '-';
  for (const id of [main, att, web, tty].filter((x) => x !== '-')) {
    for (let i = 0; ; i++) {
      const s = await call(rt, 'ContainerStatus', { container_id: id });
      if (!s.err && s.res.status.state === 'CONTAINER_RUNNING') break;
      if (i > 50) die(`container ${id} not running (${s.res && s.res.status.state})`);
      await sleep(100);
    }
  }
  console.log(`${pod} ${main} ${att} ${web} ${tty}`);
  process.exit(0);
})();
