/* airlock egress proxy (library).
 *
 * One np_proxy serves any number of listeners. Each listener belongs to one
 * session: the proxy knows a connection's session by the listener that
 * accepted it, so no header or token is needed. A listener is an HTTP proxy
 * (absolute-form requests and CONNECT) or a SOCKS5 proxy (no-auth, CONNECT).
 *
 * Every request is decided in this order:
 *   1. the target is parsed; malformed requests get 400/431/501/505;
 *   2. the session's policy: deniedDomains, then allowedDomains (plus the
 *      hosts the approver allowed for this session), else the approver (when
 *      one is set and the policy's strict_allowlist is not; the connection
 *      is held until it answers or the hold timeout passes), else denied
 *      (with strict_allowlist: decision log rule "strictAllowlist"). IP-literal targets match only
 *      allowedAddresses;
 *   3. DNS off the event loop (override table first), then every answer goes
 *      through the SSRF guard (loopback, private, link-local, CGNAT,
 *      multicast, reserved, IPv4-in-IPv6 forms ...) unless allowedAddresses
 *      covers it; the first address that passes is dialled, and only that
 *      address (no second lookup, so DNS rebinding cannot switch it);
 *   4. for CONNECT with require_sni_match, a TLS ClientHello's SNI must equal
 *      the CONNECT host.
 * Denials: HTTP 403 with "X-Airlock-Error: blocked-by-policy|blocked-address|
 * needs-approval-timeout|sni-mismatch" and a one-line body; SOCKS5 reply 0x02.
 * DNS failure 502, connect failure 502, connect timeout 504, limits 429.
 * Every request or tunnel ends with one JSON line in the decision log.
 *
 * Threads: np_proxy_run() runs the event loop on the calling thread. Every
 * other function here may be called from any thread, before or while the
 * loop runs, except np_proxy_free() (after np_proxy_run() returned).
 *
 * Typical embedding (airlock run):
 *     struct np_config cfg;
 *     np_config_init(&cfg);
 *     np_proxy *p;
 *     np_proxy_new(&p, &cfg);
 *     np_proxy_set_policy(p, "s1", &policy);      // policy is copied
 *     np_listener_open_in_netns(&fd, netns_fd, AL_PORT_HTTP_PROXY);
 *     np_proxy_add_listener(p, fd, NP_HTTP, "s1"); // fd now owned by p
 *     pthread_create(..., np_proxy_run, p) ...;
 *     ... np_proxy_stop(p); pthread_join(...); np_proxy_free(p);
 */
#ifndef AIRLOCK_NETPROXY_H
#define AIRLOCK_NETPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/credmask.h"
#include "airlock/netpolicy.h"
#include "airlock/strlist.h"

typedef struct np_proxy np_proxy;

enum np_kind {
    NP_HTTP = 1,   /* HTTP proxy: absolute-form + CONNECT */
    NP_SOCKS5 = 2, /* SOCKS5, no authentication, CONNECT only */
    NP_RELAY = 3,  /* raw byte relay to one fixed address, no policy (the
                      user's own filtering proxy); see np_proxy_add_relay_listener() */
};

/* What an approver answers. */
enum np_verdict {
    NP_VERDICT_DENY = 0,
    NP_VERDICT_ALLOW_ONCE = 1,    /* this connection only */
    NP_VERDICT_ALLOW_SESSION = 2, /* host:port allowed for the rest of the session */
    NP_VERDICT_ALLOW_ALWAYS = 3,  /* same as SESSION for the proxy; the embedder
                                     persists it (settings.local.json) */
};

#define NP_DNS_SERVERS_MAX 3 /* as many as a resolv.conf holds */

