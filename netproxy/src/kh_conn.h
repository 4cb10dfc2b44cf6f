/* The key holder's side of the netproxy privilege split (docs/netproxy.md,
 * "Processes"): the sessions' credential sets WITH their real values, and
 * the upstream half of one terminated connection driven over its channel
 * (kh_wire.h). The front (tls_term.c with np_proxy_set_keyholder) holds no
 * value; everything that writes a value upstream is here. */
#ifndef NP_KH_CONN_H
#define NP_KH_CONN_H

#include <stdbool.h>

#include "airlock/credmask.h"
#include "kh_wire.h"

/* The key holder's per-session state: each session's credential set WITH
 * values (and each credential's inject_hosts matcher), its upstream TLS
 * context (trust store + the session's extra anchors) and session-
 * resumption cache. Thread-safe (connections run on their own threads and
 * hold a reference to the entry they use, so a replaced or removed entry
 * lives until its last connection ends). */
struct np_kh_sessions;

/* 0 and *out, or AL_ENOMEM. */
int np_kh_sessions_new(struct np_kh_sessions **out);

/* Frees every entry (values wiped); connections still running keep their
 * entry until they end. NULL is a no-op. */
void np_kh_sessions_free(struct np_kh_sessions *ks);

/* Sets (or replaces) the entry of `session` (1..NP_KH_SESSION_MAX bytes):
 * `creds` (deep-copied, values included; NULL or empty: none), and the
 * session's CA (`ca_cert_pem`, `ca_key_pem`: as session_add's "tls" gives
 * them; the key holder uses them only to build the upstream context as the
 * one-process proxy does) and extra upstream trust anchors
 * (`extra_trust_pem`, NULL: none). All strings are borrowed. A previous
 * entry's values are wiped once its last connection ends. Returns 0,
 * AL_EINVAL (bad PEM, session name; al_error_last() says which), AL_ENOMEM. */
int np_kh_sessions_put(struct np_kh_sessions *ks, const char *session,
                       const struct al_credset *creds, const char *ca_cert_pem,
                       const char *ca_key_pem, const char *extra_trust_pem);

/* Whether `session` allows a value on plain HTTP (its policy's
 * allowPlaintextInject): an OPEN without NP_KH_OPEN_TLS is served only
 * then (the value goes to whatever address the front's socket reaches: the
 * user asked for plaintext). Off after np_kh_sessions_put. Returns 0 or
 * AL_ENOTFOUND. */
int np_kh_sessions_set_plaintext(struct np_kh_sessions *ks, const char *session, bool allow);

/* Drops the entry of `session` (values wiped when its last connection
 * ends) and ends its running connections (their upstream sockets and
 * channels are shut down). Unknown names are ignored. */
void np_kh_sessions_remove(struct np_kh_sessions *ks, const char *session);

/* Serves one connection: `open` is the OPEN already received (decoded,
 * from the front), pair_fd / upstream_fd its two descriptors (SCM_RIGHTS:
 * fds[1] the channel, fds[0] the upstream socket the front dialled), owned
 * by the callee from here and closed on return. Blocking: run it on a
 * thread of its own. The key holder trusts nothing the front says beyond
 * the OPEN host and port: its own inject mask for them (from its own set),
 * the upstream certificate verified for the OPEN host before any value is
 * written, the request head checked (np_kh_req_head), responses re-masked,
 * re-dials to getpeername(upstream_fd) only. A lying or malformed front
 * ends this connection only. Returns 0 when the connection ended normally,
 * or an AL_* code saying why it was ended (al_error_last()). */
int np_kh_conn_serve(struct np_kh_sessions *ks, const struct np_kh_msg *open, int pair_fd,
                     int upstream_fd);

/* Takes one message from the front's connections socket `conns_fd` (wait
 * at most timeout_ms, -1: no limit) and, for an OPEN with its two
 * descriptors, runs np_kh_conn_serve on a detached thread of its own (the
 * thread owns the descriptors). A malformed message or one that is not an
 * OPEN is dropped (its descriptors closed) and 0 returned: the
 * connections socket stays usable. Returns 0; 1 when the front closed the
 * socket; AL_ETIMEOUT; AL_EIO (the socket broke: the front is gone);
 * AL_ENOMEM. For a caller's own loop (poll conns_fd, then call this). */
int np_kh_accept_one(struct np_kh_sessions *ks, int conns_fd, int timeout_ms);

#endif
