// Pod networking through quarkd (driven by podnet.sh): busybox httpd in a
// bridge pod answers the host by pod IP and through a hostPort, a second
// pod by IP, and a second container of its own pod on 127.0.0.1; a UDP echo
// (t_net from the host, mounted read-only) answers by pod IP; a hostNetwork
// pod serves on the host's loopback. Every pod is stopped and removed.
'use strict';
const common = require(process.env.CRI_COMMON);
const { clients, call, check, expectAlive, done, BUSYBOX, sleep, createStart } = common;
const http = require('http');
const dgram = require('dgram');

const T = process.env.E2E_T;
const SUBNET = process.env.PODNET_SUBNET;
const TNET = process.env.PODNET_TNET;
const USHARE = process.env.PODNET_USHARE;
const { runtime: rt } = clients();
const IMAGE = BUSYBOX;
const rnd = (lo, n) => lo + Math.floor(Math.random() * n);
// A port nobody listens on here now (other sessions run tests meanwhile).
function freePort(lo, n) {
  const net = require('net');
  return new Promise((resolve) => {
    const tryOne = (left) => {
      const port = rnd(lo, n);
      const srv = net.createServer();
      srv.once('error', () => (left ? tryOne(left - 1) : resolve(port)));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(port)));
    };
    tryOne(50);
  });
}
let HOSTPORT, HOSTNET_PORT;
const PAGE = 'hello from a quark pod';

function podCfg(name, extra) {
  return Object.assign({
    metadata: { name, namespace: 'podnet', uid: `uid-${name}`, attempt: 0 },
    hostname: name, log_directory: `${T}/logs/${name}`,
  }, extra || {});
}

function ctr(name, command, extra) {
  return Object.assign({
    metadata: { name, attempt: 0 }, image: { image: IMAGE }, command, log_path: `${name}.log`,
  }, extra || {});
}

// Each pod's pinned netns goes to $T/netns.txt: podnet.sh checks that they
// are gone (other sessions' pods come and go meanwhile).
async function runPod(cfg) {
  const r = await call(rt, 'RunPodSandbox', { config: cfg, runtime_handler: 'quark' }, 120000);
  check(!r.err, `RunPodSandbox ${cfg.metadata.name}` + (r.err ? ` (${r.err.details})` : ''));
  if (r.err) done();
  const v = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: r.res.pod_sandbox_id, verbose: true });
  const ns = !v.err && JSON.parse(v.res.info.info || '{}').NetnsPath;
  const hostNet = cfg.linux && cfg.linux.security_context.namespace_options.network === 'NODE';
  if (!hostNet) check(!!ns, `pinned netns in the verbose status (${ns})`);
  if (ns) require('fs').appendFileSync(`${T}/netns.txt`, `${ns}\n`);
  return r.res.pod_sandbox_id;
}

async function startCtr(pod, cfg, sandboxCfg) {
  const id = await createStart(rt, pod, cfg, sandboxCfg);
  if (id === null) done();
  return id;
}

// GET url: {status, body} or {error}.
function get(url, ms) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: ms || 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message }));
  });
}

// Retries until the server is up (VM start, httpd listen) or ms pass.
async function getRetry(url, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await get(url);
    if (!r.error || Date.now() > until) return r;
    await sleep(300);
  }
}

function udpEcho(host, port, msg, ms) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    let tries = 0;
    const timer = setInterval(() => {
      if (++tries > ms / 250) {
        clearInterval(timer);
        s.close();
        resolve(null);
        return;
      }
      s.send(msg, port, host);
    }, 250);
    s.on('message', (m) => { clearInterval(timer); s.close(); resolve(m.toString()); });
    s.send(msg, port, host);
  });
}

const execOut = (id, cmd) => common.execOut(rt, id, cmd, 20);

const removePod = (pod, name) => common.removePod(rt, pod, name);

const httpd = (port) => ['/bin/sh', '-c',
  `mkdir -p /tmp/www && echo '${PAGE}' >/tmp/www/index.html && exec httpd -f -p ${port} -h /tmp/www`];

