// CRI pid mode TARGET (kubectl debug --target=app), on one busybox pod with
// a real VM (driven by `pidns.sh target.js`):
// - a debug container (tty and stdin, as kubectl debug -it makes it)
//   created with namespace_options {pid: TARGET,
//   target_id: app} joins app's pid namespace (app in mode CONTAINER): app's
//   init stays pid 1, the debug container's init is an ordinary member
//   there (ppid 0); ps and /proc in it list app's processes, their
//   /proc/<pid> files read, and it kills app's background sleep (kill -9 1
//   does nothing: the namespace's init is protected, as on Linux); app sees
//   the debug container's processes as well; /proc/1/root leads into
//   app's filesystem (cat, ls, cd, readlink, ".." stays at app's root);
// - an orphan of the debug container goes to app's init;
// - ContainerStatus verbose info says PidMode TARGET and PidTarget;
// - StopContainer / RemoveContainer of the debug container leave app and
//   its processes alone;
// - when app's init ends, the namespace's other processes are killed, the
//   debug container's too: it ends EXITED with 137 (SIGKILL), as Linux does
//   to a pid namespace whose init died;
// - a target in the pod's shared namespace (mode POD): the debug container
//   joins that, and lives on when the target ends;
// - refused: an unknown target_id (NOT_FOUND), a container of another pod
//   (INVALID_ARGUMENT), a target that does not run (FAILED_PRECONDITION),
//   TARGET without a target_id (INVALID_ARGUMENT).
'use strict';
const { clients, call, check, expectCode, done, grpc, sleep } = require(process.env.CRI_COMMON);
const fs = require('fs');
const L = require('./lib.js');
const { PS, procs, has, ctr } = L;

const S = grpc.status;
const T = process.env.E2E_T;
const { runtime: rt } = clients();

function podConfig(name) {
  // kubelet's pod without shareProcessNamespace: pid mode CONTAINER.
  return { metadata: { name, namespace: 'e2e', uid: `uid-${name}`, attempt: 0 },
           hostname: name, log_directory: `${T}/logs/${name}`,
           linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } } };
}
const podCfg = podConfig('pidtgt');
const otherCfg = podConfig('pidtgt-other');
const run = (podId, cfg) => L.run(rt, podCfg, podId, cfg);
const sh = (id, script) => L.sh(rt, id, script);
const state = (id) => L.state(rt, id);
const LOOP = 'while true; do sleep 1; done';

// ContainerStatus verbose info (the record's JSON).
async function verboseInfo(id) {
  const v = await L.state(rt, id, true);
  try { return JSON.parse((v && v.info && v.info.info) || '{}'); } catch (e) { return {}; }
}
async function waitExited(id) {
  let s = null;
  for (let i = 0; i < 75 && !(s && s.state === 'CONTAINER_EXITED'); i++) { await sleep(200); s = await state(id); }
  return s;
}