struct np_config {
    unsigned connect_timeout_ms;    /* dial deadline (default 10000) -> 504 */
    unsigned idle_timeout_ms;       /* no bytes either way (default 300000) */
    unsigned header_timeout_ms;     /* whole request head / SOCKS handshake must
                                       arrive within this (default 10000) -> 408 */
    unsigned approval_timeout_ms;   /* hold for the approver (default 60000) */
    unsigned max_conns_per_session; /* open client connections (default 512) -> 429 */
    unsigned resolver_threads;      /* resolver threads (default 4) */
    /* DNS servers to ask, in order: "IPv4", "IPv4:PORT", "IPv6" or
     * "[IPv6]:PORT" (port default 53); unused slots NULL. All NULL (the
     * default): getaddrinfo() with the system configuration. Read by
     * np_proxy_new() only (the strings need not outlive it). */
    const char *dns_servers[NP_DNS_SERVERS_MAX];
    int hosts_only; /* 1: names not in the override table fail
                       with a DNS error (tests; default 0) */
    int log_fd;     /* decision log, one JSON line per request;
                       -1 = none (default). Not closed by the proxy. */
    /* key path of the network block named in refusal messages ("add \"HOST\"
     * to sandbox.network.allowedDomains"): "sandbox.network" (the default)
     * or "network" for a sandbox-runtime settings file */
    char settings_key[16];
};

/* Fills `cfg` with the defaults above. */
void np_config_init(struct np_config *cfg);

/* Creates a proxy. Returns 0 and *out (free with np_proxy_free()), or
 * AL_EINVAL (a bad dns_servers entry), AL_ENOMEM / AL_EIO with
 * al_error_last() set. */
int np_proxy_new(np_proxy **out, const struct np_config *cfg);

/* Adds a hosts-style override: lookups of `name` (case-insensitive, trailing
 * dot ignored) answer `addrs` (comma-separated IP literals) instead of DNS.
 * Calling it again for the same name adds another answer; successive lookups
 * then rotate through the answers (tests use this to model DNS rebinding).
 * Returns 0 or AL_EINVAL / AL_ENOMEM. */
int np_proxy_add_host_override(np_proxy *proxy, const char *name, const char *addrs);

/* Sets (or replaces) the network policy of `session_id` (computed by the
 * settings loader: struct al_policy.net); it is copied. A session without a policy denies
 * everything. Returns 0, AL_ENOMEM, or AL_EINVAL for a bad allowedAddresses
 * entry (al_error_last() names it). Existing tunnels are not re-checked;
 * every later request is. */
int np_proxy_set_policy(np_proxy *proxy, const char *session_id, const struct al_netpolicy *policy);

/* Removes a session: its listeners are closed and its connections dropped at
 * the next loop iteration. Returns 0 or AL_ENOTFOUND. */
int np_proxy_remove_session(np_proxy *proxy, const char *session_id);

/* Adds a listening socket (already bound and listening, e.g. made by
 * np_listener_open_in_netns()). The proxy owns `listen_fd` from this call on,
 * also on failure. Returns 0, AL_EINVAL or AL_ENOMEM. */
int np_proxy_add_listener(np_proxy *proxy, int listen_fd, enum np_kind kind,
                          const char *session_id);

/* Adds a listening socket whose connections are relayed, byte for byte
 * and without any policy, to `target` ("IPv4:PORT" or "[IPv6]:PORT"): each
 * accepted connection dials the target, and once it is up both directions
 * are spliced until both are closed. This is how `airlock run` hands the
 * sandbox's HTTP and SOCKS5 listeners (airlock/ports.h) to an external
 * filtering proxy on the host (httpProxyPort/socksProxyPort): that proxy
 * decides, this one only carries bytes. A target that cannot be reached
 * closes the client connection and logs decision "deny", reason
 * "connect-failure". The proxy owns `listen_fd` from this call on, also on
 * failure. Returns 0, AL_EINVAL (bad target) or AL_ENOMEM. */
int np_proxy_add_relay_listener(np_proxy *proxy, int listen_fd, const char *target,
                                const char *session_id);

