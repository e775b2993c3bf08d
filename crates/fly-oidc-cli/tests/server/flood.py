"""A hostile local client: holds N connections to 127.0.0.1:PORT for SECONDS, reopening any the
server closes, as an attacker would. Kinds, in turn (KINDS, comma-separated):

- idle:      a keep-alive connection sending `GET /` every 3 s and reading the answers;
- slow:      a request head sent one byte a second, never finished;
- pipeline:  requests pipelined as fast as the socket takes them, answers never read.

Usage: flood.py PORT N SECONDS [KINDS]. Prints `open <n> reopened <m>` every second (n: the
connections established and not closed by the server), and `done` at the end.
"""
import errno
import resource
import selectors
import socket
import sys
import time

port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
kinds = (sys.argv[4] if len(sys.argv) > 4 else "idle,slow,pipeline").split(",")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
PIPELINE = REQUEST * 256
SLOW = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100000

sel = selectors.DefaultSelector()
conns = {}  # fd -> [socket, kind, connected, next_send_at, progress]
reopened = 0


def open_one(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if kind == "pipeline":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return False
    conns[s.fileno()] = [s, kind, False, 0.0, 0]
    sel.register(s, selectors.EVENT_WRITE)
    return True


def close(fd):
    entry = conns.pop(fd, None)
    if entry:
        try:
            sel.unregister(entry[0])
        except (KeyError, ValueError):
            pass
        entry[0].close()
        return entry[1]
    return None


def reopen(fd, kind):
    """Close `fd` and queue a new connection of its kind in its place."""
    global reopened
    close(fd)
    pending.append(kind)
    reopened += 1


pending = [kinds[i % len(kinds)] for i in range(count)]
start = time.monotonic()
last_report = last_tick = 0.0
while time.monotonic() - start < seconds:
    # Open what is missing, a bounded batch per turn.
    for _ in range(min(len(pending), 500)):
        kind = pending.pop()
        if not open_one(kind):
            pending.append(kind)
            break
    now = time.monotonic()
    for key, events in sel.select(timeout=0.05):
        fd = key.fd
        entry = conns.get(fd)
        if entry is None:
            continue
        s, kind = entry[0], entry[1]
        if not entry[2]:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                reopen(fd, kind)
                continue
            entry[2] = True
            entry[3] = now
            events_wanted = selectors.EVENT_READ
            if kind == "pipeline":
                events_wanted |= selectors.EVENT_WRITE
            sel.modify(s, events_wanted)
            continue
        if events & selectors.EVENT_READ:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                data = b"?"
            except OSError:
                data = b""
            if not data:
                reopen(fd, kind)
                continue
        if events & selectors.EVENT_WRITE and kind == "pipeline":
            try:
                s.send(PIPELINE)
            except BlockingIOError:
                pass
            except OSError:
                reopen(fd, kind)
                continue
    # Timed sends (idle every 3 s, slow one byte a second), checked four times a second.
    now = time.monotonic()
    if now - last_tick < 0.25:
        continue
    last_tick = now
    for fd, entry in list(conns.items()):
        s, kind, connected, at, progress = entry
        if not connected or kind == "pipeline" or now < at:
            continue
        try:
            if kind == "idle":
                s.send(REQUEST)
                entry[3] = now + 3.0
            else:
                s.send(SLOW[progress : progress + 1])
                entry[4] = progress + 1
                entry[3] = now + 1.0
        except BlockingIOError:
            pass
        except OSError:
            reopen(fd, kind)
    if now - last_report >= 1.0:  # (after the timed sends, so at most 0.25 s late)
        last_report = now
        established = sum(1 for e in conns.values() if e[2])
        print(f"open {established} reopened {reopened}", flush=True)
print("done", flush=True)
