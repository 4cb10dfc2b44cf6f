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

struct job {
    struct np_kh_msg open;
    int pair_fd, upstream_fd;
};

static void *conn_main(void *arg)
{
    struct job *j = arg;
    if (np_kh_conn_serve(g_ks, &j->open, j->pair_fd, j->upstream_fd) < 0)
        fprintf(stderr, "key holder: connection ended: %s\n", al_error_last());
    free(j);
    return NULL;
}

static void *accept_main(void *arg)
{
    uint8_t *buf = malloc(NP_KH_MSG_MAX);
    (void)arg;
    while (buf) {
        struct np_kh_msg m;
        int fds[2];
        size_t nfds = 0;
        int rc = np_kh_recv(&m, g_conns[1], buf, NP_KH_FROM_FRONT, fds, &nfds, -1);
        if (rc == 1 || rc == AL_EIO)
            break; /* the front is gone */
        if (rc < 0)
            continue; /* a malformed message: dropped (its descriptors closed) */
        if (m.type != NP_KH_OPEN) {
            for (size_t i = 0; i < nfds; i++)
                close(fds[i]);
            continue;
        }
        struct job *j = calloc(1, sizeof(*j));
        pthread_t t;
        pthread_attr_t attr;
        if (!j) {
            close(fds[0]);
            close(fds[1]);
            continue;
        }
        j->open = m;
        j->open.data = NULL;
        j->upstream_fd = fds[0];
        j->pair_fd = fds[1];
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, conn_main, j) != 0) {
            close(fds[0]);
            close(fds[1]);
            free(j);
        }
        pthread_attr_destroy(&attr);
    }
    free(buf);
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