async function main() {
  const rp = await call(rt, 'RunPodSandbox', { config: podCfg, runtime_handler: '' }, 120000);
  check(!rp.err, 'RunPodSandbox' + (rp.err ? ` (${rp.err.details})` : ''));
  if (rp.err) done();
  const pod = rp.res.pod_sandbox_id;

  const app = await run(pod, ctr('app', `sleep 1001 & sleep 1002 & echo app-up; ${LOOP}`, 'CONTAINER'));
  // As kubectl debug -it creates it: a terminal and stdin.
  const dbg = await run(pod, Object.assign(ctr('dbg', `echo dbg-up; ${LOOP}`, 'TARGET', app), { tty: true, stdin: true }));
  await sleep(1500);

  // In the target's namespace: its init is pid 1, its sleeps are there,
  // the debug container's init is a member with ppid 0.
  const inD = procs(await sh(dbg, PS));
  const list = inD.map((p) => `${p.pid}/${p.ppid}:${p.args}`).join('; ').slice(0, 400);
  const one = inD.find((p) => p.pid === 1);
  check(one && /marker-app/.test(one.args), `dbg: pid 1 is app's init (${list})`);
  const s1001 = inD.find((p) => /^sleep 1001/.test(p.args));
  check(s1001 && has(inD, /^sleep 1002/), 'dbg sees app\'s background sleeps');
  const d1 = inD.find((p) => /marker-dbg/.test(p.args));
  check(d1 && d1.pid > 1 && d1.ppid === 0, `dbg's init is an ordinary member, ppid 0 (${d1 && [d1.pid, d1.ppid]})`);
  const ps = await sh(dbg, 'ps');
  check(/marker-app/.test(ps) && /sleep 1001/.test(ps) && /marker-dbg/.test(ps), `ps in dbg lists app's processes (${ps.slice(0, 300)})`);
  const cmd = await sh(dbg, `tr '\\0' ' ' < /proc/${s1001 ? s1001.pid : 0}/cmdline; echo; cat /proc/${s1001 ? s1001.pid : 0}/status | grep -c '^Pid:'`);
  check(/^sleep 1001 \n1/.test(cmd), `dbg reads /proc/<pid> of app's sleep (${cmd.trim()})`);
  // /proc/<pid>/root leads into the target's filesystem (Linux's magic
  // link, what the Kubernetes docs point debug containers to): a file only
  // app's root has reads there and not in dbg's own; ls, cd, readlink.
  await sh(app, 'echo only-in-app > /tmp/app-file; mkdir -p /tmp/app-dir; echo x > /tmp/app-dir/y');
  const viaRoot = await sh(dbg, 'cat /proc/1/root/tmp/app-file; cat /tmp/app-file 2>&1 || echo dbg-has-none; ' +
    'readlink /proc/1/root; ls /proc/1/root/ | tr "\n" " "; echo; ls /proc/1/root/tmp | tr "\n" " "; echo; ' +
    'cd /proc/1/root/tmp/app-dir && cat y && cat ../app-file; cat /proc/1/root/../../tmp/app-file');
  const vr = viaRoot.split('\n');
  check(vr[0] === 'only-in-app', `dbg: cat /proc/1/root/tmp/app-file reads app's file (${viaRoot.slice(0, 300)})`);
  check(/dbg-has-none/.test(vr[1] + vr[2]), `dbg's own /tmp has no app-file (${vr.slice(1, 3).join('|')})`);
  const rlIdx = vr.findIndex((l) => l === '/');
  check(rlIdx > 0, 'dbg: readlink /proc/1/root is /');
  const lsRoot = rlIdx > 0 ? vr[rlIdx + 1] : '';
  check(/\bbin\b/.test(lsRoot) && /\btmp\b/.test(lsRoot) && /\bproc\b/.test(lsRoot), `dbg: ls /proc/1/root/ lists app's root (${lsRoot})`);
  check(rlIdx > 0 && /\bapp-file\b/.test(vr[rlIdx + 2]) && /\bapp-dir\b/.test(vr[rlIdx + 2]), `dbg: ls /proc/1/root/tmp lists app's files (${rlIdx > 0 ? vr[rlIdx + 2] : ''})`);
  check(rlIdx > 0 && vr[rlIdx + 3] === 'x' && vr[rlIdx + 4] === 'only-in-app' && vr[rlIdx + 5] === 'only-in-app',
        `dbg: cd /proc/1/root/tmp/app-dir, relative reads and .. at app's root stay in app's filesystem (${vr.slice(rlIdx + 3).join('|')})`);
  const inApp = procs(await sh(app, PS));
  check(has(inApp, /marker-dbg/) && inApp.some((p) => p.pid === 1 && /marker-app/.test(p.args)),
        `app sees dbg's processes in its namespace (${inApp.map((p) => p.args).join('; ').slice(0, 300)})`);

  // An orphan of the debug container goes to the namespace's init.
  const orph = procs(await sh(dbg, `(exec sleep 1003 &); sleep 1; ${PS}`));
  const s3 = orph.find((p) => /^sleep 1003/.test(p.args));
  check(s3 && s3.ppid === 1, `dbg's orphan goes to app's init (${s3 ? s3.ppid : '-'})`);

  // Signals: the namespace's init is protected, its other processes not.
  await sh(dbg, 'kill -9 1');
  const sa = await state(app);
  check(sa && sa.state === 'CONTAINER_RUNNING', `kill -9 1 from dbg leaves app running (${sa && sa.state})`);
  const k = await sh(dbg, `kill ${s1001 ? s1001.pid : 0}; echo rc=$?`);
  check(/rc=0/.test(k), `dbg kills app's sleep 1001 (${k.trim()})`);
  await sleep(1500);
  const afterKill = procs(await sh(app, PS));
  check(!afterKill.some((p) => /^sleep 1001/.test(p.args) && p.st !== 'Z'), 'app\'s sleep 1001 is gone');
  check(has(afterKill, /^sleep 1002/), 'app\'s sleep 1002 lives on');

  // What ContainerStatus and PodSandboxStatus say about it.
  const info = await verboseInfo(dbg);
  check(info.PidMode === 'TARGET' && info.PidTarget === app,
        `dbg's verbose info: PidMode ${info.PidMode}, PidTarget ${String(info.PidTarget).slice(0, 12)}`);
  const ainfo = await verboseInfo(app);
  check(ainfo.PidMode === 'CONTAINER' && !ainfo.PidTarget, `app's verbose info: PidMode ${ainfo.PidMode}`);
  const pst = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod });
  const pidMode = pst.err ? pst.err.details : pst.res.status.linux.namespaces.options.pid;
  check(pidMode === 'CONTAINER', `PodSandboxStatus keeps the pod's pid mode CONTAINER (${pidMode})`);

  // Refused targets.
  const rq = await call(rt, 'RunPodSandbox', { config: otherCfg, runtime_handler: '' }, 120000);
  check(!rq.err, 'RunPodSandbox other' + (rq.err ? ` (${rq.err.details})` : ''));
  const other = rq.err ? '' : rq.res.pod_sandbox_id;
  const x = other ? await L.run(rt, otherCfg, other, ctr('x', LOOP, 'CONTAINER')) : '';
  expectCode(await L.create(rt, podCfg, pod, ctr('bad1', LOOP, 'TARGET', 'f'.repeat(64))), S.NOT_FOUND, 'TARGET of an unknown container');
  expectCode(await L.create(rt, podCfg, pod, ctr('bad2', LOOP, 'TARGET', x)), S.INVALID_ARGUMENT, 'TARGET of another pod\'s container');
  expectCode(await L.create(rt, podCfg, pod, ctr('bad3', LOOP, 'TARGET', '')), S.INVALID_ARGUMENT, 'TARGET without target_id');
  const idle = await L.create(rt, podCfg, pod, ctr('idle', LOOP, 'CONTAINER'));
  check(!idle.err, 'CreateContainer idle (not started)');
  if (!idle.err)
    expectCode(await L.create(rt, podCfg, pod, ctr('bad4', LOOP, 'TARGET', idle.res.container_id)), S.FAILED_PRECONDITION, 'TARGET of a container that does not run');

  // Stop and remove the debug container: app and its processes stay.
  expectCode(await call(rt, 'StopContainer', { container_id: dbg, timeout: 2 }, 60000), S.OK, 'StopContainer dbg');
  const sd = await state(dbg);
  check(sd && sd.state === 'CONTAINER_EXITED', `dbg exited (${sd && sd.state})`);
  expectCode(await call(rt, 'RemoveContainer', { container_id: dbg }, 60000), S.OK, 'RemoveContainer dbg');
  const sa2 = await state(app);
  check(sa2 && sa2.state === 'CONTAINER_RUNNING', `app still runs (${sa2 && sa2.state})`);
  const left = procs(await sh(app, PS));
  check(has(left, /marker-app/) && has(left, /^sleep 1002/) && !has(left, /marker-dbg/) &&
        !left.some((p) => /^sleep 1003/.test(p.args) && p.st !== 'Z'),
        `app's processes live on, dbg's are gone (${left.map((p) => `${p.st}:${p.args}`).join('; ').slice(0, 300)})`);

  // The target's end kills the namespace, the debug container with it.
  const dbg2 = await run(pod, ctr('dbg2', `echo dbg2-up; ${LOOP}`, 'TARGET', app));
  await sleep(1000);
  const in2 = procs(await sh(dbg2, PS));
  check(in2.some((p) => p.pid === 1 && /marker-app/.test(p.args)) && has(in2, /marker-dbg2/), 'dbg2 is in app\'s namespace');
  expectCode(await call(rt, 'StopContainer', { container_id: app, timeout: 2 }, 60000), S.OK, 'StopContainer app');
  const s2 = await waitExited(dbg2);
  check(s2 && s2.state === 'CONTAINER_EXITED' && s2.exit_code === 137,
        `dbg2 was killed with app's namespace (${s2 && [s2.state, s2.exit_code, s2.reason]})`);
  expectCode(await call(rt, 'RemoveContainer', { container_id: app }, 60000), S.OK, 'RemoveContainer app (before dbg2)');
  expectCode(await call(rt, 'RemoveContainer', { container_id: dbg2 }, 60000), S.OK, 'RemoveContainer dbg2');
  // A target whose init never reaps (a plain sleep): the debug container's
  // orphan, killed with it, stays a zombie of that init after the debug
  // container is removed (as on Linux), and goes with the target.
  const app2 = await run(pod, ctr('app2', 'exec sleep 100000', 'CONTAINER'));
  const dbg3 = await run(pod, ctr('dbg3', `(exec sleep 1005 &); ${LOOP}`, 'TARGET', app2));
  await sleep(1000);
  expectCode(await call(rt, 'StopContainer', { container_id: dbg3, timeout: 2 }, 60000), S.OK, 'StopContainer dbg3');
  expectCode(await call(rt, 'RemoveContainer', { container_id: dbg3 }, 60000), S.OK, 'RemoveContainer dbg3');
  const z = procs(await sh(app2, PS));
  // (a zombie's cmdline is empty: its sleep 1005 and the loop's sleep 1,
  // given to pid 1 when dbg3's shell was killed first)
  check(z.some((p) => p.st === 'Z' && p.ppid === 1) && !has(z, /marker-dbg3|^sleep 1005/) &&
        z.every((p) => p.st === 'Z' || p.pid === 1 || /for d in/.test(p.args)),
        `dbg3's processes are gone, zombies of app2's init left (${z.map((p) => `${p.pid}/${p.ppid}/${p.st}:${p.args}`).join('; ').slice(0, 200)})`);
  const s2a = await state(app2);
  check(s2a && s2a.state === 'CONTAINER_RUNNING', `app2 still runs (${s2a && s2a.state})`);
  // One created but not started when its target ends is killed with it.
  const dbg4 = await L.create(rt, podCfg, pod, ctr('dbg4', LOOP, 'TARGET', app2));
  check(!dbg4.err, 'CreateContainer dbg4' + (dbg4.err ? ` (${dbg4.err.details})` : ''));
  expectCode(await call(rt, 'StopContainer', { container_id: app2, timeout: 1 }, 60000), S.OK, 'StopContainer app2');
  expectCode(await call(rt, 'RemoveContainer', { container_id: app2 }, 60000), S.OK, 'RemoveContainer app2');
  if (!dbg4.err) {
    const st4 = await call(rt, 'StartContainer', { container_id: dbg4.res.container_id }, 60000);
    check(st4.err, `StartContainer dbg4 after its target ended fails (${st4.err ? st4.err.details : 'OK'})`);
    expectCode(await call(rt, 'RemoveContainer', { container_id: dbg4.res.container_id }, 60000), S.OK, 'RemoveContainer dbg4');
  }

  // A target in the pod's shared namespace (mode POD): the debug container
  // joins that one (pid 1: the pod VM's idle process), and the target's end
  // does not end it (the namespace is not the target's).
  const app3 = await run(pod, ctr('app3', `sleep 1006 & ${LOOP}`, 'POD'));
  const dbg5 = await run(pod, ctr('dbg5', LOOP, 'TARGET', app3));
  await sleep(1000);
  const in5 = procs(await sh(dbg5, PS));
  check(in5.some((p) => p.pid === 1 && /quark-pod-idle/.test(p.args)) && has(in5, /marker-app3/) &&
        has(in5, /^sleep 1006/) && has(in5, /marker-dbg5/),
        `dbg5 is in the pod's shared namespace with app3 (${in5.map((p) => `${p.pid}:${p.args}`).join('; ').slice(0, 200)})`);
  expectCode(await call(rt, 'StopContainer', { container_id: app3, timeout: 1 }, 60000), S.OK, 'StopContainer app3');
  const s5 = await state(dbg5);
  check(s5 && s5.state === 'CONTAINER_RUNNING', `dbg5 runs on after app3 ended (${s5 && s5.state})`);
  const left5 = procs(await sh(dbg5, PS));
  check(!has(left5, /marker-app3|^sleep 1006/), 'app3\'s processes are gone');

  // The pod VM goes on: a new container gets a namespace of its own.
  const c = await run(pod, ctr('c', LOOP, 'CONTAINER'));
  await sleep(500);
  const inC = procs(await sh(c, PS));
  check(inC.some((p) => p.pid === 1 && /marker-c/.test(p.args)) && !has(inC, /marker-app|marker-dbg/),
        `a new container after them has its own namespace (${inC.map((p) => p.args).join('; ').slice(0, 200)})`);

  for (const id of [pod, other].filter(Boolean)) {
    expectCode(await call(rt, 'StopPodSandbox', { pod_sandbox_id: id }, 60000), S.OK, 'StopPodSandbox');
    expectCode(await call(rt, 'RemovePodSandbox', { pod_sandbox_id: id }, 60000), S.OK, 'RemovePodSandbox');
  }
  for (const n of ['pidtgt', 'pidtgt-other']) fs.rmSync(`${T}/logs/${n}`, { recursive: true, force: true });
  done();
}
main().catch((e) => { console.error(e); process.exit(1); });
