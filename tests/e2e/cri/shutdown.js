// SIGTERM while calls are in flight: every call must end (answered, or
// refused as the server goes away), none may hang until its deadline.
'use strict';
const { grpc, clients, call, check, done } = require('./common');

(async () => {
  const pid = Number(process.env.QUARKD_PID);
  const { runtime: rt } = clients();
  await call(rt, 'Version', { version: '0.1.0' });
  // SIGTERM once the first answers arrive: the rest are then in quarkd's
  // hands or on their way.
  const calls = [];
  let answered = 0;
  for (let i = 0; i < 300; i++) {
    calls.push(call(rt, 'Status', { verbose: true }, 20000).then((r) => {
      if (++answered === 5) process.kill(pid, 'SIGTERM');
      return r;
    }));
  }
  const t0 = Date.now();
  const results = await Promise.all(calls);
  const ok = results.filter((r) => !r.err).length;
  const hung = results.filter((r) => r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED).length;
  const other = results.filter((r) => r.err && r.err.code !== grpc.status.UNAVAILABLE &&
                                      r.err.code !== grpc.status.CANCELLED &&
                                      r.err.code !== grpc.status.DEADLINE_EXCEEDED);
  const codes = {};
  for (const r of results) if (r.err) codes[r.err.code] = (codes[r.err.code] || 0) + 1;
  console.log(`300 calls around SIGTERM: ${ok} answered, ${300 - ok} refused ${JSON.stringify(codes)}` +
              `${results.find((r) => r.err) ? ' e.g. ' + results.find((r) => r.err).err.details : ''}, in ${Date.now() - t0} ms`);
  check(hung === 0, `no call hangs until its deadline (${hung})`);
  check(other.length === 0, `only UNAVAILABLE/CANCELLED for calls the server did not take (${other.map((r) => r.err.code)})`);
  check(ok > 0, 'calls already taken were answered');
  done();
})();
