/* Masked credentials and TLS termination for `airlock run` (issue 15).
 *
 * The sandbox gets sentinels, never secrets: a credentials.envVars entry
 * with mode "mask" whose variable is set in airlock's own environment is
 * passed in as its sentinel (no --pass-env needed; --pass-env of it is
 * refused); a credentials.files entry with mode "mask" is read here, as the
 * user, and a copy with every secret replaced by its sentinel is bound
 * read-only over the real path. The real values stay in this process (the
 * in-process egress proxy, np_proxy_set_credentials), which puts them back
 * only in TLS-terminated requests to each credential's injectHosts.
 *
 * With network.tlsTerminate, the session CA (made here, or the operator's
 * caCertPath/caKeyPath) goes to the proxy with its key; the sandbox gets
 * the certificate alone and the files and variables of
 * np_trust_files_write() and np_trust_vars (netproxy.h: the same as
 * airlockd's sessions): /run/airlock/ca.pem, a bundle of it, the host's CAs
 * and extraCaCertPaths (/run/airlock/ca-bundle.pem, also bound over the
 * distribution bundle paths that exist on the host), a PKCS#12 truststore
 * for Java (/run/airlock/truststore.p12, password "changeit", through
 * JAVA_TOOL_OPTIONS). The key is never written to any file.
 *
 * Generated files live in a private directory of airlock's (mode 0700,
 * under $XDG_RUNTIME_DIR or /tmp, neither visible in the sandbox), removed
 * by run_creds_free(). */
#ifndef AIRLOCK_RUN_CREDS_H
#define AIRLOCK_RUN_CREDS_H

#include <limits.h>

#include "airlock/credmask.h"
#include "airlock/netproxy.h"
#include "airlock/sandbox.h"
#include "airlock/settings.h"
#include "airlock/strlist.h"

struct run_creds {
    struct al_credset set; /* real values: wiped by run_creds_free() */
    char dir[PATH_MAX];    /* the private directory; "" = none made */
    char *ca_cert;         /* session CA certificate (PEM), NULL without
                              tlsTerminate */
    char *ca_key;          /* its key (PEM): memory only, wiped */
    char *extra_trust;     /* extraCaCertPaths' contents, NULL = none */
    struct al_strlist bind_src, bind_dst;
    struct sb_file_bind *binds; /* bind_src[i] over bind_dst[i] */
    size_t n_binds;
};

/* Makes the credential set, the masked file copies and (when `networked`
 * and the policy has tls_terminate) the session CA and the files the
 * sandbox trusts it by; adds the sentinels and the CA variables to `env`
 * (airlock's own, replacing a --pass-env'd one of the same name with a
 * warning), and adds each masked file's real path to policy->deny_read (so
 * a sandbox built without mounts, the weaker mode, cannot read it either).
 * A masked variable that is not set, or a masked file that does not exist,
 * gets a warning line and nothing else. Prints "airlock: ..." and returns a
 * negative code on error; run_creds_free() cleans up either way. */
int run_creds_prepare(struct run_creds *rc, struct al_policy *policy, struct al_strlist *env,
                      int networked);

/* Hands the CA and the credentials to the proxy, for session `session`.
 * Prints "airlock: ..." and returns a negative code on error. */
int run_creds_apply(const struct run_creds *rc, np_proxy *proxy, const char *session);

/* Wipes the secrets, frees everything and removes the private directory. */
void run_creds_free(struct run_creds *rc);

#endif
