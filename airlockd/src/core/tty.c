/* Commands on a terminal (tty.h): the master from init, one reader at a
 * time, window size, hang-up. */
#include "airlockd/core/tty.h"

#include "airlockd/core/control.h"
#include "airlockd/core/daemon.h"
#include "airlockd/core/process.h"
#include "airlockd/core/session.h"

#include "airlock/error.h"
#include "airlock/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPAWN_REPLY_TIMEOUT_MS 30000

int ald_tty_stdio_setup(struct ald_session *s, struct ald_exec_stdio *io)
{
    pthread_mutex_lock(&s->sandbox.send_lock);
    int can = s->sandbox.open && sbs_conn_can_tty(&s->sandbox.conn);
    pthread_mutex_unlock(&s->sandbox.send_lock);
    if (!can)
        return al_error_set(AL_EUNSUPP,
                            "the sandbox of session %s cannot start terminals"
                            " (started by an older airlockd)",
                            s->id);
    int pfd[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pfd) < 0)
        return al_error_set_errno(AL_EIO, errno, "socketpair");
    io->watch = pfd[0];
    io->child[3] = pfd[1];
    return 0;
}

void ald_tty_spawn_watch(struct ald *d, struct ald_session *s, struct ald_proc *p, int watch)
{
    struct pollfd pfd[2] = {{watch, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
    int n;
    while ((n = poll(pfd, 2, SPAWN_REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    struct sbs_msg m;
    int master = -1;
    if (n <= 0 || (pfd[1].revents & POLLIN) || sbs_watch_recv_fd(watch, &m, &master) < 0)
        return;
    if (m.type != SBS_MSG_SPAWNED) {
        if (master >= 0)
            close(master);
        return;
    }
    fcntl(master, F_SETFL, O_NONBLOCK);
    pthread_mutex_lock(&d->lock);
    p->tty_fd = master; /* before the process is seen running */
    pthread_mutex_unlock(&d->lock);
    ald_ctl_spawned(d, s, &m);
}

int ald_tty_check_started(struct ald *d, struct ald_session *s, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    int orphan = p->state == ALD_P_RUNNING && p->tty_fd < 0;
    uint32_t id = p->init_id;
    pthread_mutex_unlock(&d->lock);
    if (!orphan)
        return 0;
    /* nobody could ever type into it or read it */
    ald_ctl_signal(d, s, id, SIGKILL);
    return al_error_set(AL_EIO, "the sandbox's init started the command without a terminal");
}

void ald_tty_exec_started(struct ald *d, struct ald_proc *p, struct ald_exec_stdio *io,
                          int foreground)
{
    pthread_mutex_lock(&d->lock);
    if (p->tty_fd >= 0 && p->state == ALD_P_RUNNING && p->stdin_fd < 0)
        p->stdin_fd = fcntl(p->tty_fd, F_DUPFD_CLOEXEC, 0);
    if (p->tty_fd >= 0 && foreground && io->out_r < 0) {
        /* read to its end even when it is over already */
        io->out_r = fcntl(p->tty_fd, F_DUPFD_CLOEXEC, 0);
        p->tty_attached = io->out_r >= 0;
    }
    size_t held = 0;
    for (struct ald_proc *q = p->s->procs.list; q; q = q->next)
        held += q->tty_hold != 0;
    /* for the first reader, should it come late (or the command be over
     * already: its output waits in the terminal) */
    if (p->tty_fd >= 0 && !foreground && !p->tty_hold && held < ALD_TTY_MAX_HELD) {
        p->tty_hold = 1;
        p->refs++;
    }
    pthread_mutex_unlock(&d->lock);
}

int ald_tty_attach(struct ald *d, struct ald_proc *p, int *out_fd, struct ald_fault *f)
{
    int err = 0;
    *out_fd = -1;
    pthread_mutex_lock(&d->lock);
    if (!p->tty)
        err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                            "p_%llu does not run on a terminal (exec with \"tty\")",
                            (unsigned long long)p->num);
    else if (p->tty_fd < 0)
        err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                            "the terminal of p_%llu went with the airlockd that started it",
                            (unsigned long long)p->num);
    else if (p->state != ALD_P_RUNNING && !p->tty_hold)
        err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL, "p_%llu has exited",
                            (unsigned long long)p->num);
    else if (p->tty_attached)
        err = ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                            "the terminal of p_%llu is in use by another client",
                            (unsigned long long)p->num);
    else if ((*out_fd = fcntl(p->tty_fd, F_DUPFD_CLOEXEC, 0)) < 0)
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "dup: %s", strerror(errno));
    else
        p->tty_attached = 1;
    pthread_mutex_unlock(&d->lock);
    return err < 0 ? err : 0;
}

void ald_tty_detach(struct ald *d, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    p->tty_attached = 0;
    int held = p->tty_hold;
    p->tty_hold = 0;
    pthread_mutex_unlock(&d->lock);
    if (held)
        ald_proc_unref(d, p); /* the caller still holds its own */
}

void ald_tty_release_holds(struct ald *d, struct ald_session *s)
{
    struct ald_proc *held[ALD_TTY_MAX_HELD];
    size_t n;
    do {
        n = 0;
        pthread_mutex_lock(&d->lock);
        for (struct ald_proc *p = s->procs.list; p && n < ALD_TTY_MAX_HELD; p = p->next) {
            if (p->tty_hold) {
                p->tty_hold = 0;
                held[n++] = p;
            }
        }
        pthread_mutex_unlock(&d->lock);
        for (size_t i = 0; i < n; i++)
            ald_proc_unref(d, held[i]);
    } while (n == ALD_TTY_MAX_HELD);
}

int ald_tty_resize(struct ald *d, struct ald_session *s, struct ald_proc *p, uint32_t rows,
                   uint32_t cols, struct ald_fault *f)
{
    pthread_mutex_lock(&d->lock);
    int tty = p->tty, running = p->state == ALD_P_RUNNING;
    uint32_t id = p->init_id;
    pthread_mutex_unlock(&d->lock);
    if (!tty)
        return ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL,
                             "p_%llu does not run on a terminal", (unsigned long long)p->num);
    if (!running)
        return ald_fault_set(f, ALD_FAULT_CONFLICT, "conflict", NULL, "p_%llu has exited",
                             (unsigned long long)p->num);
    int err = AL_EIO;
    pthread_mutex_lock(&s->sandbox.send_lock);
    if (s->sandbox.open)
        err = sbs_resize_send(&s->sandbox.conn, id, rows, cols);
    pthread_mutex_unlock(&s->sandbox.send_lock);
    if (err < 0)
        return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "resize: %s",
                             err == AL_EIO ? "the sandbox is gone" : al_error_last());
    return 0;
}

void ald_tty_hangup(struct ald *d, struct ald_session *s, struct ald_proc *p)
{
    pthread_mutex_lock(&d->lock);
    int running = p->state == ALD_P_RUNNING;
    uint32_t id = p->init_id;
    pthread_mutex_unlock(&d->lock);
    if (running && !atomic_load(&d->stopping))
        ald_ctl_signal(d, s, id, SIGHUP);
}