/* An approval request handed to the approver. Valid until answered with
 * np_proxy_approve() (or until it times out; answering after that is a
 * harmless no-op). */
struct np_approval {
    uint64_t id;
    const char *session_id;
    const char *host; /* normalised: lower case, punycode, no trailing dot */
    uint16_t port;
};

/* Called on the loop thread when a host is in neither list. It must not
 * block: it records the request and returns; the answer comes later through
 * np_proxy_approve(), from any thread. The strings in `req` are valid only
 * during the call (copy them). */
typedef void (*np_approver_fn)(const struct np_approval *req, void *payload);

/* Sets the approver (NULL: hosts in neither list are denied). */
void np_proxy_set_approver(np_proxy *proxy, np_approver_fn fn, void *payload);

/* One finished decision, as written to the decision log. */
struct np_decision {
    const char *session_id;
    const char *client; /* "ip:port" */
    const char *proxy;  /* "http", "connect", "socks5", "relay" */
    const char *host;   /* normalised target, "" when invalid */
    uint16_t port;
    const char *addr;       /* address dialled (or refused), "" when none */
    const char *addr_class; /* class of a refused address ("private",
                               "loopback", ...), "" otherwise */
    const char *decision;   /* "allow", "deny", "abort", "would-deny" (reportOnly) */
    const char *reason;     /* "allowed-domain", "blocked-by-policy", ... */
    const char *rule;       /* entry that decided, "" when none */
    const char *detail;     /* the one-line message given to the client, "" when none */
    int status;             /* HTTP status or SOCKS5 reply of a refusal; 0 when allowed;
                               for a terminated or plain HTTP request the upstream's status */
    /* one request inside a terminated tunnel, or a plain HTTP request ("" when
     * not known): method, normalised path (no query), and the credentials
     * replaced in it or refused ("GITHUB_TOKEN" or "A,B"; names, never values) */
    const char *method;
    const char *path;
    const char *credential;
    uint64_t bytes_up, bytes_down;
};

/* Called for every request or tunnel when it ends (or at once when
 * refused), whether or not a log fd is set; an embedder can use it to print
 * a line per refusal (`airlock run` reads the decision log instead). It must
 * not block. It runs on the loop thread, and also on the worker threads of
 * TLS-terminated connections (one line per request inside them, proxy
 * "https"); calls are serialised by a mutex (never two at once), but the
 * hook must not call back into the proxy.
 * The strings are valid only during the call. NULL removes the hook. */
typedef void (*np_decision_fn)(const struct np_decision *d, void *payload);
void np_proxy_set_decision_hook(np_proxy *proxy, np_decision_fn fn, void *payload);

/* Answers approval `id`. Thread-safe. Returns 0 (also when the request has
 * timed out meanwhile) or AL_ENOMEM. */
int np_proxy_approve(np_proxy *proxy, uint64_t id, enum np_verdict verdict);

/* Runs the event loop until np_proxy_stop(). Returns 0, or a negative code
 * on a fatal loop error. Connections still open are closed on return. */
int np_proxy_run(np_proxy *proxy);

/* Makes np_proxy_run() return soon. Thread- and async-signal-safe. */
void np_proxy_stop(np_proxy *proxy);

/* TLS termination (issue 15; docs/netproxy.md, "TLS termination and masked
 * credentials"). Each terminated connection is served by its own worker
 * thread; np_proxy_remove_session() shuts their sockets down, np_proxy_run()
 * does so for all of them when it returns, np_proxy_free() waits for them.
 * A session whose policy has tls_terminate gets
 * every CONNECT and SOCKS5 tunnel, except to tls_exclude hosts, terminated:
 * the sandbox's TLS ends in the proxy with a leaf certificate for the host
 * made by the session CA (cached per host), the proxy opens its own TLS
 * connection upstream, verified against the host's trust store (OpenSSL's
 * default paths; SSL_CERT_FILE / SSL_CERT_DIR in the proxy's environment
 * replace them) plus `extra_trust_pem`, and every HTTP/1.1 request on it is
 * checked (request rules, credentials) and logged like a plain HTTP one. An
 * upstream certificate error is answered 502 "X-Airlock-Error:
 * upstream-certificate" with the reason.
 *
 * Makes a new session CA: EC P-256 key, self-signed, CA:TRUE, pathlen 0,
 * valid from one hour ago for 30 days, subject "CN=`common_name`".
 * Returns 0 and *cert_pem / *key_pem (NUL-terminated PEM; caller frees, and
 * wipes the key) or AL_ENOMEM / AL_EIO. */
