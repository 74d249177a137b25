// The pod's security settings through quarkd (CRI) with real VMs: a
// RuntimeDefault container (unshare, keyctl, add_key, bpf, mount blocked in
// the guest), an Unconfined one (keyctl reaches the kernel: ENOSYS), one
// with runAsUser/runAsGroup/supplementalGroups/noNewPrivs and capabilities
// dropped, a Localhost profile, and a Localhost path outside the seccomp
// root refused, and readOnlyRootFilesystem (t_sec rofs: every write to the
// root EROFS in the guest; a shell in a read-only root with a writable
// hostPath mount: `touch /x` fails with "Read-only file system", the mount
// takes writes), OCI masked paths (a file reads empty, a directory is
// empty, both read-only) and read-only paths (EROFS) with the CRI defaults
// under /proc and /sys. The checks run inside the guest (t_sec, bind-mounted from
// the host). Driven by cri_security.sh.
'use strict';
const { clients, call, check, done, BUSYBOX, sleep } =
  require(process.env.CRI_COMMON);
const fs = require('fs');

const T = process.env.E2E_T;
const ROUND = process.env.QUARK_POD_SHARED_VM === '1' ? 'shared' : 'pervm';
const PROG = process.env.T_SEC;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;

const podCfg = {
  metadata: { name: `sec-${ROUND}`, namespace: 'e2e', uid: `uid-sec-${ROUND}`, attempt: 0 },
  hostname: 'sec', log_directory: `${T}/logs/sec-${ROUND}`,
};

function ctr(name, mode, sc) {
  return {
    metadata: { name, attempt: 0 }, image: { image: IMAGE }, command: ['/t_sec', mode],
    log_path: `${name}.log`,
    mounts: [{ container_path: '/t_sec', host_path: PROG, readonly: true }],
    linux: { security_context: sc },
  };
}

