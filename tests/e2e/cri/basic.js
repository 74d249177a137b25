// Calls quarkd the way kubelet and crictl do and checks the answers.
'use strict';
const { grpc, clients, call, rawCall, check, expectCode, done } = require('./common');

(async () => {
  const { runtime: rt, image: im } = clients();

  let r = await call(rt, 'Version', { version: '0.1.0' });
  if (expectCode(r, grpc.status.OK, 'Version')) {
    check(r.res.runtime_name === 'quark', `runtime_name is quark (${r.res.runtime_name})`);
    check(r.res.runtime_api_version === 'v1', `runtime_api_version is v1 (${r.res.runtime_api_version})`);
    check(/^\d+\.\d+\.\d+/.test(r.res.runtime_version), `runtime_version is semver (${r.res.runtime_version})`);
    check(r.res.version === '0.1.0', 'kubelet API version 0.1.0');
  }

  r = await call(rt, 'Status', {});
  if (expectCode(r, grpc.status.OK, 'Status')) {
    const conds = r.res.status.conditions;
    const types = conds.map((c) => c.type).sort();
    check(JSON.stringify(types) === '["NetworkReady","RuntimeReady"]', `both conditions (${types})`);
    for (const c of conds)
      check(c.status || (c.reason.length > 0 && c.message.length > 0),
            `${c.type}=${c.status} carries a reason and message when false (${c.reason}: ${c.message})`);
    check(Object.keys(r.res.info).length === 0, 'no info map without verbose');
    check(r.res.runtime_handlers.some((h) => h.name === 'quark'), 'runtime handler quark listed');
  }

  r = await call(rt, 'Status', { verbose: true });
  if (expectCode(r, grpc.status.OK, 'Status verbose')) {
    let cfg = null;
    try { cfg = JSON.parse(r.res.info.config); } catch (e) { /* checked below */ }
    check(cfg && cfg.StateRoot === process.env.QUARK_STATE_ROOT, 'verbose info.config is JSON with our StateRoot');
    let q = null;
    try { q = JSON.parse(r.res.info.quark); } catch (e) { /* checked below */ }
    check(q && q.rpcs >= 34, 'verbose info.quark lists the RPC table');
  }

  r = await call(rt, 'RuntimeConfig', {});
  if (expectCode(r, grpc.status.OK, 'RuntimeConfig'))
    check(r.res.linux && r.res.linux.cgroup_driver === 'CGROUPFS', `cgroup driver cgroupfs (${r.res.linux && r.res.linux.cgroup_driver})`);

  r = await call(rt, 'UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.244.3.0/24' } } });
  expectCode(r, grpc.status.OK, 'UpdateRuntimeConfig');
  r = await call(rt, 'Status', { verbose: true });
  check(!r.err && JSON.parse(r.res.info.quark).podCIDR === '10.244.3.0/24', 'pod CIDR stored');

  r = await call(rt, 'UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.244.3.0/24,fd00:1::/64' } } });
  expectCode(r, grpc.status.OK, 'UpdateRuntimeConfig dual stack');
  for (const bad of ['10.244.3.0', '10.244.3.0/33', 'banana/8', '10.0.0.0/8,'.repeat(40)]) {
    r = await call(rt, 'UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: bad } } });
    expectCode(r, grpc.status.INVALID_ARGUMENT, `UpdateRuntimeConfig '${bad.slice(0, 20)}'`);
  }
  r = await call(rt, 'Status', { verbose: true });
  check(!r.err && JSON.parse(r.res.info.quark).podCIDR === '10.244.3.0/24,fd00:1::/64', 'refused CIDRs leave the stored one');

  r = await call(rt, 'ListPodSandbox', {});
  if (expectCode(r, grpc.status.OK, 'ListPodSandbox'))
    check(Array.isArray(r.res.items) && r.res.items.length === 0, 'no pods');
  r = await call(rt, 'ListPodSandbox', { filter: { id: 'abc', state: { state: 'SANDBOX_READY' }, label_selector: { app: 'x' } } });
  expectCode(r, grpc.status.OK, 'ListPodSandbox with a filter');

  r = await call(rt, 'ListContainers', {});
  if (expectCode(r, grpc.status.OK, 'ListContainers'))
    check(Array.isArray(r.res.containers) && r.res.containers.length === 0, 'no containers');
  r = await call(rt, 'ListContainers', { filter: { pod_sandbox_id: 'abc', state: { state: 'CONTAINER_RUNNING' } } });
  expectCode(r, grpc.status.OK, 'ListContainers with a filter');

  r = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: 'f'.repeat(64) });
  expectCode(r, grpc.status.NOT_FOUND, 'PodSandboxStatus of an unknown pod');
  r = await call(rt, 'ContainerStatus', { container_id: 'deadbeef' });
  expectCode(r, grpc.status.NOT_FOUND, 'ContainerStatus of an unknown container');

  // An RPC of the API that quark does not serve yet, and paths that are not
  // in the API at all: UNIMPLEMENTED naming the RPC, never a hang.
  r = await call(rt, 'CheckpointContainer', { container_id: 'x', location: '/tmp/x' });
  if (expectCode(r, grpc.status.UNIMPLEMENTED, 'CheckpointContainer'))
    check(r.err.details.includes('CheckpointContainer'), `message names the RPC (${r.err.details})`);
  r = await rawCall(rt, '/runtime.v1.RuntimeService/NoSuchRpc', Buffer.alloc(0));
  if (expectCode(r, grpc.status.UNIMPLEMENTED, 'unknown method'))
    check(r.err.details.includes('NoSuchRpc'), `message names the method (${r.err.details})`);
  r = await rawCall(rt, '/runtime.v1alpha2.RuntimeService/Version', Buffer.alloc(0));
  expectCode(r, grpc.status.UNIMPLEMENTED, 'v1alpha2 path');

  // Server streaming: the events stream ends with UNIMPLEMENTED.
  const ev = await new Promise((resolve) => {
    const s = rt.GetContainerEvents({});
    s.on('data', () => {});
    s.on('error', (err) => resolve(err));
    s.on('end', () => resolve(null));
  });
  check(ev && ev.code === grpc.status.UNIMPLEMENTED, `GetContainerEvents stream ends UNIMPLEMENTED (${ev && ev.details})`);

  // ImageService is reachable on the same socket (its answers belong to the
  // image tests): any status but UNAVAILABLE shows it is served.
  r = await call(im, 'ImageFsInfo', {});
  check(!r.err || r.err.code !== grpc.status.UNAVAILABLE, `ImageService answers (${r.err ? r.err.code : 'OK'})`);

  done();
})();