int np_ca_generate(char **cert_pem, char **key_pem, const char *common_name);

/* How a sandbox trusts its session CA (docs/netproxy.md, "Which clients
 * trust the session CA"): the same files at the same paths and the same
 * variables for `airlock run` and airlockd's sessions. The certificate
 * alone, a bundle of it with the root's CAs, and a Java truststore of that
 * bundle, under NP_TRUST_DIR inside the sandbox. */
#define NP_TRUST_DIR          "/run/airlock"
#define NP_TRUST_CA_PEM       NP_TRUST_DIR "/ca.pem"
#define NP_TRUST_BUNDLE       NP_TRUST_DIR "/ca-bundle.pem"
#define NP_TRUST_P12          NP_TRUST_DIR "/truststore.p12"
#define NP_TRUST_P12_PASSWORD "changeit" /* Java's well-known default */

/* The variables that point the usual clients at those files (all but
 * JAVA_TOOL_OPTIONS, see np_trust_java_options): SSL_CERT_FILE,
 * REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO at the bundle,
 * NODE_EXTRA_CA_CERTS at the CA alone (Node adds it to its own roots). */
struct np_trust_var {
    const char *name;
    const char *value;
};
extern const struct np_trust_var np_trust_vars[];
extern const size_t np_trust_n_vars;

/* A PKCS#12 truststore holding every certificate of the PEM bundle
 * (`pem_bundle`, `len` bytes; blocks that are not certificates are
 * skipped) as a trusted certificate entry for Java: each certificate bag
 * carries the JDK's trusted-key-usage attribute (OID
 * 2.16.840.1.113894.746875.1.1) set to anyExtendedKeyUsage and a friendly
 * name, "airlock-session-ca" for the first, "ca-N" after; certificates
 * unencrypted, integrity MAC (SHA-256) with `password`. Returns 0 and *out
 * (DER, *out_len bytes; caller frees with free()), AL_EINVAL when the
 * input holds no certificate or a malformed one (al_error_last() names
 * which), AL_ETOOBIG or AL_ENOMEM. */
int np_trust_p12(const char *pem_bundle, size_t len, const char *password, unsigned char **out,
                 size_t *out_len);

/* The sandbox's bundle: `ca_pem`, then the first distribution bundle that
 * exists under `root` (NULL or "" = the host's root; the rootfs of the
 * sandbox otherwise): /etc/ssl/certs/ca-certificates.crt,
 * /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem, then `extra_pem`
 * (NULL = none). Returns 0 and *out (NUL-terminated, *out_len bytes;
 * caller frees), AL_EIO (a bundle that exists cannot be read; named in
 * al_error_last()), AL_ETOOBIG or AL_ENOMEM. */
int np_trust_bundle(char **out, size_t *out_len, const char *ca_pem, const char *root,
                    const char *extra_pem);

/* The files np_trust_files_write made, and where each goes: host file
 * src.items[i] is bound read-only at dst.items[i] in the sandbox. */
struct np_trust_files {
    struct al_strlist src, dst;
};

