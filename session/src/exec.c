/* The last step inside the sandbox: the command itself. */
#include "sandbox_int.h"

#include "airlock/error.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

void sb_exec_command(const struct sb_config *cfg, int status_fd)
{
    char msg[sizeof(((struct sb_status *)0)->message)];
    /* airlock and the sandbox's pid 1 install no handlers (they wait with
     * sigwaitinfo), so dispositions are the caller's, as across any exec;
     * only the mask they blocked is undone. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A new session: no controlling terminal to inject input into (the
     * caller's terminal stays out of reach). */
    setsid();
    /* Then the sandbox's own terminal as the controlling one, when asked. */
    if (cfg->pty_stdio && sb_pty_attach(cfg) < 0) {
        snprintf(msg, sizeof(msg), "terminal: %s", al_error_last());
        sb_status_write(status_fd, SB_SETUP_FAILED, 0, msg);
        _exit(125);
    }
    if (chdir(cfg->cwd) < 0) {
        int e = errno;
        snprintf(msg, sizeof(msg), "chdir %s: %s", cfg->cwd, strerror(e));
        sb_status_write(status_fd, SB_SETUP_FAILED, e, msg);
        _exit(125);
    }
    if (cfg->inner)
        _exit(cfg->inner(cfg->inner_payload));
    /* execvp searches the PATH of `environ`: the sandbox's, not ours. */
    environ = (char **)cfg->envp;
    execvp(cfg->argv[0], cfg->argv);
    int e = errno;
    snprintf(msg, sizeof(msg), "%s: %s", cfg->argv[0], strerror(e));
    sb_status_write(status_fd, e == ENOENT ? SB_NOT_FOUND : SB_NOT_EXEC, e, msg);
    _exit(e == ENOENT ? 127 : 126);
}
