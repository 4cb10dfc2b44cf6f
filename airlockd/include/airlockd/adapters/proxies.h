/* The proxy supervisor: airlockd's netproxy and gitproxy, each spawned
 * with a control socket, restarted when it dies, and told about every
 * session (docs/control-protocol.md). Core reaches it through struct
 * ald_hooks (core/hooks.h); the api calls it directly. */
#ifndef ALD_ADAPTERS_PROXIES_H
#define ALD_ADAPTERS_PROXIES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct ald;
struct ald_session;
struct al_netpolicy;

/* Finds the proxy binaries, makes each proxy's HOME (proxies.home_dir) and
 * starts their supervisor threads (each spawns its proxy with a clean
 * environment, re-sends every live session after each start, reads acks
 * and events). A proxy that is not enabled is skipped. Then waits, up to
 * ALD_PX_HELLO_TIMEOUT_S, for each proxy's first hello: a proxy that exits
 * before it (a bad configuration, an unusable cache_dir: its own message
 * is on stderr) fails the start, naming the proxy and its exit status, and
 * the supervisor threads are stopped; one that is only slow is logged and
 * supervised as usual. Later crashes are restarted with backoff. */
#define ALD_PX_HELLO_TIMEOUT_S 15
int ald_px_start(struct ald *d);
/* Closes the control sockets (the proxies exit), reaps them, joins. */
void ald_px_stop(struct ald *d);
/* The ports the sandbox may connect to (NULL/0 without the netproxy). */
size_t ald_px_ports(const struct ald *d, const uint16_t **ports);
/* Creates the session's listeners inside the netns of the init `pid`
 * (retrying while an earlier owner of the ports lets go, up to 5 s) and
 * registers the session with the proxies. With `wait`, returns only once
 * every enabled proxy has acknowledged the session (also when a proxy
 * restarts meanwhile: its re-sent session_add counts), so the session's
 * first request cannot race its registration; fails (no answer
 * within ALD_PX_ACK_TIMEOUT_S: AL_ETIMEOUT) or AL_EIO (refused) with a message saying
 * which proxy. Without `wait` (re-adoption at start) it only sends. */
#define ALD_PX_ACK_TIMEOUT_S 10
int ald_px_session_add(struct ald *d, struct ald_session *s, pid_t init_pid, int wait);
/* Sends session_remove to every proxy and closes the listeners. */
void ald_px_session_remove(struct ald *d, struct ald_session *s);
/* Makes `net` the session's network policy and sends it to the netproxy
 * when the session's listeners are live. 0, AL_ENOMEM (nothing changed) or
 * the send's error. */
int ald_px_session_policy(struct ald *d, struct ald_session *s, const struct al_netpolicy *net);
/* Answers a held netproxy request. */
int ald_px_approve(struct ald *d, struct ald_session *s, const char *aid, const char *verdict);

#endif
