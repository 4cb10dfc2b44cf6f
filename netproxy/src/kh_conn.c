/* The key holder's side of one terminated connection (kh_conn.h). */
#include "kh_conn.h"

#include "airlock/error.h"

#include <stdlib.h>
#include <unistd.h>

struct np_kh_sessions {
    int unused;
};

int np_kh_sessions_new(struct np_kh_sessions **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : AL_ENOMEM;
}

void np_kh_sessions_free(struct np_kh_sessions *ks)
{
    free(ks);
}

int np_kh_sessions_put(struct np_kh_sessions *ks, const char *session,
                       const struct al_credset *creds, const char *ca_cert_pem,
                       const char *ca_key_pem, const char *extra_trust_pem)
{
    (void)ks;
    (void)session;
    (void)creds;
    (void)ca_cert_pem;
    (void)ca_key_pem;
    (void)extra_trust_pem;
    return al_error_set(AL_EINVAL, "key holder: not built yet");
}

void np_kh_sessions_remove(struct np_kh_sessions *ks, const char *session)
{
    (void)ks;
    (void)session;
}

int np_kh_conn_serve(struct np_kh_sessions *ks, const struct np_kh_msg *open, int pair_fd,
                     int upstream_fd)
{
    (void)ks;
    (void)open;
    close(pair_fd);
    close(upstream_fd);
    return al_error_set(AL_EINVAL, "key holder: not built yet");
}
