/* Session CA for TLS termination: the CA of one session, the leaf
 * certificates it mints per host (cached as ready SSL_CTXs), and the
 * upstream (client-side) SSL_CTX with the session's trust anchors.
 *
 * A struct np_tls is reference-counted: the session holds one reference,
 * every terminated connection (tls_term.c) holds one while it runs, so a
 * session's CA can be replaced or removed while connections still use the
 * old one. Every function here is thread-safe. */
#ifndef NP_TLS_CA_H
#define NP_TLS_CA_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#define NP_TLS_LEAF_CACHE 256 /* server SSL_CTXs (one per host) kept per session */
#define NP_TLS_SAN_MAX    300 /* "DNS:" + host */
#define NP_TLS_SESS_CACHE 64  /* upstream TLS sessions (one per upstream) kept per session */

struct np_tls;

/* Parses and checks a session CA (PEM certificate and key: the key must
 * match, the certificate must be a CA) and the extra upstream trust anchors
 * (PEM bundle, may be NULL or empty), and makes the session's leaf key and
 * upstream SSL_CTX. Returns 0 and *out (one reference), AL_EINVAL with
 * al_error_last() naming the problem, AL_ENOMEM or AL_EIO. */
int np_tls_new(struct np_tls **out, const char *ca_cert_pem, const char *ca_key_pem,
               const char *extra_trust_pem);

void np_tls_ref(struct np_tls *t);
/* Drops one reference; the last one frees everything (keys wiped by
 * OpenSSL's EVP_PKEY_free). NULL is a no-op. */
void np_tls_unref(struct np_tls *t);

/* Returns an SSL_CTX (caller frees it with SSL_CTX_free) that presents a
 * leaf certificate for `host` (a normalised name, or an IP literal's text
 * when `is_ip`), signed by the session CA, with ALPN http/1.1 only. Minted
 * on first use and cached (LRU, NP_TLS_LEAF_CACHE per session). NULL with
 * al_error_last() set on failure. */
SSL_CTX *np_tls_server_ctx(struct np_tls *t, const char *host, bool is_ip);

/* The SSL_CTX for connections to upstreams (caller frees with SSL_CTX_free):
 * TLS >= 1.2, peer verification on against the default trust paths plus the
 * session's extra anchors, ALPN http/1.1. The caller sets the host to check
 * (SSL_set1_host or the IP) per connection. */
SSL_CTX *np_tls_client_ctx(struct np_tls *t);

/* For an SSL made from np_tls_client_ctx(t) before its handshake: offers the
 * last session an upstream with the same `key` gave (resumption), and has
 * the sessions this connection receives kept under `key`. `key` names the
 * upstream exactly as it is verified ("dns:" host or "ip:" address, then
 * ":" port) and must outlive ssl. A session is only kept from a connection
 * whose peer passed verification, and a resumed connection keeps that
 * session's verified peer, so a key never resumes a session verified for
 * another name. 0, or AL_ENOMEM. */
int np_tls_client_session(struct np_tls *t, SSL *ssl, const char *key);

/* Mints a leaf certificate for `host` signed by the session CA (exposed for
 * tests). NULL on failure. The caller frees it with X509_free. */
X509 *np_tls_leaf_mint(struct np_tls *t, const char *host, bool is_ip);

#endif
