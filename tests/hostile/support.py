"""Support for infergate's hostile-peer suite (tests/hostile/hostile_test.py).

Real processes on 127.0.0.1 with OS-chosen ports, as tests/support/cluster.cc starts them:
infergate-sim backends, a scriptable fake Triton (FakeBackend, for a backend that ignores
deadlines or stops reading), and one infergate gateway with a generated config. Plus what
the tests talk to them with: a raw HTTP/2 gRPC client on Debian's python3-h2 (protobuf bytes
built by hand from PROTOCOL.md's field numbers), hand-made frames for protocol abuse, the
admin port's /metrics, and the gateway's memory from /proc/PID/status.

Every wait here is a poll of a condition with a deadline; nothing sleeps to win a race.

Run as a script, it is one of the helper processes the tests start:
  support.py fake-backend --name NAME --mode hang|hang-noread|huge-headers
  support.py victim --port PORT --bytes N     (a ModelInfer client that can be frozen)
"""

import collections
import ctypes
import os
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
    import hpack
except ImportError as e:  # the suite fails, loudly, rather than skipping
    sys.stderr.write(
        "hostile suite: cannot import h2/hpack (%s); install Debian's python3-h2 "
        "(scripts/install-deps.sh) and run it with /usr/bin/python3\n" % e)
    raise

MIB = 1 << 20
KIB = 1 << 10

# Paths of the binaries under test; set by hostile_test.py from its command line.
BINARIES = {"gateway": None, "sim": None}

GRPC_CODES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"]
OK, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED = 0, 4, 8, 12

