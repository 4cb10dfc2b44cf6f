/* The last step inside the sandbox: the command itself. */
#include "sandbox_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

void sb_exec_command(const struct sb_config *cfg, int err_fd)
{
    /* airlock and the sandbox's pid 1 install no handlers (they wait with
     * sigwaitinfo), so dispositions are the caller's, as across any exec;
     * only the mask they blocked is undone. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A new session: no controlling terminal to inject input into. */
    setsid();
    if (chdir(cfg->cwd) < 0) {
        int e = errno;
        ssize_t w = write(err_fd, &e, sizeof(e));
        (void)w;
        _exit(125);
    }
    if (cfg->inner)
        _exit(cfg->inner(cfg->inner_payload));
    /* execvp searches the PATH of `environ`: the sandbox's, not ours. */
    environ = (char **)cfg->envp;
    execvp(cfg->argv[0], cfg->argv);
    int e = errno;
    ssize_t w = write(err_fd, &e, sizeof(e));
    (void)w;
    _exit(e == ENOENT ? 127 : 126);
}
