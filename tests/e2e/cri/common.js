// Shared helpers for the CRI end-to-end clients: load Quark's own api.proto
// with @grpc/proto-loader and talk to quarkd through @grpc/grpc-js, a gRPC
// implementation that shares no code with quarkd's grpc C core.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const endpoint = process.env.QUARK_ENDPOINT;
const protoPath = process.env.QUARK_PROTO;
if (!endpoint || !protoPath) {
  console.error('QUARK_ENDPOINT and QUARK_PROTO must be set');
  process.exit(2);
}

const def = protoLoader.loadSync(protoPath, {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def).runtime.v1;

function clients(options) {
  const creds = grpc.credentials.createInsecure();
  return {
    runtime: new pkg.RuntimeService(endpoint, creds, options || {}),
    image: new pkg.ImageService(endpoint, creds, options || {}),
  };
}

function deadline(ms) { return new Date(Date.now() + (ms || 10000)); }

// Promise of {err, res} for a unary call: tests look at both.
function call(client, method, req, ms) {
  return new Promise((resolve) => {
    client[method](req, { deadline: deadline(ms) }, (err, res) => resolve({ err, res }));
  });
}

// A unary call with caller-chosen request bytes, for malformed input.
function rawCall(client, path, bytes, ms) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b) => b, (b) => b, bytes, { deadline: deadline(ms) },
      (err, res) => resolve({ err, res }));
  });
}

function codeName(code) {
  for (const [k, v] of Object.entries(grpc.status)) if (v === code) return k;
  return String(code);
}

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}

function expectCode(r, code, what) {
  const got = r.err ? r.err.code : grpc.status.OK;
  check(got === code, `${what}: want ${codeName(code)}, got ${codeName(got)}` +
        (r.err ? ` (${r.err.details})` : ''));
  return got === code;
}

// The liveness probe every bad-input step ends with.
async function expectAlive(rt, after) {
  const r = await call(rt, 'Version', { version: '0.1.0' });
  check(!r.err && r.res.runtime_name === 'quark', `daemon answers Version after ${after}` +
        (r.err ? ` (${r.err.code} ${r.err.details})` : ''));
}

function done() {
  if (failures) {
    console.log(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('all checks passed');
  process.exit(0);
}

// CreateContainer, then StartContainer, each a check named after the
// container: its id, or null when CreateContainer failed.
async function createStart(rt, pod, cfg, sandboxCfg) {
  const c = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: cfg, sandbox_config: sandboxCfg }, 60000);
  check(!c.err, `CreateContainer ${cfg.metadata.name}` + (c.err ? ` (${c.err.details})` : ''));
  if (c.err) return null;
  const s = await call(rt, 'StartContainer', { container_id: c.res.container_id }, 60000);
  check(!s.err, `StartContainer ${cfg.metadata.name}` + (s.err ? ` (${s.err.details})` : ''));
  return c.res.container_id;
}

// ExecSync with a timeout of `timeout` s: {code, out, errOut}, or {err}.
async function execOut(rt, id, cmd, timeout) {
  const r = await call(rt, 'ExecSync', { container_id: id, cmd, timeout }, 60000);
  if (r.err) return { err: r.err.details };
  return { code: r.res.exit_code, out: Buffer.from(r.res.stdout).toString(), errOut: Buffer.from(r.res.stderr).toString() };
}

// ContainerStatus every 200 ms until the container is in `state` or ms
// pass: its last status (null when ContainerStatus failed).
async function waitContainer(rt, id, state, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await call(rt, 'ContainerStatus', { container_id: id });
    const s = r.err ? null : r.res.status;
    if ((s && s.state === state) || Date.now() > until) return s;
    await sleep(200);
  }
}

// StopPodSandbox, then RemovePodSandbox, as one check.
async function removePod(rt, pod, name) {
  const s = await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }, 60000);
  const r = await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000);
  check(!s.err && !r.err, `stop and remove ${name}` + (s.err || r.err ? ` (${(s.err || r.err).details})` : ''));
}

// The busybox image every pod test runs (tests/images/build.sh, imported by
// each test's set-up), and a promise that resolves after ms milliseconds.
const BUSYBOX = 'docker.io/library/busybox:latest';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { grpc, pkg, clients, call, rawCall, check, expectCode, expectAlive, done,
                   endpoint, codeName, BUSYBOX, sleep, createStart, execOut, removePod,
                   waitContainer };
