// A registry token server for the auth tests (the docker "token" auth
// flow): GET /token with basic credentials, or POST /token with an OAuth2
// refresh token, answers a JWT signed RS256 with the key whose certificate
// the registry trusts (x5c header). Usage:
//   node token_server.js PORT KEY.pem CERT.pem USER:PASS REFRESH_TOKEN LOGFILE
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const [port, keyFile, certFile, userpass, refresh, logFile] = process.argv.slice(2);
const key = fs.readFileSync(keyFile);
const der = new crypto.X509Certificate(fs.readFileSync(certFile)).raw.toString('base64');
const b64u = (b) => Buffer.from(b).toString('base64url');

function jwt(service, scope) {
  const now = Math.floor(Date.now() / 1000);
  const access = [];
  if (scope) {
    const [type, name, actions] = scope.split(':');
    access.push({ type, name, actions: actions.split(',') });
  }
  const head = b64u(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der] }));
  const body = b64u(JSON.stringify({ iss: 'quark-test-issuer', sub: 'test', aud: service,
    exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access }));
  const sig = crypto.sign('RSA-SHA256', Buffer.from(head + '.' + body), key);
  return head + '.' + body + '.' + b64u(sig);
}

http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    let ok = false;
    let params = u.searchParams;
    if (req.method === 'POST') {
      params = new URLSearchParams(body);
      ok = params.get('grant_type') === 'refresh_token' && params.get('refresh_token') === refresh;
    } else {
      const a = req.headers.authorization || '';
      ok = a.startsWith('Basic ') && Buffer.from(a.slice(6), 'base64').toString() === userpass;
    }
    fs.appendFileSync(logFile, `${req.method} ${params.get('scope')} ${ok ? 'granted' : 'denied'}\n`);
    if (!ok) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"bad credentials"}');
      return;
    }
    const t = jwt(params.get('service'), params.get('scope'));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(req.method === 'POST' ? { access_token: t, expires_in: 300 }
                                                 : { token: t, expires_in: 300 }));
  });
}).listen(Number(port), '127.0.0.1');