/* Writes ca.pem (`ca_pem`), ca-bundle.pem (np_trust_bundle) and
 * truststore.p12 (np_trust_p12 of the bundle, NP_TRUST_P12_PASSWORD) into
 * the existing directory `dir` (new files, mode 0444; none may exist), and
 * fills `out` with their binds: at NP_TRUST_CA_PEM, NP_TRUST_BUNDLE and
 * NP_TRUST_P12, and the bundle over each distribution bundle path that
 * exists under `root` as well, at its real path inside that root (a
 * symbolic link that leaves the root is not followed: that path is left
 * alone). Returns 0, or a negative code with al_error_last() set; `out` is
 * then empty. The caller frees `out` with np_trust_files_free() and removes
 * the files with its directory. */
int np_trust_files_write(struct np_trust_files *out, const char *dir, const char *root,
                         const char *ca_pem, const char *extra_pem);
void np_trust_files_free(struct np_trust_files *files);

/* JAVA_TOOL_OPTIONS for a sandbox: `existing` (NULL or "" = none; e.g. the
 * proxy properties of airlock/proxy_env.h) followed by the truststore's
 * -Djavax.net.ssl.trustStore, -Djavax.net.ssl.trustStoreType=PKCS12 and
 * -Djavax.net.ssl.trustStorePassword. Returns 0 with `out` (size `size`)
 * NUL-terminated, or AL_ETOOBIG (out then ""). */
int np_trust_java_options(char *out, size_t size, const char *existing);

/* Gives `session_id` its CA (PEM strings, copied; the key must match the
 * certificate and the certificate must be a CA) and extra upstream trust
 * anchors (PEM bundle or NULL). Needed before a tls_terminate policy can be
 * enforced: without it a terminated session's tunnels are refused (502,
 * "X-Airlock-Error: tls-not-configured"). Returns 0, AL_EINVAL (bad PEM,
 * key/cert mismatch, not a CA; al_error_last() says which) or AL_ENOMEM. */
int np_proxy_set_tls(np_proxy *proxy, const char *session_id, const char *ca_cert_pem,
                     const char *ca_key_pem, const char *extra_trust_pem);

/* Sets (or replaces) the masked credentials of `session_id` (deep-copied).
 * A sentinel bound for a host outside its inject_hosts is refused with 403
 * "X-Airlock-Error: credential-not-allowed-here"; the decision names the
 * credential (reason "credential-not-allowed-here"). Returns 0 or
 * AL_ENOMEM. */
int np_proxy_set_credentials(np_proxy *proxy, const char *session_id,
                             const struct al_credset *creds);

/* Splits the proxy (docs/netproxy.md, "Processes"): from now on every
 * terminated tunnel's upstream half goes to the key holder over `conns_fd`
 * (a SOCK_SEQPACKET socket; per tunnel an OPEN message with the dialled
 * upstream socket and one end of a new channel pair, kh_wire.h), and this
 * process keeps no credential value: credential sets given afterwards keep
 * only each credential's name, sentinel and inject_hosts (the values go to
 * the key holder, np_kh_sessions_put). `conns_fd` stays the caller's (it
 * must outlive the proxy). Without it (airlock run, the embedder) the
 * upstream half runs in-process. Call before np_proxy_run() and before any
 * np_proxy_set_credentials(). Returns 0 or AL_EINVAL (conns_fd < 0, or a
 * session has credentials already). */
int np_proxy_set_keyholder(np_proxy *proxy, int conns_fd);

/* Frees the proxy, its listeners and connections. Not while running. */
void np_proxy_free(np_proxy *proxy);

/* Creates a TCP socket bound to 127.0.0.1:port and listening, inside the
 * network namespace `netns_fd` (an open /proc/PID/ns/net), without changing
 * the calling thread's namespace: the work happens in a short-lived thread
 * that setns()es and exits. netns_fd < 0 means the current namespace.
 * Returns 0 and *out_fd (the caller owns it; non-blocking, close-on-exec), or
 * AL_EIO / AL_EPERM with al_error_last() set. */
int np_listener_open_in_netns(int *out_fd, int netns_fd, uint16_t port);

#endif
