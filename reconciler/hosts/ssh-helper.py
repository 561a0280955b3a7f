# HostKit's helper on a host reached over SSH (reconciler/hosts/ssh.ts). It is
# sent over the SSH session's standard input when the connection opens and run
# by the host's python3 (nothing is installed on the host); then it serves the
# Host interface for as long as that input stays open.
#
# Protocol: JSON lines. A request is {"id": N, "op": NAME, "epoch": E, ...};
# its answer is {"id": N, "ok": VALUE} or {"id": N, "err": {...}}, in any
# order: requests run concurrently (file operations in a small pool, commands
# and lock waits in threads of their own). Bytes travel as base64.
#
# Order: the other side does not wait for the answer of a void op (write,
# append, mkdir, chown, remove, symlink: VOID_OPS), so here every request runs
# after every void op that arrived before it: void ops one at a time in their
# own lane, in arrival order; any other request once the last void op before
# it is done. When a void op fails, every request of its epoch (or an earlier
# one) that arrived after it is answered {"id": N, "skipped": E} without
# running, until requests come with a later epoch: the other side moves on
# only once the engine acknowledged the failure (ssh-channel.ts), so nothing
# after a failed write runs before HostKit knows of it (as with a local
# HostKit, where the write throws). The first line it writes is a
# hello. When its input ends (the connection closed or died) it exits at once:
# the locks it holds are released with it; commands it started keep running,
# as those of a local HostKit process killed mid-run do.
#
# Two more ways to run it, each in an SSH session of its own, the script's
# bytes first on its input as always: `relay PATH` connects to the Unix socket
# PATH and carries the rest of its input there and the socket's bytes back (a
# PostgreSQL socket, opened by whoever the helper runs as: root under sudo);
# `receive PATH UID GID MODE SIZE` writes the next SIZE bytes of its input to
# PATH atomically and prints their sha256 (a package bootstrap copies).
#
# Every file operation does what LocalHost (local.ts) does, on the host itself:
# atomic writes through a temporary file renamed over the target, O_NOFOLLOW
# on the last component, managed paths refused when a directory on the way is
# a symlink, appends as one write (fdatasync on request).
import base64
import errno
import fcntl
import json
import os
import selectors
import hashlib
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

VERSION = 2
# After the final SIGKILL: how long the group and its pipes have to go (process.ts SETTLE_MS).
SETTLE_S = 2.0
# What commands get, as on a test host (nspawn.ts NSPAWN_BASE_ENV); the login's own variables stay.
BASE_ENV = {
    'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'LANG': 'C.UTF-8',
    'SYSTEMD_PAGER': '',
    'SYSTEMD_COLORS': '0',
}

out_lock = threading.Lock()
stdout = sys.stdout.buffer


def send(message):
    line = json.dumps(message, separators=(',', ':')).encode() + b'\n'
    with out_lock:
        stdout.write(line)
        stdout.flush()


class Refused(Exception):
    """A managed path met a symlink at `at` (HOST_PATH_SYMLINK on the other side)."""

    def __init__(self, at):
        Exception.__init__(self, at)
        self.at = at


def b64(data):
    return base64.b64encode(data).decode('ascii')


def missing(error):
    return error.errno in (errno.ENOENT, errno.ENOTDIR)


def check_managed(path):
    # Each directory on the way, below "/", must not be a symlink; a missing one ends the walk.
    parts = [p for p in os.path.normpath(path).split('/') if p][:-1]
    for i in range(1, len(parts) + 1):
        directory = '/' + '/'.join(parts[:i])
        try:
            st = os.lstat(directory)
        except OSError as e:
            if missing(e):
                return
            raise
        if stat.S_ISLNK(st.st_mode):
            raise Refused(directory)


def op_read(req):
    path = req['path']
    try:
        if req.get('managed'):
            check_managed(path)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise Refused(path)
                raise
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        if missing(e):
            return None
        raise
    with os.fdopen(fd, 'rb') as f:
        return b64(f.read())


