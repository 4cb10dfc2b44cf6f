"""A user's terminal for tests: runs a command on a real pseudo-terminal
(the command's controlling terminal), reads what it shows, types into it,
resizes it. Only waits with generous timeouts for expected output."""
import errno
import fcntl
import os
import re
import select
import signal
import struct
import termios
import time

TIMEOUT = 60


class Term:
    def __init__(self, argv, rows=24, cols=80, env=None, cwd=None):
        self.master, self.slave = os.openpty()
        self.set_size(rows, cols)
        self.out = b""
        self.status = None
        pid = os.fork()
        if pid == 0:
            try:
                os.close(self.master)
                os.setsid()
                fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(self.slave, fd)
                if self.slave > 2:
                    os.close(self.slave)
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        self.pid = pid
        # The slave stays open here too: the test inspects the user's
        # terminal (modes, size, input queue) after the command ended.

    def set_size(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def size(self):
        r, c, _, _ = struct.unpack("HHHH", fcntl.ioctl(self.slave, termios.TIOCGWINSZ, b"\0" * 8))
        return r, c

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        os.write(self.master, data)

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return None
            raise
        if not chunk:
            return None
        self.out += chunk
        return True

    def expect(self, pattern, timeout=TIMEOUT, start=0):
        """Waits until `pattern` (bytes regex) appears in the output after
        offset `start`; returns the match."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.out, start)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 1.0)) is None and not rx.search(self.out, start):
                if left <= 0 or self.poll_exit() is not None:
                    m = rx.search(self.out, start)
                    if m:
                        return m
                    raise AssertionError("did not see %r; output so far:\n%r" % (pattern, self.out))

    def read_for(self, seconds):
        """Collects output for `seconds` (used only where output must NOT
        come: the test passes whatever the speed of the machine)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._read(deadline - time.monotonic()) is None:
                break

    def poll_exit(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = st
        return self.status

    def wait(self, timeout=TIMEOUT):
        """Reads until the command exited; returns its wait status."""
        deadline = time.monotonic() + timeout
        while self.poll_exit() is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError("command did not end; output:\n%r" % self.out)
            self._read(0.2)
        while self._read(0.1):
            pass
        return self.status

    def exit_code(self, timeout=TIMEOUT):
        st = self.wait(timeout)
        if os.WIFSIGNALED(st):
            raise AssertionError("airlock itself died of signal %d; output:\n%r"
                                 % (os.WTERMSIG(st), self.out))
        return os.WEXITSTATUS(st)

    def modes(self):
        return termios.tcgetattr(self.slave)

    def pending_input(self):
        return struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0" * 4))[0]

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.master)
        os.close(self.slave)
