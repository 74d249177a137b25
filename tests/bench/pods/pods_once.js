// CRI pod latency client for pods_bench.sh, through @grpc/grpc-js and
// Quark's own cri/proto/api.proto (containerd 1.6 serves the same runtime.v1).
// Usage:
//   node pods_once.js PROTO LOGDIR N  NAME=unix:///a.sock [NAME=unix:///b.sock ...]
//     N hostNetwork busybox pods per endpoint (plus one warm-up pod each, not
//     counted), endpoints alternating pod by pod; each pod: RunPodSandbox +
//     CreateContainer + StartContainer (sleep 3600) timed as "start", then
//     StopPodSandbox + RemovePodSandbox timed as "stop". Prints one JSON line
//     per endpoint: {"name", "start": [ms...], "stop": [ms...], "run", "create", "startc"}.
//   node pods_once.js PROTO LOGDIR up ENDPOINT    starts one such pod, prints its id
//   node pods_once.js PROTO LOGDIR down ENDPOINT ID  stops and removes it
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const fs = require('fs');

const [proto, logdir, mode, ...rest] = process.argv.slice(2);
const def = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def).runtime.v1;
const IMAGE = 'docker.io/library/busybox:latest';
const TMO = 120000;

function client(endpoint) { return new pkg.RuntimeService(endpoint, grpc.credentials.createInsecure()); }

function call(rt, method, req) {
  return new Promise((resolve, reject) => {
    rt[method](req, { deadline: new Date(Date.now() + TMO) }, (err, res) => {
      if (err) reject(new Error(`${method}: ${err.code} ${err.details}`)); else resolve(res);
    });
  });
}

function ready(rt) {
  return new Promise((resolve, reject) => rt.waitForReady(new Date(Date.now() + 15000),
    (e) => (e ? reject(e) : resolve())));
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

function podCfg(name) {
  const dir = `${logdir}/${name}`;
  fs.mkdirSync(dir, { recursive: true });
  return {
    metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 },
    log_directory: dir, // no hostname: runc refuses one without a private UTS namespace
    linux: { security_context: { namespace_options: { network: 'NODE' } } },
  };
}

async function up(rt, name, t) {
  const cfg = podCfg(name);
  const t0 = now();
  const pod = (await call(rt, 'RunPodSandbox', { config: cfg })).pod_sandbox_id;
  const t1 = now();
  const c = (await call(rt, 'CreateContainer', {
    pod_sandbox_id: pod, sandbox_config: cfg,
    config: { metadata: { name: 'sleep', attempt: 0 }, image: { image: IMAGE },
      command: ['sleep', '3600'], log_path: 'sleep.log' },
  })).container_id;
  const t2 = now();
  await call(rt, 'StartContainer', { container_id: c });
  const t3 = now();
  // Not timed: the container must really run.
  const st = (await call(rt, 'ContainerStatus', { container_id: c })).status;
  if (!st || st.state !== 'CONTAINER_RUNNING') throw new Error(`${name}: container is ${st && st.state} after StartContainer`);
  if (t) { t.run.push(t1 - t0); t.create.push(t2 - t1); t.startc.push(t3 - t2); t.start.push(t3 - t0); }
  return pod;
}

async function down(rt, pod, t) {
  const t0 = now();
  await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod });
  await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod });
  if (t) t.stop.push(now() - t0);
}

async function main() {
  if (mode === 'up') {
    const rt = client(rest[0]); await ready(rt);
    console.log(await up(rt, 'bench-idle', null));
    return;
  }
  if (mode === 'down') {
    const rt = client(rest[0]); await ready(rt);
    await down(rt, rest[1], null);
    return;
  }
  const n = Number(mode);
  const eps = rest.map((s) => {
    const i = s.indexOf('=');
    return { name: s.slice(0, i), rt: client(s.slice(i + 1)),
      t: { name: s.slice(0, i), start: [], stop: [], run: [], create: [], startc: [] } };
  });
  for (const e of eps) {
    await ready(e.rt);
    await down(e.rt, await up(e.rt, 'bench-warm', null), null);
  }
  for (let i = 0; i < n; i++) {
    for (const e of eps) {
      const pod = await up(e.rt, `bench-${i}`, e.t);
      await down(e.rt, pod, e.t);
    }
  }
  for (const e of eps) console.log(JSON.stringify(e.t));
}

main().then(() => process.exit(0), (e) => { console.error(`pods_once: ${e.message}`); process.exit(1); });