def op_stat(req):
    try:
        st = os.lstat(req['path'])
    except OSError as e:
        if missing(e):
            return None
        raise
    mode = st.st_mode
    kind = 'file' if stat.S_ISREG(mode) else 'directory' if stat.S_ISDIR(mode) else 'symlink' if stat.S_ISLNK(mode) else 'other'
    return {'type': kind, 'mode': stat.S_IMODE(mode), 'uid': st.st_uid, 'gid': st.st_gid, 'size': st.st_size}


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def op_write(req):
    path = req['path']
    if req.get('managed'):
        check_managed(path)
    directory, name = os.path.split(path)
    temp = os.path.join(directory, '.%s.hostkit-%s' % (name, os.urandom(6).hex()))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(fd, base64.b64decode(req['data']))
            os.fchown(fd, req['uid'], req['gid'])
            os.fchmod(fd, req['mode'])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return None


def op_append(req):
    fd = os.open(req['path'], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_size == 0 and (st.st_uid != req['uid'] or st.st_gid != req['gid'] or stat.S_IMODE(st.st_mode) != req['mode']):
            os.fchown(fd, req['uid'], req['gid'])
            os.fchmod(fd, req['mode'])
        write_all(fd, base64.b64decode(req['data']))
        if req.get('sync'):
            os.fdatasync(fd)
    finally:
        os.close(fd)
    return None


def set_ownership(path, uid, gid, mode):
    # lchown, then chmod through a descriptor opened with O_NOFOLLOW (local.ts setOwnershipNoFollow).
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        os.lchown(path, uid, gid)
        return
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        os.lchown(path, uid, gid)
        os.chmod(path, mode)
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def op_mkdir(req):
    if req.get('managed'):
        check_managed(req['path'])
    try:
        os.mkdir(req['path'], 0o700)
    except FileExistsError:
        pass
    set_ownership(req['path'], req['uid'], req['gid'], req['mode'])
    return None


def op_chown(req):
    if req.get('managed'):
        check_managed(req['path'])
    set_ownership(req['path'], req['uid'], req['gid'], req['mode'])
    return None


def op_remove(req):
    path = req['path']
    if req.get('managed'):
        check_managed(path)
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as e:
        if not missing(e):
            raise
    return None


def op_readdir(req):
    try:
        return os.listdir(req['path'])
    except OSError as e:
        if missing(e):
            return None
        raise


def op_readlink(req):
    try:
        return os.readlink(req['path'])
    except OSError as e:
        if missing(e) or e.errno == errno.EINVAL:
            return None
        raise


def op_symlink(req):
    path = req['path']
    directory, name = os.path.split(path)
    temp = os.path.join(directory, '.%s.hostkit-%s' % (name, os.urandom(6).hex()))
    os.symlink(req['target'], temp)
    try:
        os.rename(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return None


def op_sockets(req):
    # The Unix sockets in a directory (PostgreSQL's .s.PGSQL.PORT), for forwarding.
    try:
        names = os.listdir(req['path'])
    except OSError as e:
        if missing(e):
            return None
        raise
    found = []
    for name in names:
        try:
            if stat.S_ISSOCK(os.lstat(os.path.join(req['path'], name)).st_mode):
                found.append(name)
        except OSError:
            pass
    return sorted(found)


def op_hostname(req):
    return os.uname().nodename


locks = {}
locks_lock = threading.Lock()


def op_lock(req):
    # flock(2) on a descriptor this process holds: the lock lives as long as it does.
    fd = os.open(req['path'], os.O_RDWR | os.O_CREAT | os.O_NOCTTY | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + req['waitMs'] / 1000.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)
    with locks_lock:
        locks[fd] = True
    return fd


def op_unlock(req):
    with locks_lock:
        held = locks.pop(req['lock'], None)
    if held:
        os.close(req['lock'])
    return None


class Tail:
    """The last `limit` bytes of a stream and how many went before them (process.ts Tail)."""

    def __init__(self, limit):
        self.limit = limit
        self.chunks = []
        self.size = 0
        self.dropped = 0

    def push(self, chunk):
        self.chunks.append(chunk)
        self.size += len(chunk)
        while len(self.chunks) > 1 and self.size - len(self.chunks[0]) >= self.limit:
            first = self.chunks.pop(0)
            self.size -= len(first)
            self.dropped += len(first)

    def finish(self):
        data = b''.join(self.chunks)
        cut = self.dropped
        if len(data) > self.limit:
            cut += len(data) - self.limit
            data = data[len(data) - self.limit:]
        return data, cut


def pump(proc, data, tails, abandon):
    # Feeds stdin and drains stdout and stderr without blocking on either, until all are closed.
    sel = selectors.DefaultSelector()
    if data is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, 'in')
    sel.register(proc.stdout.fileno(), selectors.EVENT_READ, 0)
    sel.register(proc.stderr.fileno(), selectors.EVENT_READ, 1)
    view = memoryview(data) if data is not None else None
    while sel.get_map() and not abandon.is_set():
        for key, _ in sel.select(0.1):
            if key.data == 'in':
                try:
                    view = view[os.write(key.fd, view[:65536]):]
                except BlockingIOError:
                    continue
                except OSError:
                    view = view[:0]  # the command exited without reading it all
                if not view:
                    sel.unregister(key.fd)
                    proc.stdin.close()
                continue
            chunk = os.read(key.fd, 65536)
            if chunk:
                tails[key.data].push(chunk)
            else:
                sel.unregister(key.fd)
    sel.close()


def group_alive(pgid):
    # A member of the process group that is not a zombie ("pid (comm) state ppid pgrp ...").
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, 'rb') as f:
                fields = f.read().rsplit(b')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b'Z', b'X'):
            return True
    return False


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def op_exec(req):
    env = dict(os.environ)
    for key in list(env):
        if key.startswith('LC_'):
            del env[key]
    env.update(BASE_ENV)
    env.update(req.get('env') or {})
    data = base64.b64decode(req['input']) if 'input' in req else None
    try:
        proc = subprocess.Popen(
            [req['file']] + req['args'],
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=req.get('cwd'),
            env=env,
            start_new_session=True,  # its own process group, which a timeout signals
        )
    except OSError as e:
        return {'failed': '%s: %s' % (errno.errorcode.get(e.errno, 'EIO'), e.strerror) + (" '%s'" % e.filename if e.filename else '')}
    limit = req['maxOutputBytes']
    tails = [Tail(limit), Tail(limit)]
    abandon = threading.Event()
    pumping = threading.Thread(target=pump, args=(proc, data, tails, abandon), daemon=True)
    pumping.start()
    pgid = proc.pid

    def finished(seconds):
        # The command exited and its output closed (a background child may hold it open).
        end = None if seconds is None else time.monotonic() + seconds
        pumping.join(None if end is None else max(0, end - time.monotonic()))
        if pumping.is_alive():
            return False
        try:
            proc.wait(None if end is None else max(0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    timed_out = None
    timeout = req.get('timeoutMs')
    if not finished(None if timeout is None else timeout / 1000.0):
        timed_out = 'SIGTERM'
        signal_group(pgid, signal.SIGTERM)
        if not finished(req['killGraceMs'] / 1000.0):
            timed_out = 'SIGKILL'
            deadline = time.monotonic() + SETTLE_S
            while True:
                signal_group(pgid, signal.SIGKILL)
                if not group_alive(pgid) or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if not finished(SETTLE_S):
                abandon.set()  # the pipes outlived the group: let them go
                pumping.join(1)
                proc.poll()
    result = {}
    for name, tail in zip(('stdout', 'stderr'), tails):
        kept, cut = tail.finish()
        result[name] = b64(kept)
        result[name + 'Cut'] = cut
    if timed_out:
        result['timedOut'] = timed_out
    elif proc.returncode is not None:
        # Killed by a signal: reported as a shell would (128 + its number).
        result['exitCode'] = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return result


OPS = {
    'read': op_read,
    'stat': op_stat,
    'write': op_write,
    'append': op_append,
    'mkdir': op_mkdir,
    'chown': op_chown,
    'remove': op_remove,
    'readdir': op_readdir,
    'readlink': op_readlink,
    'symlink': op_symlink,
    'sockets': op_sockets,
    'hostname': op_hostname,
    'lock': op_lock,
    'unlock': op_unlock,
    'exec': op_exec,
}
# Ops that may wait for a long time run in threads of their own, so file operations never queue behind them.
OWN_THREAD = ('exec', 'lock')
# Ops whose answer the other side does not wait for (see Order above).
VOID_OPS = ('write', 'append', 'mkdir', 'chown', 'remove', 'symlink')

# The last void op that failed: its epoch and arrival number (requests after it, of that epoch or older, are skipped).
failed = {'epoch': -1, 'seq': -1}
failed_lock = threading.Lock()


def run(req, seq):
    epoch = req.get('epoch', 0)
    with failed_lock:
        skip = epoch <= failed['epoch'] and seq > failed['seq']
        after = failed['epoch']
    if skip:
        send({'id': req['id'], 'skipped': after})
        return
    try:
        answer = {'id': req['id'], 'ok': OPS[req['op']](req)}
    except Refused as e:
        answer = {'id': req['id'], 'err': {'symlink': e.at}}
    except OSError as e:
        code = errno.errorcode.get(e.errno, 'EIO') if e.errno else 'EIO'
        answer = {'id': req['id'], 'err': {'errno': code, 'message': e.strerror or str(e), 'path': e.filename}}
    except Exception as e:  # a bug here: say which, keep serving
        answer = {'id': req.get('id'), 'err': {'message': '%s: %s' % (type(e).__name__, e)}}
    if 'err' in answer and req['op'] in VOID_OPS:
        # Before its answer and before the lane goes on: whatever waits for this op sees the failure.
        with failed_lock:
            failed['epoch'] = epoch
            failed['seq'] = seq
    send(answer)


def relay(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sys.stderr.write('relay: cannot connect to %s: %s\n' % (path, e.strerror or e))
        sys.exit(1)
    source = sys.stdin.buffer  # the script came through this buffer: what it read ahead is the stream's start

    def inbound():
        try:
            while True:
                chunk = source.read1(65536)
                if not chunk:
                    break
                sock.sendall(chunk)
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=inbound, daemon=True).start()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            write_all(1, chunk)
    except OSError:
        pass
    os._exit(0)


def receive(path, uid, gid, mode, size):
    directory, name = os.path.split(path)
    temp = os.path.join(directory, '.%s.hostkit-%s' % (name, os.urandom(6).hex()))
    digest = hashlib.sha256()
    left = size
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            while left > 0:
                chunk = sys.stdin.buffer.read1(min(left, 1 << 20))
                if not chunk:
                    raise EOFError('the stream ended after %d of %d bytes' % (size - left, size))
                digest.update(chunk)
                write_all(fd, chunk)
                left -= len(chunk)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException as e:
        try:
            os.unlink(temp)
        except OSError:
            pass
        sys.stderr.write('receive: %s: %s\n' % (path, getattr(e, 'strerror', None) or e))
        sys.exit(1)
    sys.stdout.write(digest.hexdigest() + '\n')
    sys.stdout.flush()


def own_thread(req, seq):
    threading.Thread(target=run, args=(req, seq), daemon=True).start()


def main():
    pool = ThreadPoolExecutor(max_workers=8)
    lane = ThreadPoolExecutor(max_workers=1)  # void ops, one at a time, in arrival order
    last_void = None
    seq = 0
    send({'hello': 'hostkit-ssh-helper', 'version': VERSION, 'pid': os.getpid(), 'uid': os.getuid(), 'hostname': os.uname().nodename})
    for line in sys.stdin.buffer:
        req = json.loads(line)
        seq += 1
        if req['op'] in VOID_OPS:
            last_void = lane.submit(run, req, seq)
            continue
        start = own_thread if req['op'] in OWN_THREAD else (lambda r, s: pool.submit(run, r, s))
        if last_void is None:
            start(req, seq)
        else:
            # Runs at once when that op is done already; else in the lane's thread once it is.
            last_void.add_done_callback(lambda _done, r=req, s=seq: start(r, s))
    # Input closed: the connection is gone. Exit without waiting for commands; locks go with us.
    os._exit(0)


# sys.argv is ['-c', ...] under `python3 -c`.
if sys.argv[1:2] == ['relay']:
    relay(sys.argv[2])
elif sys.argv[1:2] == ['receive']:
    receive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5], 8), int(sys.argv[6]))
else:
    main()
