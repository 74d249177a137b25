// Version round trips through @grpc/grpc-js, sequential on one channel;
// prints mean and percentiles (informational; fails only if calls fail).
'use strict';
const { clients, call, check, done } = require('./common');

(async () => {
  const { runtime: rt } = clients();
  const n = Number(process.env.QUARK_LATENCY_CALLS || 500);
  await call(rt, 'Version', { version: '0.1.0' });
  const t = [];
  let ok = true;
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    const r = await call(rt, 'Version', { version: '0.1.0' });
    t.push(Number(process.hrtime.bigint() - s) / 1000);
    ok = ok && !r.err;
  }
  t.sort((a, b) => a - b);
  const mean = t.reduce((a, b) => a + b, 0) / n;
  console.log(`Version round trip over ${n} calls: mean ${mean.toFixed(0)} us, ` +
              `p50 ${t[Math.floor(n * 0.5)].toFixed(0)} us, p99 ${t[Math.floor(n * 0.99)].toFixed(0)} us`);
  check(ok, `${n} sequential Version calls OK`);
  done();
})();