// A plugin of the network refuses ADD (podnet.sh wrote the config).
async function failCase() {
  const cfg = podCfg('refused', {
    port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: HOSTPORT, host_ip: '127.0.0.1' }],
  });
  const r = await call(rt, 'RunPodSandbox', { config: cfg, runtime_handler: 'quark' }, 120000);
  check(r.err && /podnet-fail refuses ADD/.test(r.err.details),
        `RunPodSandbox fails with the plugin's message (${r.err ? r.err.details : 'succeeded'})`);
  const l = await call(rt, 'ListPodSandbox', {});
  check(!l.err && l.res.items.length === 0, `no pod recorded (${l.res && l.res.items.length})`);
  await expectAlive(rt, 'a failing CNI plugin');
  done();
}

// redis and nginx (images from tests/images/build.sh) in bridge pods: redis
// answers redis-cli from the host by pod IP and through a hostPort, nginx
// serves its page to the host by pod IP and through a hostPort.
async function appsCase() {
  const { execFileSync } = require('child_process');
  const cli = (host, port, ...args) => {
    try {
      return execFileSync('redis-cli', ['-h', host, '-p', String(port), ...args], { timeout: 5000 }).toString().trim();
    } catch (e) {
      return `error: ${e.message.split('\n')[0]}`;
    }
  };
  const RPORT = await freePort(33000, 1000), NPORT = await freePort(34000, 1000);
  const cfgR = podCfg('redis', { port_mappings: [{ protocol: 'TCP', container_port: 6379, host_port: RPORT, host_ip: '127.0.0.1' }] });
  const podR = await runPod(cfgR);
  const ipR = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: podR })).res.status.network.ip;
  await startCtr(podR, { metadata: { name: 'redis', attempt: 0 }, image: { image: 'docker.io/library/redis:latest' }, log_path: 'redis.log' }, cfgR);
  let pong;
  for (let i = 0; i < 60 && pong !== 'PONG'; i++) {
    pong = cli(ipR, 6379, 'ping');
    if (pong !== 'PONG') await sleep(500);
  }
  check(pong === 'PONG', `redis-cli -h ${ipR} ping through the bridge (${pong})`);
  const set = cli('127.0.0.1', RPORT, 'set', 'quark', 'pod');
  const get = cli('127.0.0.1', RPORT, 'get', 'quark');
  check(set === 'OK' && get === 'pod', `redis SET/GET through hostPort ${RPORT} (${set}, ${get})`);

  const cfgN = podCfg('nginx', { port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: NPORT, host_ip: '127.0.0.1' }] });
  const podN = await runPod(cfgN);
  const ipN = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: podN })).res.status.network.ip;
  await startCtr(podN, { metadata: { name: 'nginx', attempt: 0 }, image: { image: 'docker.io/library/nginx:latest' }, log_path: 'nginx.log' }, cfgN);
  const a = await getRetry(`http://${ipN}/`, 30000);
  check(a.status === 200 && a.body.trim() === 'hello from nginx', `nginx by pod IP through the bridge (${a.error || a.status})`);
  const b = await getRetry(`http://127.0.0.1:${NPORT}/`, 10000);
  check(b.status === 200 && b.body.trim() === 'hello from nginx', `nginx through hostPort ${NPORT} (${b.error || b.status})`);
  await removePod(podN, 'nginx');
  await removePod(podR, 'redis');
  await expectAlive(rt, 'redis and nginx pods');
  done();
}

// A dual-stack pod (podnet.sh wrote the config) whose IPs must read the
// same after quarkd is killed and restarted ('before' records them in $T).
async function restartCase(phase) {
  const fs = require('fs');
  const rec = `${T}/podnet-restart.json`;
  const ipsOf = async (id) => {
    const r = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: id });
    const n = !r.err && r.res.status.network;
    return n ? { ip: n.ip, more: (n.additional_ips || []).map((a) => a.ip) } : { err: r.err && r.err.details };
  };
  if (phase === 'before') {
    const id = await runPod(podCfg('dual'));
    const ips = await ipsOf(id);
    check(ips.ip && ips.ip.startsWith(`${SUBNET}.`), `dual stack: the primary IP is the IPv4 one (${ips.ip})`);
    check(ips.more && ips.more.length === 1 && ips.more[0].startsWith('fd88:'),
          `dual stack: the IPv6 address is in additional_ips (${JSON.stringify(ips.more)})`);
    fs.writeFileSync(rec, JSON.stringify({ id, ips }));
  } else {
    const { id, ips } = JSON.parse(fs.readFileSync(rec, 'utf8'));
    const now = await ipsOf(id);
    check(JSON.stringify(now) === JSON.stringify(ips),
          `after a kill -9 and restart of quarkd the pod's IPs are the same (${JSON.stringify(now)})`);
    await removePod(id, 'dual');
  }
  await expectAlive(rt, `dual-stack pod ${phase} the restart`);
  done();
}

