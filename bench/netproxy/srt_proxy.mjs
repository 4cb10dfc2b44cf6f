// sandbox-runtime's HTTP proxy (the one `srt` starts for a sandbox), run
// standalone for bench/netproxy: its createHttpProxyServer() with a filter
// that does what srt's filterNetworkRequest() does for a plain allow list
// (isValidHost, canonicalizeHost, deniedDomains then allowedDomains with
// matchesDomainPatternWithPort). No MITM, no parent proxy, no auth token:
// srt's default configuration.
//   node srt_proxy.mjs SRT_PACKAGE_DIR PORT ALLOWED_DOMAIN...
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkg, portArg, ...allowed] = process.argv.slice(2);
const mod = (f) => import(pathToFileURL(path.join(pkg, 'dist/sandbox', f)).href);
const { createHttpProxyServer } = await mod('http-proxy.js');
const { canonicalizeHost, isValidHost } = await mod('parent-proxy.js');
const { matchesDomainPatternWithPort } = await mod('domain-pattern.js');
const denied = [];

async function filter(port, host) {
    if (!isValidHost(host)) return false;
    const h = canonicalizeHost(host) ?? host;
    if (denied.some((d) => matchesDomainPatternWithPort(h, port, d))) return false;
    return allowed.some((a) => matchesDomainPatternWithPort(h, port, a));
}

const server = createHttpProxyServer({ filter });
server.listen(Number(portArg), '127.0.0.1');
