/* The command's own terminal (sb_config.pty_stdio): a pseudo-terminal
 * opened from the sandbox's private devpts, never the caller's terminal.
 * The master goes back to the caller (airlock's relay) over a unix socket;
 * the slave becomes the command's controlling terminal. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Sends `fd` with the one byte 'p' on `sock`. */
static int send_master(int sock, int fd)
{
    char byte = 'p';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        return al_error_set_errno(AL_EIO, errno, "send the terminal to airlock");
    return 0;
}

/* Opens a new pty from this mount namespace's devpts: master in *master,
 * slave (no controlling terminal yet) in *slave, both CLOEXEC. */
static int pty_open(int *master, int *slave)
{
    /* /dev/pts/ptmx first: in the sandbox /dev/ptmx is a link to it; in
     * the weaker mode /dev/ptmx is the host's node, which Landlock leaves
     * read-only. */
    static const char *const ptmx[] = {"/dev/pts/ptmx", "/dev/ptmx"};
    int m = -1, e = ENOENT;
    for (size_t i = 0; i < sizeof(ptmx) / sizeof(*ptmx) && m < 0; i++) {
        m = open(ptmx[i], O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
            e = errno;
    }
    if (m < 0)
        return al_error_set_errno(AL_EIO, e, "open /dev/pts/ptmx");
    int unlock = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) < 0) {
        e = errno;
        close(m);
        return al_error_set_errno(AL_EIO, e, "unlock the terminal");
    }
    /* The peer of this very master, not a name looked up again. */
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        e = errno;
        close(m);
        return al_error_set_errno(AL_EIO, e, "open the terminal's slave");
    }
    *master = m;
    *slave = s;
    return 0;
}

int sb_pty_attach(const struct sb_config *cfg)
{
    int master = -1, slave = -1, err;
    if ((err = pty_open(&master, &slave)) < 0)
        goto out;
    /* We are a session leader without a terminal (setsid): this one
     * becomes ours, so the shell gets job control and /dev/tty. */
    if (ioctl(slave, TIOCSCTTY, 0) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "TIOCSCTTY");
        goto out;
    }
    if ((err = send_master(cfg->pty_sock, master)) < 0)
        goto out;
    close(master);
    master = -1;
    /* Wait until airlock set the size and modes: the command's first
     * TIOCGWINSZ must see the real size. */
    char go = 0;
    ssize_t n;
    while ((n = read(cfg->pty_sock, &go, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1 || go != 'g') {
        err = al_error_set(AL_EIO, "airlock did not take the terminal");
        goto out;
    }
    for (int fd = 0; fd <= 2; fd++)
        if ((cfg->pty_stdio & (1U << fd)) && dup2(slave, fd) < 0) {
            err = al_error_set_errno(AL_EIO, errno, "dup2 terminal");
            goto out;
        }
out:
    if (master >= 0)
        close(master);
    if (slave >= 0)
        close(slave);
    close(cfg->pty_sock);
    return err;
}

int sb_pty_detach_stdio(const struct sb_config *cfg)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return al_error_set_errno(AL_EIO, errno, "/dev/null");
    for (int fd = 0; fd <= 2; fd++)
        if ((cfg->pty_stdio & (1U << fd)) && dup2(null, fd) < 0) {
            int e = errno;
            close(null);
            return al_error_set_errno(AL_EIO, e, "dup2 /dev/null");
        }
    close(null);
    return 0;
}