(async () => {
  HOSTPORT = await freePort(31000, 1000);
  if (process.argv[2] === 'restart') return restartCase(process.argv[3]);
  HOSTNET_PORT = await freePort(32000, 1000);
  if (process.argv[2] === 'fail') return failCase();
  if (process.argv[2] === 'apps') return appsCase();
  // Pod A: httpd on 8080 (hostPort on 127.0.0.1) and a UDP echo on 9090.
  const cfgA = podCfg('web', {
    port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: HOSTPORT, host_ip: '127.0.0.1' }],
  });
  const podA = await runPod(cfgA);
  const st = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: podA })).res.status;
  const ipA = st.network && st.network.ip;
  check(ipA && ipA.startsWith(`${SUBNET}.`), `pod IP from the bridge network (${ipA})`);
  await startCtr(podA, ctr('web', httpd(8080)), cfgA);
  const udp = await startCtr(podA, ctr('udp', ['/tnet/t_net', 'udpserve', '9090', '1000'], {
    mounts: [{ container_path: '/tnet', host_path: TNET, readonly: true }],
    envs: [{ key: 'T_NET_ANY', value: '1' }],
  }), cfgA);

  const viaIp = await getRetry(`http://${ipA}:8080/`, 30000);
  check(viaIp.status === 200 && viaIp.body.trim() === PAGE,
        `host -> pod by IP through the bridge (${viaIp.error || viaIp.status})`);
  const viaHostPort = await getRetry(`http://127.0.0.1:${HOSTPORT}/`, 10000);
  check(viaHostPort.status === 200 && viaHostPort.body.trim() === PAGE,
        `host -> hostPort 127.0.0.1:${HOSTPORT} (${viaHostPort.error || viaHostPort.status})`);
  const lo = await execOut(udp, ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/']);
  check(lo.code === 0 && (lo.out || '').trim() === PAGE,
        `second container of the pod -> 127.0.0.1:8080 (${lo.err || lo.code} ${(lo.errOut || '').trim()})`);
  const echo = await udpEcho(ipA, 9090, 'ping over udp', 15000);
  check(echo === 'ping over udp', `UDP echo from the pod by IP (${echo})`);
  // Two containers of the pod over a unix socket in a shared volume: the
  // pod VM's kernel serves it; the bind leaves a socket inode in the volume.
  if (require('fs').existsSync(`${TNET}/t_unix`)) {
    const vols = [{ container_path: '/tnet', host_path: TNET, readonly: true },
                  { container_path: '/shared', host_path: USHARE }];
    await startCtr(podA, ctr('userv', ['/tnet/t_unix', 'serve', '/shared/u.sock'], { mounts: vols }), cfgA);
    const ucli = await startCtr(podA, ctr('ucli', ['/bin/sh', '-c', 'while true; do sleep 1; done'], { mounts: vols }), cfgA);
    let us;
    for (let i = 0; i < 20; i++) {
      us = await execOut(ucli, ['/tnet/t_unix', 'client', '/shared/u.sock', 'over a shared volume']);
      if (us.code === 0) break;
      await sleep(500);
    }
    check(us.code === 0 && (us.out || '').trim() === 'echo: over a shared volume',
          `container -> container over a unix socket in a shared volume (${us.err || us.code} ${(us.out || us.errOut || '').trim()})`);
    let sock = false;
    try { sock = require('fs').statSync(`${USHARE}/u.sock`).isSocket(); } catch (e) { /* reported below */ }
    check(sock, 'the bind made a socket inode in the volume on the host');
  } else {
    console.log('note: t_unix not built (target guest_unix_progs): the unix socket case is left out');
  }

  // Pod B on the same bridge reaches pod A by IP.
  const cfgB = podCfg('client');
  const podB = await runPod(cfgB);
  const stB = (await call(rt, 'PodSandboxStatus', { pod_sandbox_id: podB })).res.status;
  const ipB = stB.network && stB.network.ip;
  check(ipB && ipB.startsWith(`${SUBNET}.`) && ipB !== ipA, `second pod has its own IP (${ipB})`);
  const cli = await startCtr(podB, ctr('cli', ['/bin/sh', '-c', 'while true; do sleep 1; done']), cfgB);
  let p2p;
  for (let i = 0; i < 10; i++) {
    p2p = await execOut(cli, ['wget', '-q', '-O', '-', `http://${ipA}:8080/`]);
    if (p2p.code === 0) break;
    await sleep(500);
  }
  check(p2p.code === 0 && (p2p.out || '').trim() === PAGE,
        `pod -> pod by IP on one bridge (${p2p.err || p2p.code} ${(p2p.errOut || '').trim()})`);
  const own = await execOut(cli, ['/bin/sh', '-c', 'cat /etc/hosts']);
  check(own.code === 0 && own.out.includes(ipB), `/etc/hosts names the pod's IP (${(own.out || own.err || '').trim().split('\n').pop()})`);
  const hname = await execOut(cli, ['cat', '/etc/hostname']);
  check(hname.code === 0 && hname.out.trim() === 'client', `/etc/hostname is the pod's hostname (${(hname.out || hname.err || '').trim()})`);
  // The pod's own interfaces from inside (route netlink, SIOCGIFCONF) and
  // ICMP to the other pod (busybox ping: a raw socket, CAP_NET_RAW in the
  // default set, over the pod's host ping socket).
  const ipa = await execOut(cli, ['ip', 'addr']);
  check(ipa.code === 0 && new RegExp(`inet ${ipB.replace(/\./g, '\\.')}/24 .*eth0`).test(ipa.out),
        `ip addr in the pod lists eth0 with ${ipB} (${(ipa.out || ipa.err || '').trim().split('\n').filter((l) => l.includes('inet ')).join('; ')})`);
  const ifc = await execOut(cli, ['ifconfig', 'eth0']);
  check(ifc.code === 0 && ifc.out.includes(`inet addr:${ipB}`), `ifconfig eth0 in the pod (${(ifc.out || ifc.err || ifc.errOut || '').trim().split('\n')[1] || ''})`);
  const png = await execOut(cli, ['ping', '-c', '2', '-W', '5', ipA]);
  check(png.code === 0 && /2 packets received/.test(png.out), `ping pod -> pod by IP (${(png.out || png.err || png.errOut || '').trim().split('\n').pop()})`);
  // Without NET_RAW the raw socket is refused, as on Linux.
  const noraw = await startCtr(podB, ctr('noraw', ['/bin/sh', '-c', 'while true; do sleep 1; done'], {
    linux: { security_context: { capabilities: { drop_capabilities: ['NET_RAW'] } } },
  }), cfgB);
  const png2 = await execOut(noraw, ['ping', '-c', '1', '-W', '2', ipA]);
  check(png2.code !== 0 && /permission denied/i.test(`${png2.out} ${png2.errOut}`),
        `ping without NET_RAW is refused (${png2.err || png2.code} ${(png2.errOut || png2.out || '').trim()})`);

  // A hostNetwork pod serves on the host's own loopback.
  const cfgH = podCfg('hostnet', { hostname: '', linux: { security_context: { namespace_options: { network: 'NODE' } } } });
  const podH = await runPod(cfgH);
  await startCtr(podH, ctr('web', httpd(HOSTNET_PORT)), cfgH);
  const hn = await getRetry(`http://127.0.0.1:${HOSTNET_PORT}/`, 30000);
  check(hn.status === 200 && hn.body.trim() === PAGE, `hostNetwork pod on 127.0.0.1:${HOSTNET_PORT} (${hn.error || hn.status})`);

  await removePod(podH, 'hostnet');
  const gone = await get(`http://127.0.0.1:${HOSTNET_PORT}/`, 1000);
  check(!!gone.error, `hostNetwork server gone with its pod (${gone.error || gone.status})`);
  await removePod(podB, 'client');
  await removePod(podA, 'web');
  const hpGone = await get(`http://127.0.0.1:${HOSTPORT}/`, 1000);
  check(!!hpGone.error, `hostPort closed with its pod (${hpGone.error || hpGone.status})`);
  await expectAlive(rt, 'pod networking');
  done();
})().catch((e) => { console.log(`FAIL exception ${e.stack}`); process.exit(1); });
