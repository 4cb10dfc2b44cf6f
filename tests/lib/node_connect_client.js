// Node 20 does not read HTTPS_PROXY: a CONNECT agent of the tests' own.
//   node node_connect_client.js HOST PORT PATH [VAR]
// GETs https://HOST:PORT/PATH through $HTTPS_PROXY with
// "Authorization: Bearer $VAR" (VAR defaults to API_TOKEN), trusting the
// CAs Node trusts (NODE_EXTRA_CA_CERTS). Prints "node STATUS BODY"; exits 0
// on 200, 1 on another status, 2-4 when the proxy or TLS fails.
const http = require('http'), https = require('https'), tls = require('tls');
const [host, port, path, variable = 'API_TOKEN'] = process.argv.slice(2);
const proxy = new URL(process.env.HTTPS_PROXY);
// Host names the target, as https-proxy-agent sends it (the proxy refuses a
// CONNECT whose Host header differs from its target)
const req = http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT',
                          path: `${host}:${port}`, headers: {Host: `${host}:${port}`}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(2); }
  // an agent whose connection is TLS over the tunnel (the CA from
  // NODE_EXTRA_CA_CERTS)
  const agent = new https.Agent();
  agent.createConnection = () => tls.connect({socket, servername: host});
  const r = https.request({host, port, path, agent,
                           headers: {Authorization: `Bearer ${process.env[variable]}`}},
                          (resp) => {
    let body = '';
    resp.on('data', (d) => body += d);
    resp.on('end', () => { process.stdout.write(`node ${resp.statusCode} ${body}`);
                           process.exit(resp.statusCode === 200 ? 0 : 1); });
  });
  r.on('error', (e) => { console.error('node:', e.message); process.exit(3); });
  r.end();
});
req.on('error', (e) => { console.error('node proxy:', e.message); process.exit(4); });
req.end();