H2_ERRORS = [
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
    "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
    "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 3
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 7, 8, 11

SERVICE = "/inference.GRPCInferenceService/"


def code_name(code):
    if code is None:
        return "none"
    return GRPC_CODES[code] if 0 <= code < len(GRPC_CODES) else str(code)


def h2_error_name(code):
    if code is None:
        return "none"
    return H2_ERRORS[code] if 0 <= code < len(H2_ERRORS) else hex(code)


def wait_until(condition, timeout, interval=0.01):
    """Polls condition() until it is true (returns True) or timeout seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)  # poll interval, not a wait for an event


# ---------------------------------------------------------------------------------------
# Processes


def _child_setup(nofile=None):
    def setup():
        # PR_SET_PDEATHSIG: a helper never outlives the test that started it.
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
        except OSError:
            pass
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return setup


class Proc:
    """A child process whose stdout and stderr lines are collected (and echoed if asked)."""

    def __init__(self, argv, name, stdin=False, echo=False, nofile=None):
        self.name = name
        self.echo = echo or (os.environ.get('HOSTILE_ECHO') == name)
        self.lines = []
        self.cv = threading.Condition()
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            preexec_fn=_child_setup(nofile))
        self.pid = self.popen.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self.echo:
                sys.stderr.write("[%s] %s\n" % (self.name, line))
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # end of output
            self.cv.notify_all()

    def wait_for_line(self, needle, timeout, start=0):
        """The first line from index `start` containing needle, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        return None
                    if needle in line:
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def wait_for_port(self, needle, timeout=20):
        line = self.wait_for_line(needle, timeout)
        if line is None:
            return 0
        try:
            return int(line[line.rindex(":") + 1:].split()[0])
        except ValueError:
            return 0

    def count_lines(self, needle="", start=0):
        with self.cv:
            return sum(1 for l in self.lines[start:] if l is not None and needle in l)

    def line_count(self):
        with self.cv:
            return len(self.lines)

    def output(self, last=40):
        with self.cv:
            return "\n".join(l for l in self.lines[-last:] if l is not None)

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.popen.kill()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.popen.stdin, self.popen.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


class Sim:
    """One infergate-sim: `--name NAME --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0`."""

    def __init__(self, name, args=()):
        self.name = name
        self.proc = Proc([BINARIES["sim"], "--name", name, "--listen", "127.0.0.1:0",
                          "--metrics-listen", "127.0.0.1:0"] + list(args), name)
        self.port = self.proc.wait_for_port(name + " listening on")
        self.metrics_port = self.proc.wait_for_port(name + " metrics on")
        if not self.port or not self.metrics_port:
            self.proc.stop()
            raise RuntimeError("sim %s did not start:\n%s" % (name, self.proc.output()))

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def metric(self, series):
        return metric_value(http_get(self.metrics_port, "/metrics")[1], series)

    def stop(self):
        self.proc.stop()


class FakeBackend:
    """A Triton stand-in in Python (this file run as `fake-backend`): answers the probes
    and inventory calls like a healthy server with model `identity`, and never answers
    ModelInfer. It prints one line per event: `infer_started conn=C stream=S`,
    `stream_reset conn=C stream=S code=N`, `conn_closed conn=C open_infer=N`."""

    def __init__(self, name, mode="hang"):
        self.name = name
        self.proc = Proc([sys.executable, os.path.abspath(__file__), "fake-backend", "--name",
                          name, "--mode", mode], name)
        self.port = self.proc.wait_for_port(name + " listening on")
        if not self.port:
            self.proc.stop()
            raise RuntimeError("fake backend did not start:\n" + self.proc.output())

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.stop()


class Gateway:
    """One infergate with the given backends (Sim or FakeBackend), `extra_yaml` appended
    to the generated config (top-level keys), and `backend_keys` {name: ["key: value"]}."""

    _counter = 0

    def __init__(self, backends, extra_yaml="", workers=1, backend_keys=None, wait_healthy=True,
                 nofile=None):
        Gateway._counter += 1
        fd, self.config_path = tempfile.mkstemp(
            prefix="infergate-hostile-%d-%d-" % (os.getpid(), Gateway._counter), suffix=".yaml")
        backend_keys = backend_keys or {}
        with os.fdopen(fd, "w") as out:
            out.write('listen: "127.0.0.1:0"\nadmin_listen: "127.0.0.1:0"\n')
            out.write("workers: %d\n" % workers)
            out.write("backends:\n")
            for b in backends:
                out.write('  - name: %s\n    address: "%s"\n' % (b.name, b.address))
                for key in backend_keys.get(b.name, []):
                    out.write("    %s\n" % key)
            out.write(extra_yaml + "\n")
        self.proc = Proc([BINARIES["gateway"], "--config", self.config_path], "infergate",
                         nofile=nofile)
        self.admin_port = self.proc.wait_for_port("admin_listening address=")
        self.port = self.proc.wait_for_port("gateway listening address=")
        if not self.port or not self.admin_port:
            with open(self.config_path) as f:
                config = f.read()
            self.stop()
            raise RuntimeError("the gateway did not start; config:\n%s\noutput:\n%s" %
                               (config, self.proc.output()))
        if wait_healthy and not wait_until(
                lambda: self.metric("infergate_healthy_backends") == len(backends), 15, 0.05):
            self.stop()
            raise RuntimeError("the gateway's %d backends did not become healthy:\n%s" %
                               (len(backends), self.proc.output()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.alive()

    def metrics_text(self):
        return http_get(self.admin_port, "/metrics")[1]

    def metric(self, series):
        return metric_value(self.metrics_text(), series)

    def memory(self):
        """(VmRSS, VmHWM) in bytes, from /proc/PID/status; (0, 0) once it is gone."""
        return proc_memory(self.pid)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def stop(self):
        self.proc.stop()
        try:
            os.unlink(self.config_path)
        except OSError:
            pass


def proc_memory(pid):
    rss = hwm = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def proc_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------------------
# Admin HTTP and Prometheus text


def http_get(port, path, timeout=5.0):
    """GET http://127.0.0.1:port/path -> (status, body text); (0, "") on failure."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return 0, ""
    try:
        s.settimeout(timeout)
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" %
                   path).encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except OSError:
        return 0, ""
    finally:
        s.close()
    response = b"".join(chunks)
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep or len(head) < 12:
        return 0, ""
    try:
        status = int(head[9:12])
    except ValueError:
        return 0, ""
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body.decode("utf-8", "replace")


def _unchunk(body):
    out = []
    while body:
        line, _, rest = body.partition(b"\r\n")
        n = int(line.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out.append(rest[:n])
        body = rest[n + 2:]
    return b"".join(out)


def metric_value(text, series):
    """The value of the first sample whose name-with-labels starts with `series`, or -1
    (as tests/support/cluster.cc's metric_value)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(series):
            continue
        nxt = line[len(series):len(series) + 1]
        if nxt in (" ", "{", ",") or series.endswith("}"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                return -1
    return -1


def metric_sum(text, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`; 0 when none."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest[:1] not in (" ", "{"):
            continue
        got = {}
        if rest.startswith("{"):
            inside, _, rest = rest[1:].partition("}")
            for part in inside.split(","):
                if "=" in part:
                    k, v = part.split("=", 1)
                    got[k.strip()] = v.strip().strip('"')
        if all(got.get(k) == v for k, v in labels.items()):
            try:
                total += float(rest.split()[-1])
            except (IndexError, ValueError):
                pass
    return total


# ---------------------------------------------------------------------------------------
# Protobuf bytes by hand (field numbers from PROTOCOL.md)


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field, wire_type):
    return pb_varint((field << 3) | wire_type)


def pb_bytes(field, value):
    if isinstance(value, str):
        value = value.encode()
    return pb_key(field, 2) + pb_varint(len(value)) + value


def pb_len_prefix(field, length):
    """The key and length of a length-delimited field whose bytes follow separately."""
    return pb_key(field, 2) + pb_varint(length)


def pb_packed_int64(field, values):
    body = b"".join(pb_varint(v & 0xFFFFFFFFFFFFFFFF) for v in values)
    return pb_bytes(field, body)


def pb_fields(data):
    """[(field, wire_type, value)] of one message; value is int or bytes."""
    out = []
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v = bytes(data[i:i + n])
            i += n
        elif wt == 1:
            v = bytes(data[i:i + 8])
            i += 8
        elif wt == 5:
            v = bytes(data[i:i + 4])
            i += 4
        else:
            raise ValueError("bad wire type %d" % wt)
        out.append((field, wt, v))
    return out


def _read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def infer_request(model="identity", nbytes=64, request_id="", seed=1):
    """A ModelInferRequest: one FP32 input INPUT0 of nbytes (a multiple of 4) bytes."""
    data = bytes((seed + i) & 0xFF for i in range(min(nbytes, 256)))
    data = (data * (nbytes // max(len(data), 1) + 1))[:nbytes]
    tensor = pb_bytes(1, "INPUT0") + pb_bytes(2, "FP32") + pb_packed_int64(3, [1, nbytes // 4])
    out = pb_bytes(1, model)
    if request_id:
        out += pb_bytes(3, request_id)
    return out + pb_bytes(5, tensor) + pb_bytes(7, data)


def served_by(response_message):
    """The `served_by` string parameter infergate-sim stamps into a ModelInferResponse."""
    try:
        for field, _, value in pb_fields(response_message):
            if field != 4:
                continue
            entry = dict((f, v) for f, _, v in pb_fields(value))
            if entry.get(1) == b"served_by":
                param = dict((f, v) for f, _, v in pb_fields(entry.get(2, b"")))
                return param.get(3, b"").decode()
    except (ValueError, IndexError):
        pass
    return ""


def grpc_frame(message, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def grpc_messages(data):
    """The messages of a gRPC body (5-byte prefix each); incomplete tail ignored."""
    out = []
    i = 0
    while i + 5 <= len(data):
        n = struct.unpack(">I", data[i + 1:i + 5])[0]
        if i + 5 + n > len(data):
            break
        out.append(bytes(data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


class Repeated:
    """A huge byte string as its parts: `head`, then `chunk` `count` times, then `tail`,
    without holding it whole."""

    def __init__(self, head, chunk, count, tail=b""):
        self.head, self.chunk, self.count, self.tail = head, chunk, count, tail

    def __len__(self):
        return len(self.head) + len(self.chunk) * self.count + len(self.tail)

    def parts(self):
        if self.head:
            yield self.head
        for _ in range(self.count):
            yield self.chunk
        if self.tail:
            yield self.tail


def gzip_repeated(head, byte, count_mib, tail=b""):
    """gzip bytes that inflate to head + count_mib MiB of `byte` + tail, built in
    milliseconds: a 1 MiB segment is deflated once after a full flush (so it refers to
    nothing before it) and repeated; each repeat costs about 1 KiB on the wire."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = bytes([byte]) * MIB
    segment = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert segment == again, "a full-flushed deflate segment must repeat byte for byte"
    last = c.compress(tail) + c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    for _ in range(count_mib):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    size = (len(head) + count_mib * MIB + len(tail)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return b"".join([header, first, segment * count_mib, last, struct.pack("<II", crc, size)])


# ---------------------------------------------------------------------------------------
# A raw HTTP/2 gRPC client (python3-h2)


class StreamState:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None
        self.trailers = None
        self.data = bytearray()
        self.data_bytes = 0
        self.ended = False
        self.reset_code = None
        self.started = time.monotonic()
        self.first_byte = None
        self.finished = None

    @property
    def done(self):
        return self.ended or self.reset_code is not None


class CallResult:
    """How one gRPC call ended, as the client saw it."""

    def __init__(self, st, conn, elapsed):
        self.sid = st.sid if st else None
        fields = {}
        if st is not None:
            for src in (st.headers or {}, st.trailers or {}):
                fields.update(src)
        self.http_status = fields.get(":status")
        code = fields.get("grpc-status")
        self.code = int(code) if code is not None and code.isdigit() else None
        self.message = urllib.parse.unquote(fields.get("grpc-message", ""))
        self.headers = fields
        self.reset_code = st.reset_code if st else None
        self.goaway = conn.goaway_code
        self.closed = conn.closed
        self.body = bytes(st.data) if st else b""
        self.body_bytes = st.data_bytes if st else 0
        self.elapsed = elapsed
        self.finished = st is not None and st.done

    @property
    def ok(self):
        return self.code == OK

    def messages(self):
        return grpc_messages(self.body)

    def __repr__(self):
        return ("grpc-status=%s grpc-message=%r rst=%s goaway=%s closed=%s http=%s "
                "after %.2fs" % (code_name(self.code), self.message[:200],
                                 h2_error_name(self.reset_code), h2_error_name(self.goaway),
                                 self.closed, self.http_status, self.elapsed))


class _Pumping:
    """pump() and pump_until() for a connection that has pump_once(seconds) and closed."""

    def pump(self, seconds=0.0):
        """Reads and handles whatever arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            self.pump_once(deadline - time.monotonic())
            if time.monotonic() >= deadline:
                return

    def pump_until(self, condition, timeout):
        """Pumps until condition() holds (True) or timeout passes (condition's value)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.closed or time.monotonic() >= deadline:
                return condition()
            self.pump_once(min(0.05, deadline - time.monotonic()))
        return True


class H2Client(_Pumping):
    """One client HTTP/2 connection, driven from one thread at a time. `window` is the
    stream and connection receive window it announces (0: a reader that never lets the
    server send DATA); `auto_ack` credits received DATA back at once."""

    def __init__(self, port, window=1 << 20, auto_ack=True, keep_data=True, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20})
        self.conn.initiate_connection()
        if window > 65535:
            self.conn.increment_flow_control_window(window * 4)
        self.auto_ack = auto_ack
        self.keep_data = keep_data
        self.streams = {}
        self.goaway_code = None
        self.goaway_time = None
        self.closed = False
        self.closed_time = None
        self.protocol_error = None
        self._out = bytearray()
        self.flush()

    # -- transport

    def flush(self, deadline=None):
        """Writes what h2 has queued; gives up (keeping it) when the socket will not take
        more before `deadline` (default: now)."""
        self._out += self.conn.data_to_send()
        while self._out and not self.closed:
            try:
                n = self.sock.send(self._out)
                del self._out[:n]
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    return False
                self._wait(deadline, write=True)
            except OSError:
                self._mark_closed()
        return not self._out

    def _wait(self, deadline, write=False):
        left = max(0.0, min(0.05, deadline - time.monotonic()))
        if write:
            r, w, _ = select.select([self.sock], [self.sock], [], left)
            if r:
                self._read_once()
        else:
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._read_once()

    def _mark_closed(self):
        if not self.closed:
            self.closed = True
            self.closed_time = time.monotonic()

    def _read_once(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            self._mark_closed()
            return
        if not data:
            self._mark_closed()
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.protocol_error = repr(e)
            self._mark_closed()
            return
        for ev in events:
            self._on_event(ev)
        self._out += self.conn.data_to_send()

    def pump_once(self, seconds=0.0):
        """Waits up to `seconds` for bytes, and handles what came."""
        if self.closed:
            return
        self.flush()
        r, _, _ = select.select([self.sock], [], [], max(0.0, seconds))
        if r:
            self._read_once()
        self.flush()

    def _on_event(self, ev):
        now = time.monotonic()
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = dict(ev.headers)
            st.first_byte = st.first_byte or now
            if ev.stream_ended:
                st.ended = True
                st.finished = now
        elif isinstance(ev, h2.events.TrailersReceived) and st:
            st.trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if st:
                st.data_bytes += len(ev.data)
                if self.keep_data:
                    st.data += ev.data
                st.first_byte = st.first_byte or now
            if self.auto_ack and ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    pass
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
            st.finished = st.finished or now
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset_code = int(ev.error_code)
            st.finished = st.finished or now
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway_code = int(ev.error_code)
            self.goaway_time = now

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self._mark_closed()

    # -- gRPC

    def start(self, method, headers=(), grpc_timeout=None, encoding=None):
        """Opens a stream for `method` (a name in GRPCInferenceService, or a full path)."""
        path = method if method.startswith("/") else SERVICE + method
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path),
                (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                ("te", "trailers")]
        if grpc_timeout is not None:
            hdrs.append(("grpc-timeout", "%dm" % max(1, int(grpc_timeout * 1000))))
        if encoding:
            hdrs.append(("grpc-encoding", encoding))
        hdrs += list(headers)
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, hdrs)
        self.streams[sid] = StreamState(sid)
        self.flush(time.monotonic() + 5)
        return sid

    def send(self, sid, data, end_stream=False, deadline=None, frame=16384, pace=0.0):
        """Sends bytes (or a Repeated) on stream sid as flow control allows, in DATA frames
        of at most `frame` bytes, `pace` seconds apart (a slow client: each frame reaches
        the gateway on its own). Returns the bytes sent; stops early when the stream ends,
        is reset, the connection goes, or the deadline passes."""
        deadline = deadline or time.monotonic() + 30
        st = self.streams[sid]
        parts = iter(data.parts() if isinstance(data, Repeated) else [data])
        sent = 0
        part = next(parts, None)
        while part is not None:
            following = next(parts, None)
            view = memoryview(part)
            while len(view):
                if st.done or self.closed or time.monotonic() >= deadline:
                    return sent
                try:
                    window = min(self.conn.local_flow_control_window(sid),
                                 self.conn.max_outbound_frame_size, frame)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    return sent
                if window <= 0 or self._out:
                    if not self.flush():
                        self._wait(deadline, write=True)
                    else:
                        self._wait(min(deadline, time.monotonic() + 0.05))
                    continue
                n = min(window, len(view))
                last = end_stream and following is None and n == len(view)
                try:
                    self.conn.send_data(sid, view[:n].tobytes(), end_stream=last)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError,
                        h2.exceptions.FlowControlError):
                    return sent
                view = view[n:]
                sent += n
                self.flush()
                if pace:
                    self._wait(time.monotonic() + pace)
                else:
                    self._read_pending()
                if last:
                    self.flush(deadline)
                    return sent
            part = following
        if end_stream and not st.done and not self.closed:
            try:
                self.conn.end_stream(sid)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            self.flush(deadline)
        return sent

    def _read_pending(self):
        r, _, _ = select.select([self.sock], [], [], 0)
        if r:
            self._read_once()

    def wait(self, sid, timeout):
        """Waits until stream sid is answered (or reset, or the connection goes)."""
        st = self.streams[sid]
        self.pump_until(lambda: st.done, timeout)
        return CallResult(st, self, time.monotonic() - st.started)

    def call(self, method, message=b"", timeout=10.0, grpc_timeout=None, headers=(),
             encoding=None, compressed=False, body=None):
        """One unary call: the message framed (or `body` as given), then the answer."""
        sid = self.start(method, headers, grpc_timeout, encoding)
        deadline = time.monotonic() + timeout
        payload = body if body is not None else grpc_frame(message, compressed)
        self.send(sid, payload, end_stream=True, deadline=deadline)
        return self.wait(sid, max(0.0, deadline - time.monotonic()))

    def reset(self, sid, code=CANCEL):
        try:
            self.conn.reset_stream(sid, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.flush()


def unary(port, method, message=b"", timeout=10.0, **kw):
    """One call on a fresh connection."""
    try:
        c = H2Client(port)
    except OSError as e:
        return "connect failed: %r" % e
    try:
        return c.call(method, message, timeout=timeout, **kw)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------
# Hand-made frames, for what h2 will not send


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7FFFFFFF) + payload


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def request_headers(method, extra=()):
    path = method if method.startswith("/") else SERVICE + method
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
            ("te", "trailers")] + list(extra)


def hpack_int(value, prefix_bits, first_byte=0):
    """An HPACK integer with an N-bit prefix (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, index=False):
    """One header field as a literal with a new name: without indexing (the decoder's
    table is untouched), or with incremental indexing (it becomes dynamic index 62)."""
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return (b"\x40" if index else b"\x00") + hpack_int(len(name), 7) + name + \
        hpack_int(len(value), 7) + value


def hpack_block(headers):
    """A header block of literals without indexing: the same bytes every time."""
    return b"".join(hpack_literal(n, v) for n, v in headers)


def pump_many(conns, condition, timeout, step=0.05):
    """Reads on many RawConns at once until condition() holds (True) or timeout (False)."""
    sel = selectors.DefaultSelector()
    for c in conns:
        if not c.closed:
            sel.register(c.sock, selectors.EVENT_READ, c)
    deadline = time.monotonic() + timeout
    next_check = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_check:
                if condition():
                    return True
                next_check = now + step
            if now >= deadline:
                return condition()
            for key, _ in sel.select(max(0.0, min(next_check, deadline) - now)):
                c = key.data
                c._read_once()
                c._send_acks()
                if c.closed:
                    sel.unregister(c.sock)
    finally:
        sel.close()


class RawConn(_Pumping):
    """A TCP connection that writes hand-made frames and parses what comes back: GOAWAY,
    RST_STREAM, and header blocks (decoded, so grpc-status can be read)."""

    def __init__(self, port, preface=True, settings=(), timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened = time.monotonic()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.decoder.max_allowed_table_size = 1 << 16
        self.inbuf = bytearray()
        self.goaway_code = None
        self.goaway_time = None
        self.closed = False
        self.closed_time = None
        self.resets = {}
        self.headers = collections.defaultdict(dict)
        self.data = collections.defaultdict(int)
        self.ended = set()
        self.frames_in = 0
        self.settings_acks = 0
        self.ping_acks = 0
        # ACK the server's SETTINGS (only a peer that sent its own preface and SETTINGS
        # may send frames at all). ACKs are written between our own writes, never inside.
        self.auto_settings_ack = False
        self._acks_due = 0
        self._block = None
        if preface:
            self.sock.sendall(PREFACE + settings_frame(settings))
            self.auto_settings_ack = True

    def send(self, data, timeout=5.0):
        """Writes all of data; False if the peer is gone or will not take it in time."""
        if self.closed:
            return False
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while len(view):
            try:
                r, w, _ = select.select([self.sock], [self.sock], [],
                                        max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError):
                self._mark_closed()
                return False
            if r:
                self._read_once()
                if self.closed:
                    return False
            if w:
                try:
                    n = self.sock.send(view, socket.MSG_DONTWAIT)
                    view = view[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    self._mark_closed()
                    return False
            if time.monotonic() >= deadline and len(view):
                return False
        self._send_acks()
        return True

    def _send_acks(self):
        while self._acks_due and not self.closed:
            self._acks_due -= 1
            try:
                self.sock.sendall(settings_frame(ack=True))
            except OSError:
                self._mark_closed()

    def _mark_closed(self):
        if not self.closed:
            self.closed = True
            self.closed_time = time.monotonic()

    def _read_once(self):
        try:
            data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            self._mark_closed()
            return
        if not data:
            self._mark_closed()
            return
        self.inbuf += data
        self._parse()

    def _parse(self):
        while len(self.inbuf) >= 9:
            n = int.from_bytes(self.inbuf[0:3], "big")
            if len(self.inbuf) < 9 + n:
                return
            ftype, flags = self.inbuf[3], self.inbuf[4]
            sid = int.from_bytes(self.inbuf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.inbuf[9:9 + n])
            del self.inbuf[:9 + n]
            self.frames_in += 1
            self._on_frame(ftype, flags, sid, payload)

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == GOAWAY and len(payload) >= 8:
            if self.goaway_code is None or self.goaway_code == NO_ERROR:
                self.goaway_code = int.from_bytes(payload[4:8], "big")
                self.goaway_time = time.monotonic()
        elif ftype == RST_STREAM and len(payload) >= 4:
            self.resets[sid] = int.from_bytes(payload[0:4], "big")
        elif ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            elif self.auto_settings_ack:
                self._acks_due += 1
        elif ftype == PING and flags & ACK:
            self.ping_acks += 1
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                pad = payload[0] if flags & 0x8 else 0
                body = payload[1:] if flags & 0x8 else payload
                if flags & 0x20:
                    body = body[5:]
                body = body[:len(body) - pad] if pad else body
                self._block = [sid, bytearray(body), bool(flags & END_STREAM)]
            elif self._block:
                self._block[1] += payload
            if flags & END_HEADERS and self._block:
                bsid, block, end = self._block
                self._block = None
                try:
                    for k, v in self.decoder.decode(bytes(block), raw=True):
                        self.headers[bsid][k.decode("latin-1")] = v.decode("latin-1")
                except Exception as e:  # a decode failure is itself a finding
                    self.headers[bsid]["x-decode-error"] = repr(e)
                if end:
                    self.ended.add(bsid)
        elif ftype == DATA:
            self.data[sid] += len(payload)
            if flags & END_STREAM:
                self.ended.add(sid)

    def pump_once(self, seconds=0.0):
        """Waits up to `seconds` for bytes, and handles what came."""
        if self.closed:
            return
        try:
            r, _, _ = select.select([self.sock], [], [], max(0.0, seconds))
        except (OSError, ValueError):
            self._mark_closed()
            return
        if r:
            self._read_once()
            self._send_acks()

    def wait_closed(self, timeout):
        """Reads until the peer closes the connection (True) or timeout passes (False)."""
        return self.pump_until(lambda: self.closed, timeout)

    def grpc_status(self, sid):
        v = self.headers.get(sid, {}).get("grpc-status")
        return int(v) if v is not None and v.isdigit() else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------
# Watching the gateway while a test runs


class Monitor:
    """Samples, every ~50 ms until stopped: whether the gateway lives, its RSS, and
    infergate_buffered_bytes from /metrics."""

    def __init__(self, gateway, interval=0.05):
        self.gw = gateway
        self.interval = interval
        self.peak_buffered = 0.0
        self.peak_rss = 0
        self.died = False
        self.scrape_failures = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        if not self.gw.alive():
            self.died = True
            return
        rss, _ = self.gw.memory()
        self.peak_rss = max(self.peak_rss, rss)
        text = self.gw.metrics_text()
        value = metric_value(text, "infergate_buffered_bytes")
        if value < 0:
            self.scrape_failures += 1
        else:
            self.peak_buffered = max(self.peak_buffered, value)
        self.samples += 1

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.sample()


class NormalClient:
    """A well-behaved client on its own connection to the gateway: ServerLive (and, if
    `infer`, a small ModelInfer) in a loop, each with a 5 s deadline, until stopped."""

    def __init__(self, port, infer=False, interval=0.05):
        self.port = port
        self.infer = infer
        self.interval = interval
        self.calls = []  # (start, end, ok, detail)
        self._stop = threading.Event()
        self._conn = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _one(self):
        if self._conn is None or self._conn.closed or self._conn.goaway_code is not None:
            if self._conn is not None:
                self._conn.close()
            self._conn = H2Client(self.port)
        if self.infer:
            return self._conn.call("ModelInfer", infer_request(nbytes=256), timeout=5,
                                   grpc_timeout=5)
        return self._conn.call("ServerLive", b"", timeout=5, grpc_timeout=5)

    def _run(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                r = self._one()
                ok, detail = r.ok, repr(r)
                if not ok:
                    self._conn.close()
                    self._conn = None
            except OSError as e:
                ok, detail = False, "connection failed: %r" % e
                self._conn = None
            self.calls.append((start, time.monotonic(), ok, detail))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        if self._conn is not None:
            self._conn.close()

    def served_between(self, t0, t1):
        return sum(1 for s, e, ok, _ in self.calls if ok and e >= t0 and s <= t1)

    def failures(self):
        return [(s, e, d) for s, e, ok, d in self.calls if not ok]


# ---------------------------------------------------------------------------------------
# Helper processes


def _fake_backend_main(args):
    name = args[args.index("--name") + 1]
    mode = args[args.index("--mode") + 1]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    lock = threading.Lock()

    def say(text):
        with lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    say("%s listening on 127.0.0.1:%d" % (name, listener.getsockname()[1]))
    model_index = pb_bytes(1, pb_bytes(1, "identity") + pb_bytes(2, "1") + pb_bytes(3, "READY"))
    answers = {
        "ServerLive": pb_varint(8) + pb_varint(1),       # live = true
        "ServerReady": pb_varint(8) + pb_varint(1),      # ready = true
        "ModelReady": pb_varint(8) + pb_varint(1),
        "ServerMetadata": pb_bytes(1, "triton") + pb_bytes(2, "2.41.0"),
        "RepositoryIndex": model_index,
        "/grpc.health.v1.Health/Check": pb_varint(8) + pb_varint(1),  # SERVING
    }

    def serve(sock, cid):
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                           validate_inbound_headers=False)
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        infer = set()
        methods = {}
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        path = dict(ev.headers).get(":path", "")
                        method = path.rsplit("/", 1)[-1] if path.startswith(SERVICE) else path
                        methods[ev.stream_id] = method
                        if method == "ModelInfer":
                            infer.add(ev.stream_id)
                            say("infer_started conn=%d stream=%d" % (cid, ev.stream_id))
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in infer and mode == "hang-noread":
                            continue
                        if ev.flow_controlled_length:
                            conn.acknowledge_received_data(ev.flow_controlled_length,
                                                           ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        method = methods.get(ev.stream_id)
                        if method == "ModelInfer" and mode == "huge-headers":
                            # An answer whose header block decodes to 256 KiB.
                            conn.send_headers(ev.stream_id, [
                                (":status", "200"), ("content-type", "application/grpc")] +
                                [("x-big-%d" % i, "v" * 4000) for i in range(64)])
                            continue
                        if method == "ModelInfer":
                            continue  # never answered
                        headers = [(":status", "200"), ("content-type", "application/grpc")]
                        if method in answers:
                            conn.send_headers(ev.stream_id, headers)
                            conn.send_data(ev.stream_id, grpc_frame(answers[method]))
                            conn.send_headers(ev.stream_id, [("grpc-status", "0")],
                                              end_stream=True)
                        else:
                            conn.send_headers(ev.stream_id, headers + [
                                ("grpc-status", "12"), ("grpc-message", "not in fake")],
                                end_stream=True)
                    elif isinstance(ev, h2.events.StreamReset):
                        if ev.stream_id in infer:
                            infer.discard(ev.stream_id)
                            say("stream_reset conn=%d stream=%d code=%d" %
                                (cid, ev.stream_id, ev.error_code))
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        say("goaway conn=%d code=%d" % (cid, ev.error_code))
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        except (OSError, h2.exceptions.ProtocolError) as e:
            say("conn_error conn=%d %r" % (cid, e))
        say("conn_closed conn=%d open_infer=%d" % (cid, len(infer)))
        sock.close()

    cid = 0
    while True:
        sock, _ = listener.accept()
        cid += 1
        threading.Thread(target=serve, args=(sock, cid), daemon=True).start()


def _victim_main(args):
    """A ModelInfer client whose answer is large: prints `response_began` once 1 MiB of
    it has arrived, then reads no more until a line comes on stdin; then reads on and
    prints `result ...` with how the stream ended."""
    port = int(args[args.index("--port") + 1])
    nbytes = int(args[args.index("--bytes") + 1])
    c = H2Client(port, window=1 << 20, keep_data=False)
    sid = c.start("ModelInfer", grpc_timeout=60)
    c.send(sid, grpc_frame(infer_request(nbytes=nbytes)), end_stream=True,
           deadline=time.monotonic() + 30)
    st = c.streams[sid]
    c.pump_until(lambda: st.data_bytes >= MIB or st.done, 30)
    sys.stdout.write("response_began bytes=%d done=%s\n" % (st.data_bytes, st.done))
    sys.stdout.flush()
    sys.stdin.readline()  # frozen here (and SIGSTOPped) until told to go on
    r = c.wait(sid, 20)
    sys.stdout.write("result code=%s reset=%s goaway=%s closed=%s bytes=%d\n" % (
        r.code, r.reset_code, r.goaway, r.closed, r.body_bytes))
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "fake-backend":
        _fake_backend_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "victim":
        _victim_main(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
