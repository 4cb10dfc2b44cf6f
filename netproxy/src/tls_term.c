/* TLS-terminated tunnels: hand-off from the loop and the worker threads. */
#include "internal.h"
#include "tls_ca.h"

#include "airlock/error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

bool np_tt_wanted(struct np_conn *c)
{
    (void)c;
    return false;
}

void np_tt_start(struct np_conn *c)
{
    np_conn_close(c);
}

void np_tt_kill(struct np_proxy *p, struct np_session *s)
{
    (void)p;
    (void)s;
}

void np_tt_wait(struct np_proxy *p)
{
    (void)p;
}

unsigned np_tt_count(struct np_session *s)
{
    return atomic_load(&s->n_workers);
}
