// Round-trip time of trivial CRI RPCs through @grpc/grpc-js: what a call
// costs outside the handlers (the node client, the transport, quarkd's or
// containerd's gRPC server). For rpc_rtt.sh.
// Usage: node rpc_rtt.js PROTO N NAME=unix:///a.sock [NAME=unix:///b.sock ...]
//   N sequential calls of each of Version and Status per endpoint, in rounds
//   of 10 alternating the endpoints (same minutes, same load), after 20
//   warm-up calls each. Prints one line per endpoint and RPC: p50 p95 in ms.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [proto, nArg, ...eps] = process.argv.slice(2);
const N = Number(nArg) || 200;
const def = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def).runtime.v1;
const now = () => Number(process.hrtime.bigint()) / 1e6;

function call(rt, method, req) {
  return new Promise((resolve, reject) => {
    rt[method](req, { deadline: new Date(Date.now() + 30000) }, (err, res) => {
      if (err) reject(new Error(`${method}: ${err.code} ${err.details}`)); else resolve(res);
    });
  });
}

function pct(v, p) {
  v = [...v].sort((a, b) => a - b);
  const k = (v.length - 1) * p / 100, f = Math.floor(k), c = Math.min(f + 1, v.length - 1);
  return v[f] + (v[c] - v[f]) * (k - f);
}

async function main() {
  const rpcs = [['Version', { version: 'v1' }], ['Status', { verbose: false }]];
  const ends = eps.map((e) => {
    const [name, ep] = e.split(/=(.*)/s);
    return { name, rt: new pkg.RuntimeService(ep, grpc.credentials.createInsecure()), t: {} };
  });
  for (const e of ends) {
    await new Promise((res, rej) => e.rt.waitForReady(new Date(Date.now() + 15000), (x) => (x ? rej(x) : res())));
    for (const [m, r] of rpcs) { e.t[m] = []; for (let i = 0; i < 20; i++) await call(e.rt, m, r); }
  }
  for (let done = 0; done < N; done += 10)
    for (const e of ends)
      for (const [m, r] of rpcs)
        for (let i = 0; i < 10 && done + i < N; i++) {
          const t0 = now();
          await call(e.rt, m, r);
          e.t[m].push(now() - t0);
        }
  for (const e of ends)
    for (const [m] of rpcs)
      console.log(`${e.name.padEnd(11)} ${m.padEnd(8)} n ${e.t[m].length}  p50 ${pct(e.t[m], 50).toFixed(3)} ms  p95 ${pct(e.t[m], 95).toFixed(3)} ms`);
  for (const e of ends) e.rt.close();
}
main().catch((e) => { console.error(e.message); process.exit(1); });
