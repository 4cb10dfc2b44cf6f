/* A session's HTTP secrets and its CA (docs/airlockd.md, "HTTP secrets"):
 * the values come from the encrypted credential store, the CA is made for
 * the session; what the session's row keeps holds no value and the CA's
 * key only sealed with the store's master key. Core reaches these through
 * struct ald_hooks (core/hooks.h). */
#ifndef ALD_ADAPTERS_SECRETS_H
#define ALD_ADAPTERS_SECRETS_H

#include <jansson.h>
#include <limits.h>

#include "airlockd/core/fault.h"

#include "airlock/strlist.h"

struct ald;
struct ald_config;
struct ald_session;
struct ald_create_req;

/* The credential store's and its master key's paths, as every reader of the
 * store in airlockd takes them: proxies.credential_store (default
 * <state_dir>/creds.store) and proxies.master_key (default
 * <state_dir>/master.key). AL_ETOOBIG when one does not fit PATH_MAX. */
int ald_secrets_store_paths(const struct ald_config *c, char store[PATH_MAX], char key[PATH_MAX]);

/* Fills s->creds for a new session: nothing when req has no credentials
 * and its network policy no tls_terminate. Otherwise opens the credential
 * store (proxies.credential_store, proxies.master_key), finds each
 * credential's HTTP secret (400 `invalid_value` naming
 * credentials[i].secret when there is none), checks each of its injectHosts
 * against the secret's stored hosts (403 `forbidden` naming
 * credentials[i].injectHosts[j] when none covers it), makes each sentinel
 * (credmask.h), a session CA (np_ca_generate) and seals its key. On error
 * s->creds is left empty and `f` says why. */
int ald_secrets_prepare(struct ald *d, struct ald_session *s, const struct ald_create_req *req,
                        struct ald_fault *f);

/* Fills s->creds of a re-adopted session from its row's `rec`: the CA key
 * unsealed, each secret's value read again from the store with its stored
 * sentinel (the sandbox's environment does not change). A secret removed
 * from the store since is left out (its sentinel is then never replaced),
 * an inject host its stored hosts no longer cover is dropped; both logged.
 * AL_E* when the CA cannot be restored (s->creds then empty). */
int ald_secrets_load(const struct ald *d, struct ald_session *s, json_t *rec);

/* Writes the files by which the sandbox of `s` (which has a CA) trusts it
 * into the session's directory `dir` (np_trust_files_write: ca.pem,
 * ca-bundle.pem with the CAs of the sandbox's root, the host's or
 * d->cfg->rootfs, and truststore.p12), and appends their binds to `src`
 * and `dst`: host file src[i] read-only at dst[i] in the sandbox, the same
 * paths as `airlock run` gives (/run/airlock/..., and the bundle over each
 * distribution bundle path the root has). The files stay with the session's
 * directory, so a re-adopted sandbox keeps what it was built with. 0 or
 * AL_E* with al_error_last() set. */
int ald_secrets_trust_files(const struct ald *d, const struct ald_session *s, const char *dir,
                            struct al_strlist *src, struct al_strlist *dst);

#endif
