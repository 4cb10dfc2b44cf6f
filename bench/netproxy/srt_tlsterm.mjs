// sandbox-runtime's HTTP proxy with its TLS termination on and one masked
// credential, run standalone for bench/netproxy/tls_term. Wired the way
// sandbox-manager.js's startMuxProxyServer() wires it for a config with
// `network.tlsTerminate: {}` and `credentials.envVars: [{name, mode: "mask",
// injectHosts}]`:
//   - mitmCA from createMitmCA({}) (srt's ephemeral RSA-2048 CA; leaf
//     certificates minted per host and cached on the CA);
//   - the masked variable through buildMaskedEnvVars() into a
//     SentinelRegistry; mutateHeaders / getBodySubstitutions are the
//     registry's substituteInHeaders / sentinelsForHost with
//     matchesDomainPattern (buildCredentialInjector and
//     buildBodyCredentialInjector);
//   - filter: filterNetworkRequest's allow-list part (as srt_proxy.mjs);
//   - lookupFor: createResolvedAddressGuard(network) as the manager does, its
//     resolver answering the bench's names from a table (like airlock's
//     --hosts), the allow list carrying the 127.0.0.1 literal so the
//     loopback upstream passes the guard.
// Upstream trust: NODE_EXTRA_CA_CERTS (node reads it at start), as for srt.
//   BENCH_TOKEN=real node srt_tlsterm.mjs SRT_PACKAGE_DIR PORT OUTDIR \
//       NAME=IP[,NAME=IP...] ALLOWED_DOMAIN...
// Writes OUTDIR/srt-ca.pem (the CA the client must trust) and
// OUTDIR/srt-sentinel (what the sandbox would see in BENCH_TOKEN), then
// listens on 127.0.0.1:PORT.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkg, portArg, outDir, hostsArg, ...allowed] = process.argv.slice(2);
const mod = (f) => import(pathToFileURL(path.join(pkg, 'dist/sandbox', f)).href);
const { createHttpProxyServer } = await mod('http-proxy.js');
const { canonicalizeHost, isValidHost } = await mod('parent-proxy.js');
const { matchesDomainPattern, matchesDomainPatternWithPort } = await mod('domain-pattern.js');
const { createMitmCA, disposeMitmCA } = await mod('mitm-ca.js');
const { SentinelRegistry } = await mod('credential-sentinel.js');
const { buildMaskedEnvVars } = await mod('credential-mask-env.js');
const { createResolvedAddressGuard } = await mod('resolved-address-guard.js');

const table = new Map();
for (const kv of hostsArg.split(',')) {
    const [name, ip] = kv.split('=');
    table.set(name.toLowerCase(), ip);
}
const network = { allowedDomains: [...allowed, '127.0.0.1'], deniedDomains: [] };

async function filter(port, host) {
    if (!isValidHost(host)) return false;
    const h = canonicalizeHost(host) ?? host;
    if (network.deniedDomains.some((d) => matchesDomainPatternWithPort(h, port, d))) return false;
    return network.allowedDomains.some((a) => matchesDomainPatternWithPort(h, port, a));
}

const resolve = (hostname, options, cb) => {
    const ip = table.get(hostname.toLowerCase());
    if (!ip) {
        cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
        return;
    }
    cb(null, [{ address: ip, family: 4 }]);
};
const guard = createResolvedAddressGuard({ ...network, resolve });

const mitmCA = createMitmCA({});
const registry = new SentinelRegistry();
const { setEnvVars } = buildMaskedEnvVars(
    [{ name: 'BENCH_TOKEN', mode: 'mask', injectHosts: allowed }],
    allowed,
    registry,
);
fs.copyFileSync(mitmCA.certPath, path.join(outDir, 'srt-ca.pem'));
fs.writeFileSync(path.join(outDir, 'srt-sentinel'), setEnvVars.BENCH_TOKEN);

const server = createHttpProxyServer({
    filter,
    mitmCA,
    shouldTerminateTLS: () => true,
    mutateHeaders: (headers, destHost) =>
        registry.substituteInHeaders(headers, destHost, matchesDomainPattern),
    getBodySubstitutions: (destHost) => registry.sentinelsForHost(destHost, matchesDomainPattern),
    lookupFor: (port) => guard.lookupFor(port),
});
server.listen(Number(portArg), '127.0.0.1');
// the ephemeral CA lives in a temp directory: remove it when stopped
process.on('SIGTERM', async () => {
    await disposeMitmCA(mitmCA);
    process.exit(0);
});
