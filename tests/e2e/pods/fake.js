// quarkd's pod and container code against the stand-in sandbox client
// (fake_sbx.c; no VM): the real network namespace, pod files, image store
// root filesystems, state store and CRI handlers, with a sandbox whose
// behaviour is known. Driven by pods_fakesbx.sh:
//   node fake.js run        full life cycle of one pod (ids in $E2E_T/ids.json)
//   node fake.js restarted  after kill -9 of quarkd: the pod is back, its
//                           containers unknown to the "VM" are EXITED 255
//   node fake.js died       the sandbox disappears under a running pod
'use strict';
const { clients, call, check, expectCode, expectAlive, done, grpc } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();
const IMAGE = 'docker.io/library/busybox:latest';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (stdout|stderr) (P|F) (.*)$/;

function podCfg(name) {
  return {
    metadata: { name, namespace: 'e2e', uid: `uid-${name}`, attempt: 0 },
    hostname: `${name}-host`, log_directory: `${T}/logs/${name}`, labels: { app: name },
    dns_config: { servers: ['10.0.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
    linux: { sysctls: { 'net.ipv4.ip_forward': '1' } },
  };
}
function ctr(name, command, extra) {
  return Object.assign({ metadata: { name, attempt: 0 }, image: { image: IMAGE }, command, log_path: `${name}.log` }, extra || {});
}
async function status(id, verbose) {
  const r = await call(rt, 'ContainerStatus', { container_id: id, verbose: !!verbose });
  return r.err ? null : r.res;
}
async function waitExited(id) {
  for (let i = 0; i < 50; i++) {
    const s = await status(id);
    if (s && s.status.state === 'CONTAINER_EXITED') return s.status;
    await sleep(100);
  }
  return (await status(id)).status;
}
async function mk(pod, cfg, pc) {
  const r = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: cfg, sandbox_config: pc }, 30000);
  check(!r.err, `CreateContainer ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  return r.res ? r.res.container_id : '';
}

async function run() {
  fs.mkdirSync(`${T}/data`, { recursive: true });
  const pc = podCfg('fk');
  const rp = await call(rt, 'RunPodSandbox', { config: pc, runtime_handler: '' }, 60000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;
  const ps = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
  const info = JSON.parse(ps.res.info.info);
  check(ps.res.status.state === 'SANDBOX_READY', 'pod READY');
  check(info.NetworkMode === 'loopback' && fs.existsSync(info.NetnsPath), `loopback-only namespace pinned at ${info.NetnsPath}`);
  check(fs.readFileSync(`${info.RunDir}/hostname`, 'utf8').trim() === 'fk-host', 'hostname file');
  const resolv = fs.readFileSync(`${info.RunDir}/resolv.conf`, 'utf8');
  check(/search svc\.cluster\.local/.test(resolv) && /nameserver 10\.0\.0\.10/.test(resolv) && /options ndots:5/.test(resolv), 'resolv.conf from DNSConfig');
  check(/localhost/.test(fs.readFileSync(`${info.RunDir}/hosts`, 'utf8')), 'hosts file written');
  expectCode(await call(rt, 'RunPodSandbox', { config: pc }), S.ALREADY_EXISTS, 'the same pod metadata twice');

  const c1 = await mk(pod, ctr('main', ['/bin/sh', '-c', 'echo hi'], {
    envs: [{ key: 'FOO', value: 'bar' }], working_dir: '/tmp',
    mounts: [{ container_path: '/data', host_path: `${T}/data`, readonly: true }],
  }), pc);
  let s = await status(c1, true);
  check(s.status.state === 'CONTAINER_CREATED', 'CREATED');
  const ci = JSON.parse(s.info.info);
  check(JSON.stringify(ci.Argv) === JSON.stringify(['/bin/sh', '-c', 'echo hi']) && ci.Cwd === '/tmp' && ci.Uid === 0,
        `process spec recorded (${JSON.stringify([ci.Argv, ci.Cwd, ci.Uid])})`);
  check(s.status.mounts.some((m) => m.container_path === '/data' && m.readonly) &&
        s.status.mounts.some((m) => m.container_path === '/etc/hosts' && m.host_path === `${info.RunDir}/hosts`),
        'mounts reported');
  check(/sha256:[0-9a-f]{64}/.test(s.status.image_ref) && s.status.image.image === IMAGE, `image_ref ${s.status.image_ref}`);
  check(fs.existsSync(ci.Rootfs + '/bin/busybox'), 'root filesystem from the image store is mounted');
  expectCode(await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: ctr('main', ['x']), sandbox_config: pc }),
             S.ALREADY_EXISTS, 'a second container named main');
  // The image's default command when the config has none (busybox: /bin/sh).
  const cdef = await mk(pod, ctr('default', []), pc);
  check(JSON.stringify(JSON.parse((await status(cdef, true)).info.info).Argv) === '["/bin/sh"]', 'image cmd used without a command');
  const cargs = await mk(pod, ctr('args', [], { args: ['echo', 'a'] }), pc);
  check(JSON.stringify(JSON.parse((await status(cargs, true)).info.info).Argv) === '["echo","a"]', 'args replace the image cmd');
  expectCode(await call(rt, 'RemoveContainer', { container_id: cdef }), S.OK, 'remove a created container');
  expectCode(await call(rt, 'RemoveContainer', { container_id: cargs }), S.OK, 'remove another');

  expectCode(await call(rt, 'StartContainer', { container_id: c1 }), S.OK, 'StartContainer');
  s = await status(c1);
  check(s.status.state === 'CONTAINER_RUNNING' && Number(s.status.started_at) > 0, 'RUNNING');
  expectCode(await call(rt, 'StartContainer', { container_id: c1 }), S.FAILED_PRECONDITION, 'StartContainer twice');
  const lines = fs.readFileSync(s.status.log_path, 'utf8').split('\n').filter((l) => l);
  check(lines.length === 4 && lines.every((l) => LINE.test(l)), `log file in CRI format at ${s.status.log_path}`);

  let r = await call(rt, 'ExecSync', { container_id: c1, cmd: ['echo', 'x'], timeout: 5 });
  check(!r.err && r.res.stdout.toString() === 'echo x\n' && r.res.stderr.toString() === 'e' && r.res.exit_code === 0, 'ExecSync output');
  r = await call(rt, 'ExecSync', { container_id: c1, cmd: ['exit', '3'] });
  check(!r.err && r.res.exit_code === 3, 'ExecSync exit code 3');
  r = await call(rt, 'ExecSync', { container_id: c1, cmd: ['sleep', '5'], timeout: 1 }, 10000);
  check(r.err && r.err.code === S.DEADLINE_EXCEEDED, `ExecSync timeout: DEADLINE_EXCEEDED (${r.err && r.err.details})`);

  r = await call(rt, 'ContainerStats', { container_id: c1 });
  check(!r.err && r.res.stats.cpu.usage_core_nano_seconds.value === '1234567' && Number(r.res.stats.memory.working_set_bytes.value) > 0,
        'ContainerStats CPU and memory from the sandbox');
  fs.writeFileSync(`${T}/images/containers/${c1}/upper/big`, Buffer.alloc(100000, 1));
  r = await call(rt, 'ContainerStats', { container_id: c1 });
  check(Number(r.res.stats.writable_layer.used_bytes.value) >= 100000 && Number(r.res.stats.writable_layer.inodes_used.value) >= 2,
        `writable layer bytes and inodes (${r.res.stats.writable_layer.used_bytes.value}, ${r.res.stats.writable_layer.inodes_used.value})`);
  r = await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod });
  check(!r.err && r.res.stats.linux.cpu && r.res.stats.linux.containers.length === 1, 'PodSandboxStats with its running container');
  r = await call(rt, 'ListContainerStats', { filter: { pod_sandbox_id: pod } });
  check(!r.err && r.res.stats.length === 1, 'ListContainerStats');
  r = await call(rt, 'ListPodSandboxStats', { filter: { label_selector: { app: 'fk' } } });
  check(!r.err && r.res.stats.length === 1, 'ListPodSandboxStats by label');

  const c2 = await mk(pod, ctr('seven', ['exit', '7']), pc);
  expectCode(await call(rt, 'StartContainer', { container_id: c2 }), S.OK, 'start a container that exits 7');
  let e = await waitExited(c2);
  check(e.exit_code === 7 && e.reason === 'Error' && Number(e.finished_at) >= Number(e.started_at), `exit 7 -> EXITED Error (${e.state} ${e.exit_code} ${e.reason})`);
  const c3 = await mk(pod, ctr('zero', ['exit', '0']), pc);
  await call(rt, 'StartContainer', { container_id: c3 });
  e = await waitExited(c3);
  check(e.exit_code === 0 && e.reason === 'Completed', 'exit 0 -> Completed');
  expectCode(await call(rt, 'ReopenContainerLog', { container_id: c3 }), S.FAILED_PRECONDITION, 'ReopenContainerLog of an exited container');
  expectCode(await call(rt, 'ReopenContainerLog', { container_id: c1 }), S.UNIMPLEMENTED, 'ReopenContainerLog says UNIMPLEMENTED');
  expectCode(await call(rt, 'UpdateContainerResources', { container_id: c1, linux: { memory_limit_in_bytes: 1 << 26, cpu_quota: 50000, cpu_period: 100000 } }),
             S.UNIMPLEMENTED, 'UpdateContainerResources says UNIMPLEMENTED');
  const rs = await status(c1, true);
  check(JSON.parse(rs.info.info).Resources.MemoryLimitInBytes === 1 << 26 &&
        rs.status.resources.linux.memory_limit_in_bytes === String(1 << 26) && rs.status.resources.linux.cpu_quota === '50000',
        'resources recorded and reported in ContainerStatus');

  expectCode(await call(rt, 'StopContainer', { container_id: c1, timeout: 1 }), S.OK, 'StopContainer');
  e = (await status(c1)).status;
  check(e.state === 'CONTAINER_EXITED' && e.exit_code === 143 && e.reason === 'Error', `SIGTERM -> 143 (${e.exit_code})`);
  expectCode(await call(rt, 'StopContainer', { container_id: c1, timeout: 1 }), S.OK, 'StopContainer again');
  expectCode(await call(rt, 'RemoveContainer', { container_id: c3 }), S.OK, 'RemoveContainer');
  check(!fs.existsSync(`${T}/images/containers/${c3}`), 'its writable layer is gone');
  const c4 = await mk(pod, ctr('live', ['/bin/sh']), pc);
  await call(rt, 'StartContainer', { container_id: c4 });
  fs.writeFileSync(`${T}/ids.json`, JSON.stringify({ pod, c1, c2, c4, netns: info.NetnsPath, runDir: info.RunDir }));
  await expectAlive(rt, 'the fake life cycle');
  done();
}

async function restarted() {
  const ids = JSON.parse(fs.readFileSync(`${T}/ids.json`, 'utf8'));
  const ps = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: ids.pod });
  check(ps.res.status.state === 'SANDBOX_READY', 'pod READY after kill -9 (control socket reached again)');
  const c2 = (await status(ids.c2)).status;
  check(c2.state === 'CONTAINER_EXITED' && c2.exit_code === 7, 'exited container keeps its exit code');
  const c4 = await waitExited(ids.c4);
  check(c4.state === 'CONTAINER_EXITED' && c4.exit_code === 255 && c4.reason === 'Unknown',
        `a container the sandbox no longer knows is EXITED 255 Unknown (${c4.state} ${c4.exit_code})`);
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: ids.pod }), S.OK, 'StopPodSandbox');
  expectCode(await call(rt, 'CreateContainer', { pod_sandbox_id: ids.pod, config: ctr('late', ['x']), sandbox_config: podCfg('fk') }),
             S.FAILED_PRECONDITION, 'CreateContainer in a stopped pod');
  check(fs.existsSync(ids.netns), 'the namespace stays until RemovePodSandbox');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: ids.pod }), S.OK, 'RemovePodSandbox');
  check(!fs.existsSync(ids.netns) && !fs.existsSync(ids.runDir), 'namespace and run dir removed');
  const l = await call(rt, 'ListContainers', {});
  check(l.res.containers.length === 0, 'containers removed with the pod');
  done();
}

async function died() {
  const pc = podCfg('dies');
  const rp = await call(rt, 'RunPodSandbox', { config: pc }, 60000);
  const pod = rp.res.pod_sandbox_id;
  const c = await mk(pod, ctr('c', ['/bin/sh']), pc);
  await call(rt, 'StartContainer', { container_id: c });
  const info = JSON.parse((await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).res.info.info);
  fs.unlinkSync(info.ControlSocket);
  let st;
  for (let i = 0; i < 40; i++) {
    st = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod })).res.status.state;
    if (st === 'SANDBOX_NOTREADY') break;
    await sleep(100);
  }
  check(st === 'SANDBOX_NOTREADY', 'a pod whose sandbox died becomes NOTREADY (monitor)');
  const cs = (await status(c)).status;
  check(cs.state === 'CONTAINER_EXITED' && cs.exit_code === 255, 'its container EXITED 255');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }), S.OK, 'RemovePodSandbox');
  check(!fs.existsSync(info.NetnsPath), 'namespace removed');
  done();
}

// Exec and PortForward through the streaming server (WebSocket, kubelet's
// v4.channel.k8s.io framing: one channel byte in front of every message).
function wsSession(url, protocol, onOpen) {
  return new Promise((resolve) => {
    const chans = {};
    const ws = new WebSocket(url.replace(/^http/, 'ws'), [protocol]);
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => { ws.close(); resolve({ chans, err: 'timeout' }); }, 10000);
    ws.onopen = () => onOpen && onOpen(ws);
    ws.onmessage = (m) => {
      const b = Buffer.from(m.data);
      if (b.length === 0) return;
      chans[b[0]] = Buffer.concat([chans[b[0]] || Buffer.alloc(0), b.subarray(1)]);
    };
    ws.onerror = (e) => { clearTimeout(timer); resolve({ chans, err: String(e.message || e) }); };
    ws.onclose = () => { clearTimeout(timer); resolve({ chans }); };
  });
}

async function stream() {
  const pc = podCfg('st');
  const rp = await call(rt, 'RunPodSandbox', { config: pc }, 60000);
  const pod = rp.res.pod_sandbox_id;
  const c = await mk(pod, ctr('c', ['/bin/sh']), pc);
  await call(rt, 'StartContainer', { container_id: c });
  let r = await call(rt, 'Exec', { container_id: c, cmd: ['echo', 'via', 'stream'], stdout: true, stderr: true });
  check(!r.err && /^http:\/\/127\.0\.0\.1:\d+\/exec\/[0-9a-f]{64}$/.test(r.res.url), `Exec answers a URL (${r.err ? r.err.details : r.res.url})`);
  if (!r.err) {
    const s = await wsSession(r.res.url, 'v4.channel.k8s.io');
    const out = s.chans[1] ? s.chans[1].toString() : '';
    const st = s.chans[3] ? s.chans[3].toString() : '';
    check(out === 'echo via stream\n' && (s.chans[2] || '').toString() === 'e' && /Success/.test(st),
          `exec over WebSocket: stdout, stderr and a Success status (${JSON.stringify([out, st, s.err])})`);
  }
  expectCode(await call(rt, 'Exec', { container_id: c, cmd: ['sh'], tty: true, stdin: true, stdout: true }), S.UNIMPLEMENTED, 'Exec with a tty');
  expectCode(await call(rt, 'Attach', { container_id: c, stdout: true }), S.UNIMPLEMENTED, 'Attach');
  expectCode(await call(rt, 'Exec', { container_id: '0'.repeat(64), cmd: ['x'], stdout: true }), S.NOT_FOUND, 'Exec in an unknown container');
  expectCode(await call(rt, 'PortForward', { pod_sandbox_id: '0'.repeat(64), port: [80] }), S.NOT_FOUND, 'PortForward to an unknown pod');

  // A server inside the pod's namespace answers through PortForward.
  const info = JSON.parse((await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).res.info.info);
  const ns = info.NetnsPath.split('/').pop();
  const srv = require('child_process').spawn('ip', ['netns', 'exec', ns, 'python3', '-c',
    'import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",8089));s.listen(1);print("up",flush=True)\nc,_=s.accept();d=c.recv(100);c.sendall(b"pong:"+d);c.close()'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res) => srv.stdout.once('data', res));
  r = await call(rt, 'PortForward', { pod_sandbox_id: pod, port: [8089] });
  check(!r.err && /\/portforward\//.test(r.res.url), 'PortForward answers a URL');
  if (!r.err) {
    const s = await wsSession(`${r.res.url}?port=8089`, 'v4.channel.k8s.io', (ws) => {
      setTimeout(() => ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping')])), 200);
      setTimeout(() => ws.close(), 1500);
    });
    const data = s.chans[0] ? s.chans[0].toString('latin1') : '';
    check(/pong:ping/.test(data), `port forward reaches 127.0.0.1:8089 in the pod (${JSON.stringify(data)} ${s.err || ''})`);
  }
  srv.kill();
  expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: pod }), S.OK, 'stop');
  expectCode(await call(rt, 'PortForward', { pod_sandbox_id: pod, port: [80] }), S.FAILED_PRECONDITION, 'PortForward to a stopped pod');
  expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }), S.OK, 'remove');
  done();
}

// Concurrent calls: identical RunPodSandbox requests make one pod; pods
// created, used and removed in parallel leave nothing behind.
async function concurrent() {
  const same = await Promise.all([1, 2, 3, 4, 5].map(() => call(rt, 'RunPodSandbox', { config: podCfg('twin') }, 60000)));
  const ok = same.filter((r) => !r.err);
  check(ok.length === 1 && same.filter((r) => r.err && r.err.code === S.ALREADY_EXISTS).length === 4,
        `5 identical RunPodSandbox at once: 1 pod, 4 ALREADY_EXISTS (${same.map((r) => r.err ? r.err.code : 'ok')})`);
  if (ok.length) await call(rt, 'RemovePodSandbox', { pod_sandbox_id: ok[0].res.pod_sandbox_id }, 60000);
  const results = await Promise.all([...Array(8).keys()].map(async (i) => {
    const pc = podCfg(`par${i}`);
    const rp = await call(rt, 'RunPodSandbox', { config: pc }, 60000);
    if (rp.err) return `run ${rp.err.details}`;
    const pod = rp.res.pod_sandbox_id;
    const cc = await call(rt, 'CreateContainer', { pod_sandbox_id: pod, config: ctr('c', ['/bin/sh']), sandbox_config: pc }, 60000);
    if (cc.err) return `create ${cc.err.details}`;
    const [st, ex, stats] = await Promise.all([
      call(rt, 'StartContainer', { container_id: cc.res.container_id }, 60000),
      call(rt, 'ListContainers', {}), call(rt, 'ListPodSandboxStats', {})]);
    if (st.err || ex.err || stats.err) return 'start/list';
    // Remove while another call uses the pod.
    const [rm] = await Promise.all([call(rt, 'RemovePodSandbox', { pod_sandbox_id: pod }, 60000),
      call(rt, 'ExecSync', { container_id: cc.res.container_id, cmd: ['echo'] }),
      call(rt, 'ContainerStats', { container_id: cc.res.container_id })]);
    return rm.err ? `remove ${rm.err.details}` : 'ok';
  }));
  check(results.every((r) => r === 'ok'), `8 pods in parallel: run, create, start, exec and remove (${results})`);
  const l = await call(rt, 'ListPodSandbox', {});
  check(l.res.items.length === 0, 'no pods left');
  await expectAlive(rt, 'concurrent pods');
  done();
}

({ run, restarted, died, stream, concurrent })[process.argv[2]]().catch((e) => { console.log(`FAIL exception ${e.stack}`); process.exit(1); });
