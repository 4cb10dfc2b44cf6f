/* Listening sockets created inside another network namespace. */
#include "airlock/netproxy.h"

#include "airlock/error.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct open_job {
    int netns_fd;
    uint16_t port;
    int fd;
    int err;
    int errnum;
    const char *what;
};

static void *open_thread(void *arg)
{
    struct open_job *j = arg;
    struct sockaddr_in sin;
    int one = 1;

    /* setns() affects only this thread, which exits right after: the
     * caller's thread never changes namespace. */
    if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0) {
        j->errnum = errno;
        j->what = "setns";
        j->err = errno == EPERM ? AL_EPERM : AL_EIO;
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        j->errnum = errno;
        j->what = "socket";
        j->err = AL_EIO;
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(j->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4096) < 0) {
        j->errnum = errno;
        j->what = "bind/listen 127.0.0.1";
        j->err = AL_EIO;
        close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

int np_listener_open_in_netns(int *out_fd, int netns_fd, uint16_t port)
{
    struct open_job j = {.netns_fd = netns_fd, .port = port, .fd = -1};
    pthread_t t;

    int rc = pthread_create(&t, NULL, open_thread, &j);
    if (rc != 0)
        return al_error_set_errno(AL_EIO, rc, "pthread_create");
    pthread_join(t, NULL);
    if (j.err < 0)
        return al_error_set_errno(j.err, j.errnum, "%s (port %u)", j.what, port);
    *out_fd = j.fd;
    return 0;
}
