/* The terminal of `airlock run` (issue 12, item 4): when airlock's stdin
 * and stdout are terminals, the command gets a pseudo-terminal of the
 * sandbox's own (opened inside, from its private devpts: see
 * session/src/pty.c) and airlock relays between it and the user's
 * terminal, which it puts in raw mode. The command never holds a
 * descriptor of the user's terminal: no TIOCSTI, mode or size change
 * reaches it. Ctrl-C, Ctrl-Z and friends are bytes that the sandbox's
 * line discipline turns into signals for the command's foreground job;
 * window size changes (SIGWINCH) are set on the master.
 *
 * airlock owns the questions: run_pty_ask() shows one on a line of its
 * own and reads the answer from the keyboard; meanwhile the command's
 * input is held (not forwarded) and so is its output (so nothing the
 * command prints can erase the question), both resuming after the answer.
 * run_pty_say() prints airlock's own lines between the command's output. */
#ifndef AIRLOCK_RUN_PTY_H
#define AIRLOCK_RUN_PTY_H

typedef struct run_pty run_pty;

/* Which std descriptors of the command get a terminal of the sandbox's
 * own, as sb_config.pty_stdio: 0 (none) unless stdin and stdout are
 * terminals; then stdin, stdout and, when it is a terminal too, stderr.
 * (`airlock run -- cmd | less`: no terminal, the descriptors as they are.) */
unsigned run_pty_wanted(void);

/* Prepares the relay: a socket pair, of which *out_sandbox_sock is the end
 * for sb_config.pty_sock (the caller keeps it open until run_pty_stop()),
 * and a thread that waits there for the master, then sets its size and
 * modes from the user's terminal, puts that one in raw mode and relays.
 * `stdio` is run_pty_wanted()'s mask. 0, or a negative code with a
 * message in al_error_last(). Free with run_pty_free(). */
int run_pty_start(run_pty **out, int *out_sandbox_sock, unsigned stdio);

/* Shows `question` (one line, already safe to print) on the terminal and
 * waits up to `timeout_s` seconds for a line typed in answer. Returns 'y',
 * 'a' or 'n' (also for Ctrl-C and Ctrl-D), 0 when the time ran out (the
 * terminal then says so on a line of its own), -1 when there is no relay
 * (not started, or stopping). One question at a time: a second caller
 * waits for the first. Any thread. */
int run_pty_ask(run_pty *pty, const char *question, unsigned timeout_s);

/* Prints `line` (no newline; "\n" inside becomes "\r\n") on a line of its
 * own on the terminal, between the command's output; with stderr not a
 * terminal, on stderr. Returns 0, or -1 when there is no relay (then the
 * caller prints it itself). Any thread. */
int run_pty_say(run_pty *pty, const char *line);

/* Ends the relay: the command's last output is shown, pending and later
 * questions are answered -1 and lines refused, and the user's terminal
 * gets its modes back. The handle stays valid. NULL is fine. */
void run_pty_stop(run_pty *pty);

/* Stops the relay if needed, waits for the threads still inside
 * run_pty_ask() or run_pty_say(), and frees everything. NULL is fine. */
void run_pty_free(run_pty *pty);

#endif