async function runOne(podId, cfg) {
  const t0 = Date.now();
  let r = await call(rt, 'CreateContainer', { pod_sandbox_id: podId, config: cfg, sandbox_config: podCfg }, 60000);
  if (r.err) return { err: r.err };
  const id = r.res.container_id;
  r = await call(rt, 'StartContainer', { container_id: id }, 60000);
  check(!r.err, `StartContainer ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  let st;
  for (const until = Date.now() + 60000; Date.now() < until; await sleep(200)) {
    const s = await call(rt, 'ContainerStatus', { container_id: id });
    st = s.res && s.res.status;
    if (st && st.state === 'CONTAINER_EXITED') break;
  }
  const log = fs.readFileSync(`${T}/logs/sec-${ROUND}/${cfg.metadata.name}.log`, 'utf8');
  await call(rt, 'RemoveContainer', { container_id: id }, 30000);
  return { st, log, ms: Date.now() - t0 };
}

async function expectOk(podId, name, mode, sc) {
  const r = await runOne(podId, ctr(name, mode, sc));
  check(!r.err, `CreateContainer ${name}` + (r.err ? ` (${r.err.details})` : ''));
  const ok = r.st && r.st.state === 'CONTAINER_EXITED' && Number(r.st.exit_code) === 0 &&
    new RegExp(`t_sec ${mode}: \\d+ checks ok`).test(r.log);
  check(ok, `${name}: exit ${r.st && r.st.exit_code}, log: ${r.log.slice(-400)}`);
  console.log(`ok   ${name} (${r.ms} ms): ${(r.log.match(/t_sec .*checks ok/) || [''])[0]}`);
}

(async () => {
  const p = await call(rt, 'RunPodSandbox', { config: podCfg }, 60000);
  check(!p.err, 'RunPodSandbox' + (p.err ? ` (${p.err.details})` : ''));
  const podId = p.res.pod_sandbox_id;
  await expectOk(podId, 'runtimedefault', 'runtimedefault', { seccomp: { profile_type: 'RuntimeDefault' } });
  await expectOk(podId, 'deprecated-path', 'runtimedefault', { seccomp_profile_path: 'runtime/default' });
  await expectOk(podId, 'unconfined', 'unconfined', { seccomp: { profile_type: 'Unconfined' } });
  await expectOk(podId, 'unset', 'unconfined', {});
  await expectOk(podId, 'user', 'user', {
    run_as_user: { value: 1000 }, run_as_group: { value: 1000 }, supplemental_groups: [5, 6],
    no_new_privs: true, capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['CHOWN'] },
  });
  await expectOk(podId, 'localhost', 'runtimedefault', {
    seccomp: { profile_type: 'Localhost', localhost_ref: `${T}/seccomp/profile.json` },
  });
  await expectOk(podId, 'rofs', 'rofs', { readonly_rootfs: true });
  // a read-only root with a writable hostPath mount: the host's read-only
  // mount of the root enforces, the mount stays writable
  const data = `${T}/rodata-${ROUND}`;
  fs.mkdirSync(data, { recursive: true });
  const sh = ctr('rofs-mount', 'rofs', { readonly_rootfs: true });
  sh.command = ['sh', '-c', 'touch /x; echo hi >/data/f && cat /data/f; mkdir /y; grep " / " /proc/mounts'];
  sh.mounts.push({ container_path: '/data', host_path: data });
  const rm2 = await runOne(podId, sh);
  check(!rm2.err, 'CreateContainer rofs-mount' + (rm2.err ? ` (${rm2.err.details})` : ''));
  const lg = rm2.log || '';
  check(/touch: \/x: Read-only file system/.test(lg) && /mkdir: can't create directory '\/y': Read-only file system/.test(lg),
    `rofs-mount: writes to the root refused, log: ${lg.slice(-400)}`);
  check(/ hi$/m.test(lg) && fs.readFileSync(`${data}/f`, 'utf8') === 'hi\n', `rofs-mount: the writable mount took the write, log: ${lg.slice(-400)}`);
  check(/quarkfs ro,/.test(lg), `rofs-mount: /proc/mounts shows the root ro, log: ${lg.slice(-400)}`);
  console.log(`ok   rofs-mount (${rm2.ms} ms): touch /x and mkdir /y: Read-only file system; /data writable; root ro in /proc/mounts`);
  // OCI masked and read-only paths: the CRI defaults (guest /proc and /sys:
  // none of the masked entries, read-only) plus paths in the image
  const MASKED = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
    '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
    '/sys/devices/virtual/powercap'];
  const RO = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
  const mk = ctr('masked', 'rofs', {
    masked_paths: [...MASKED, '/etc/passwd', '/root', '/no/such/path'], readonly_paths: [...RO, '/tmp'],
  });
  mk.command = ['sh', '-c', 'echo P=$(wc -c </etc/passwd) V=$(ls -A /root | wc -l) G=$(wc -c </etc/group) D=$(test -d /root && echo dir); ' +
    'touch /tmp/x; touch /root/x; echo x >/etc/passwd; echo x >/proc/sys/kernel/hostname; ls -a / /root; ls /proc/kcore; echo end'];
  const mr = await runOne(podId, mk);
  check(!mr.err, 'CreateContainer masked' + (mr.err ? ` (${mr.err.details})` : ''));
  const ml = mr.log || '';
  check(/P=0 V=0 G=[1-9]\d* D=dir/.test(ml) && !/ls: \/root/.test(ml) && !/quark-mask/.test(ml), `masked: /etc/passwd and /root read empty, /etc/group not, log: ${ml.slice(-500)}`);
  check(/touch: \/tmp\/x: Read-only file system/.test(ml), `masked: /tmp read-only, log: ${ml.slice(-500)}`);
  check(!/kcore\n[^]*end/.test(ml.replace(/.*No such file.*\n/g, '')) && /No such file/.test(ml), `masked: /proc/kcore absent, log: ${ml.slice(-500)}`);
  console.log(ml.replace(/^\S+ (stdout|stderr) F /gm, '    '));
  console.log(`ok   masked (${mr.ms} ms): masked /etc/passwd and /root read empty, /tmp read-only, /proc defaults absent or read-only`);
  const bad = await runOne(podId, ctr('outside', 'runtimedefault', {
    seccomp: { profile_type: 'Localhost', localhost_ref: `${T}/profile-outside.json` },
  }));
  check(bad.err && /not under the seccomp root/.test(bad.err.details),
    `a profile outside the seccomp root: ${bad.err ? bad.err.details : 'accepted'}`);
  console.log('ok   Localhost outside the seccomp root refused: ' + bad.err.details);
  const unknown = await runOne(podId, ctr('badcap', 'unconfined', { capabilities: { add_capabilities: ['CAP_NOPE'] } }));
  check(unknown.err && /unknown capability/.test(unknown.err.details), 'an unknown capability is refused');
  console.log('ok   unknown capability refused');
  await call(rt, 'StopPodSandbox', { pod_sandbox_id: podId }, 60000);
  const rm = await call(rt, 'RemovePodSandbox', { pod_sandbox_id: podId }, 60000);
  check(!rm.err, 'RemovePodSandbox');
  done();
})().catch((e) => { console.error(e); process.exit(1); });
