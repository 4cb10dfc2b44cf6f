/* Test-only: the key-holder split in one process (split.h). */
#include "split.h"

#include "airlock/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_conns[2] = {-1, -1};
static struct np_kh_sessions *g_ks;
static pthread_t g_accept;
static bool g_running;

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int rc = np_kh_accept_one(g_ks, g_conns[1], -1);
        if (rc == 1 || rc == AL_EIO)
            break; /* the front is gone */
    }
    return NULL;
}

struct np_kh_sessions *test_split_start(np_proxy *proxy)
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, g_conns) < 0 ||
        np_kh_sessions_new(&g_ks) < 0 || np_proxy_set_keyholder(proxy, g_conns[0]) < 0 ||
        pthread_create(&g_accept, NULL, accept_main, NULL) != 0) {
        fprintf(stderr, "split: %s\n", al_error_last());
        return NULL;
    }
    g_running = true;
    fprintf(stderr, "split: key holder running in this process\n");
    return g_ks;
}

void test_split_stop(void)
{
    if (!g_running)
        return;
    shutdown(g_conns[0], SHUT_RDWR);
    pthread_join(g_accept, NULL);
    g_running = false;
}
