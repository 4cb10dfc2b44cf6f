/* `airlock session shell ID [-- CMD...]`: an interactive command on a
 * terminal in the session's sandbox. The command starts with "tty" (the
 * size of ours) as a background process; its terminal is then relayed over
 * the WebSocket GET …/processes/{pid}/tty with our terminal in raw mode
 * (restored on every way out), SIGWINCH sent on as a resize. Exits with
 * the remote command's status. Without a local terminal it refuses. */
#include "session.h"

#include "airlock/error.h"
#include "client_ws.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

/* The default command: the user's shell as a login shell ($SHELL of the
 * session's environment, else bash when the sandbox has it, else sh). */
#define DEFAULT_SHELL "s=${SHELL:-$(command -v bash || command -v sh)}; exec \"$s\" -l"

/* The local terminal's settings while we run it raw. */
static struct termios saved_tios;
static int tios_saved;

static void tty_restore(void)
{
    if (tios_saved)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tios);
    tios_saved = 0;
}

/* Raw mode: every key goes to the remote terminal, whose line discipline
 * echoes and makes ^C and ^Z signals there. Restored by tty_restore (also
 * at exit). */
static int tty_raw(void)
{
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &saved_tios) < 0)
        return al_error_set_errno(AL_EIO, errno, "tcgetattr");
    tios_saved = 1;
    atexit(tty_restore);
    t = saved_tios;
    cfmakeraw(&t);
    /* TCSANOW: what was typed ahead is kept and goes to the remote shell */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
        return al_error_set_errno(AL_EIO, errno, "tcsetattr");
    return 0;
}

/* Our window size, 24x80 when the terminal does not say. */
static void win_size(unsigned *rows, unsigned *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row > 4096 ? 4096 : ws.ws_row;
        *cols = ws.ws_col > 4096 ? 4096 : ws.ws_col;
    }
}

static int send_resize(struct cl_ws *ws)
{
    unsigned rows, cols;
    char msg[64];
    win_size(&rows, &cols);
    int n = snprintf(msg, sizeof(msg), "{\"resize\":{\"rows\":%u,\"cols\":%u}}", rows, cols);
    return cl_ws_send(ws, AL_WS_TEXT, msg, (size_t)n);
}

/* The status of an {"exit": {...}} message: the code, else 128+signal,
 * else 125 (the session ended under it). -1 when it is not one. */
static int exit_status(const unsigned char *data, size_t len)
{
    json_t *doc = json_loadb((const char *)data, len, 0, NULL);
    json_t *ex = json_object_get(doc, "exit");
    json_t *code = json_object_get(ex, "code"), *sig = json_object_get(ex, "signal");
    int st = -1;
    if (json_is_object(ex)) {
        st = 125;
        if (json_is_integer(code) && json_integer_value(code) >= 0 &&
            json_integer_value(code) <= 255)
            st = (int)json_integer_value(code);
        else if (json_is_integer(sig) && json_integer_value(sig) > 0 &&
                 json_integer_value(sig) <= 64)
            st = 128 + (int)json_integer_value(sig);
    }
    json_decref(doc);
    return st;
}

/* Handles the whole frames received so far: terminal bytes to stdout, the
 * exit message, pings, the close. Returns the command's status once known,
 * CL_EXIT_API when the connection is over without one, else -1. */
static int frames(struct cl_ws *ws, char *why, size_t why_len)
{
    struct al_ws_frame f;
    unsigned char *pl;
    int r, status = -1;
    while (status < 0 && (r = cl_ws_next(ws, &f, &pl)) != 0) {
        if (r < 0) {
            snprintf(why, why_len, "%s", al_error_last());
            status = CL_EXIT_API;
        } else if (f.opcode == AL_WS_BINARY || f.opcode == AL_WS_CONT) {
            session_write_all(STDOUT_FILENO, pl, f.payload_len);
        } else if (f.opcode == AL_WS_TEXT) {
            status = exit_status(pl, f.payload_len);
        } else if (f.opcode == AL_WS_PING) {
            cl_ws_send(ws, AL_WS_PONG, pl, f.payload_len);
        } else if (f.opcode == AL_WS_CLOSE) {
            uint16_t code = 1005;
            al_ws_close_parse(pl, f.payload_len, &code);
            snprintf(why, why_len, "the server closed the terminal (%u %.*s)", code,
                     f.payload_len > 2 ? (int)f.payload_len - 2 : 0, (const char *)pl + 2);
            status = CL_EXIT_API;
        }
    }
    return status;
}

/* Relays until the remote command exits (its status), the server closes
 * (CL_EXIT_API), or a signal ends us (128+N). */
