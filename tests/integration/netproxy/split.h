/* Test-only: the netproxy key-holder split (docs/netproxy.md, "Processes")
 * run in one process over real sockets: np_proxy_set_keyholder on one end
 * of a SOCK_SEQPACKET pair, a thread on the other end that takes each OPEN
 * and runs np_kh_conn_serve on a thread of its own. What KH-proc's daemon
 * does across two processes. */
#ifndef TEST_NP_SPLIT_H
#define TEST_NP_SPLIT_H

#include "airlock/netproxy.h"
#include "kh_conn.h"

/* Makes the pair, the key holder's sessions and its accept thread, and
 * puts `proxy` in split mode (before any credentials are set). Returns the
 * sessions (give them each session's credentials, CA and trust with
 * np_kh_sessions_put), or NULL with a message on stderr. */
struct np_kh_sessions *test_split_start(np_proxy *proxy);

/* Ends the accept thread (connections end with their front side). */
void test_split_stop(void);

#endif
