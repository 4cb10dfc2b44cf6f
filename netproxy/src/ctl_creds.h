/* The parts of a control-mode session_add that carry TLS termination and
 * masked credentials (docs/control-protocol.md): "tls" and "credentials".
 * Strict decoders of what airlockd sends; nothing is applied here. */
#ifndef NP_CTL_CREDS_H
#define NP_CTL_CREDS_H

#include <jansson.h>

#include "airlock/credmask.h"

#define NP_CTL_PEM_MAX    (64 * 1024) /* ca_cert, ca_key */
#define NP_CTL_NAME_MAX   128         /* a credential's name */
#define NP_CTL_INJECT_MAX 64          /* inject_hosts of one credential */

/* `tls` (NULL when the message has none): an object holding exactly
 * "ca_cert" and "ca_key", strings of 1..NP_CTL_PEM_MAX bytes without NUL.
 * *cert and *key point into `tls` (NULL when absent). 0 or AL_EINVAL naming
 * the key. */
int np_ctl_tls_decode(const char **cert, const char **key, const json_t *tls);

/* `creds` (NULL when the message has none) into `out` (empty on entry;
 * the caller frees it with al_credset_free(), also on error): an array of
 * at most AL_CRED_MAX objects holding exactly "name" (1..NP_CTL_NAME_MAX
 * printable ASCII), "value" (1..AL_CRED_VALUE_MAX bytes, no NUL),
 * "sentinel" (1..2*AL_CRED_VALUE_MAX bytes, printable ASCII) and
 * "inject_hosts" (1..NP_CTL_INJECT_MAX domain patterns as allowed_domains
 * takes them). Duplicate names are refused. 0, AL_EINVAL naming the entry
 * and key (never quoting a value), AL_ENOMEM. */
int np_ctl_creds_decode(struct al_credset *out, const json_t *creds);

/* The same for the front of a split proxy (docs/netproxy.md, "Processes"),
 * which the key holder forwards session_add to with every "value" removed:
 * each object holds exactly "name", "sentinel" and "inject_hosts" (a
 * "value" is refused: the front must not get one), and each credential of
 * `out` is sentinel-only (its real value is its sentinel, so substituting
 * and re-masking leave bytes as they are; the front knows no value and no
 * value's length). Same returns. */
int np_ctl_creds_decode_front(struct al_credset *out, const json_t *creds);

/* The key holder's forwarding step: wipes (explicit_bzero) and removes the
 * "value" of every object in the array `creds` (NULL or not an array: no-op). */
void np_ctl_creds_strip(json_t *creds);

/* Wipes the secrets a session_add carries (the CA's key, the real values)
 * in the decoded message `msg` before it is freed. */
void np_ctl_msg_wipe(json_t *msg);

#endif
