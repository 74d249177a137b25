// Stops and removes the streaming test's pod (argv[2]) through the CRI:
// after all the sessions it must still stop cleanly.
'use strict';
const { clients, call } = require(process.env.CRI_COMMON);

const { runtime: rt } = clients();
(async () => {
  const pod = process.argv[2];
  for (const m of ['StopPodSandbox', 'RemovePodSandbox']) {
    const r = await call(rt, m, { pod_sandbox_id: pod }, 60000);
    if (r.err) {
      console.error(`${m}: ${r.err.details}`);
      process.exit(1);
    }
  }
  process.exit(0);
})();