static int relay(struct cl_ws *ws)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int in_open = 1;
    char why[256] = "";
    /* frames may have come with the handshake's answer: they are no
     * reason for the socket to poll readable */
    int status = frames(ws, why, sizeof(why));
    while (status < 0) {
        struct pollfd p[3] = {
            {in_open ? STDIN_FILENO : -1, POLLIN, 0}, {ws->fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(why, sizeof(why), "poll: %s", strerror(errno));
            status = CL_EXIT_API;
            break;
        }
        if (p[2].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGWINCH)
                    send_resize(ws);
                else
                    status = 128 + (int)si.ssi_signo; /* the server hangs the terminal up */
            }
        }
        if (p[0].revents) {
            char buf[4096];
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n > 0 && cl_ws_send(ws, AL_WS_BINARY, buf, (size_t)n) < 0) {
                snprintf(why, sizeof(why), "%s", al_error_last());
                status = CL_EXIT_API;
            } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                in_open = 0; /* our terminal went away */
                status = 129;
            }
        }
        if (status < 0 && p[1].revents) {
            int err = cl_ws_fill(ws);
            /* the frames read first, then whatever ended the connection */
            status = frames(ws, why, sizeof(why));
            if (status < 0 && err < 0) {
                snprintf(why, sizeof(why), "%s", al_error_last());
                status = CL_EXIT_API;
            }
        }
    }
    /* a clean end either way: the server hangs up a terminal left behind */
    unsigned char pl[AL_WS_MAX_CONTROL];
    size_t n = al_ws_close_payload(pl, AL_WS_CLOSE_NORMAL, "");
    cl_ws_send(ws, AL_WS_CLOSE, pl, n);
    if (sfd >= 0)
        close(sfd);
    tty_restore();
    if (why[0])
        fprintf(stderr, "airlock: session: %s\n", why);
    return status;
}

/* Kills a started command we could not attach to. */
static void kill_started(struct cl_client *c, const char *id, const char *proc)
{
    struct al_buf suffix, path = {0};
    al_buf_init(&suffix, 4096);
    json_t *body = json_pack("{s:s}", "signal", "KILL"), *doc = NULL;
    if (al_buf_printf(&suffix, "/processes/%s/signal", proc) == 0 &&
        session_path(&path, id, suffix.ptr) == 0 && body)
        cl_call_json((void **)&doc, c, "POST", path.ptr, body, NULL, NULL);
    json_decref(doc);
    json_decref(body);
    al_buf_free(&suffix);
    al_buf_free(&path);
}

int session_cmd_shell(struct cl_client *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cwd", required_argument, NULL, 'C'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *body = json_object(), *env = json_object(), *doc = NULL;
    struct al_buf path = {0}, suffix = {0};
    struct cl_ws ws = {.fd = -1};
    char proc[32] = "";
    int rc = CL_EXIT_USAGE, opt;
    if (!body || !env) {
        rc = CL_EXIT_API;
        goto out;
    }
    while ((opt = session_getopt(argc, argv, "C:e:", opts)) != -1) {
        switch (opt) {
        case 'C':
            json_object_set_new(body, "cwd", json_string(optarg));
            break;
        case 'e':
            if (session_kv_add(env, optarg, "--env") < 0) {
                session_usage_error("%s", al_error_last());
                goto out;
            }
            break;
        case 'h':
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (optind >= argc) {
        session_usage_error("shell wants a session id");
        goto out;
    }
    const char *id = argv[optind++];
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr,
                "airlock: session: shell needs a terminal (stdin and stdout are not"
                " both one); for a command without one: airlock session exec %s -- CMD\n",
                id);
        goto out;
    }
    json_t *args = json_array();
    if (optind < argc) {
        for (int i = optind; i < argc; i++)
            json_array_append_new(args, json_string(argv[i]));
    } else {
        json_array_append_new(args, json_string("/bin/sh"));
        json_array_append_new(args, json_string("-c"));
        json_array_append_new(args, json_string(DEFAULT_SHELL));
    }
    json_object_set_new(body, "argv", args);
    const char *term = getenv("TERM");
    if (!json_object_get(env, "TERM"))
        json_object_set_new(env, "TERM", json_string(term && *term ? term : "xterm"));
    json_object_set(body, "env", env);
    unsigned rows, cols;
    win_size(&rows, &cols);
    json_object_set_new(body, "tty", json_pack("{s:i, s:i}", "rows", rows, "cols", cols));
    json_object_set_new(body, "background", json_true());
    rc = CL_EXIT_API;
    if (session_path(&path, id, "/exec") < 0 ||
        cl_call_json((void **)&doc, c, "POST", path.ptr, body, NULL, NULL) < 0)
        goto out;
    snprintf(proc, sizeof(proc), "%s", json_string_value(json_object_get(doc, "id")) ?: "");
    al_buf_free(&path);
    al_buf_init(&suffix, 4096);
    if (!proc[0] || al_buf_puts(&suffix, "/processes/") < 0 ||
        cl_url_escape(&suffix, proc, 0) < 0 || al_buf_puts(&suffix, "/tty") < 0 ||
        session_path(&path, id, suffix.ptr) < 0)
        goto out;
    if (cl_ws_connect(&ws, c, path.ptr) < 0) {
        fprintf(stderr, "airlock: session: %s\n", al_error_last());
        kill_started(c, id, proc);
        goto out;
    }
    if (tty_raw() < 0) {
        fprintf(stderr, "airlock: session: %s\n", al_error_last());
        goto out; /* closing the WebSocket hangs the remote terminal up */
    }
    rc = relay(&ws);
out:
    tty_restore();
    cl_ws_close(&ws);
    json_decref(doc);
    json_decref(body);
    json_decref(env);
    al_buf_free(&path);
    al_buf_free(&suffix);
    return rc;
}
