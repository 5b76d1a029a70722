#!/usr/bin/python3
"""Python oslo.messaging side of ``omsg bench``.

pybench.py runs the load of oslo.messaging's tools/simulator.py with the
real Python library, so that a run of ``omsg bench`` (the Go library) or
``omsg bench raw`` (bare amqp091-go) can be compared with Python on the
same broker, with the same command line and the same JSON output.

Usage (global flags before the mode, as in the simulator)::

    pybench.py [--url URL] [-d] [-tp TOPIC] [-s SERVER] [-tg TOPIC.SERVER ...]
               [-l SECONDS] [-j FILE] [--config-file FILE] [--payload-size N]
               MODE [mode flags]

    rpc-server          [-w SECONDS_BEFORE_ANSWER] [-e EXECUTOR]
    rpc-client          [-p THREADS] [-m MESSAGES] [-w SECONDS] [--timeout S]
                        [--exit-wait S] [--is-cast] [--is-fanout]
                        [--sync call|fanout]
    notify-server       [-w SECONDS] [--requeue]
    batch-notify-server [-w SECONDS] [--requeue]
    notify-client       [-p THREADS] [-m MESSAGES] [-w SECONDS] [--timeout S]

Semantics follow the simulator: an RPC server serves ``info(ctxt,
message)`` where message is the list [seq, cargo, client_ts, server_ts,
return_ts] and returns it with server_ts set, plus the control methods
``sync_start`` and ``sync_done``; clients run THREADS closed-loop senders
that start on the next whole second and send for -l seconds, else -m
messages each. Differences, all part of the omsg bench contract:

* Servers print ``omsg bench: ready`` on stderr once they consume, and
  run until -l seconds pass, a --sync stop, or SIGINT/SIGTERM; then they
  print the summary and write the -j file. Logs go to stderr, so stdout
  holds the summary only.
* ``--payload-size N`` makes every cargo exactly N characters; without
  it (or with 0) lengths follow the simulator's distribution, from the
  table LENGTH_WEIGHTS below (tools/messages_length.yaml bucketed by 500
  characters, the table of package internal/bench).
* Notifications are sent with the messagingv2 driver (the simulator's
  'messaging' driver sends version 1.0 messages, which services no
  longer use). --requeue asks the listener to requeue (allow_requeue),
  so that a seq seen for the first time is really delivered again; a
  batch is requeued whole when it holds a seq seen for the first time.
  As in the simulator, a server's -w pause is taken before a requeue.
* Statistics are those of the simulator's MessageStatsCollector (one
  point per second, the summary of calc_stats) computed from each
  sample's own timestamp rather than by a timer, plus p50/p90/p99
  latencies from a log-bucketed histogram (relative error below 0.5 %),
  first_ts/last_ts of each stream and a "process" block: CPU seconds
  (user+system, resource.getrusage) and wall seconds of the run, that is
  from the start of the mode (after imports and payload generation) to
  the end of the sending or serving, the messages sent or received, the
  CPU seconds per message and the peak resident set size.
* --timeout bounds each call; as in the simulator, notify-client accepts
  it and does not use it, and rpc-server's -e chooses oslo's executor.
* Exit status: 0 after the summary; 1 when a client could not send a
  single message; 2 when the broker cannot be reached; 64 for a usage
  error.

Concurrency: eventlet, as simulator.py. The module monkey-patches the
standard library before oslo.messaging is imported, senders are green
threads of one GreenPool sharing one transport, and servers use oslo's
eventlet executor by default (-e threading selects the other one).
Real threads with the threading executor were measured on the reference
machine (2 cores, RabbitMQ 3.10.8, oslo.messaging 14.0.3, 5 s of calls
to a server of the same kind): they made 5 to 25 % fewer calls per
second than eventlet with 1, 8 and 64 senders (GIL contention between
the senders, the executor's workers and kombu's reply thread), so
eventlet is kept: it is faster here and it is what the simulator
measures.
"""

import eventlet

eventlet.monkey_patch()

# The imports below must come after monkey-patching.
import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402

LOG = logging.getLogger('pybench')

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_UNAVAILABLE = 2
EXIT_USAGE = 64

MODES = ('rpc-server', 'rpc-client', 'notify-server', 'batch-notify-server',
         'notify-client')

READY_LINE = 'omsg bench: ready'

USAGE = ('pybench.py [--url URL] [-d] [-tp TOPIC] [-s SERVER] '
         '[-tg TOPIC.SERVER ...] [-l SECONDS] [-j FILE] [--config-file FILE] '
         '[--payload-size N] {%s} [mode flags]' % ','.join(MODES))

# Global flags that take one value, and their aliases.
VALUE_FLAGS = ('--url', '-tp', '--topic', '-s', '--server', '-l', '-j',
               '--json', '--config-file', '--payload-size')

# The cargo lengths of the simulator: (bucket start, weight). A length is
# start + uniform[0, 500). The weights are the counts of the lengths of
# oslo.messaging's tools/messages_length.yaml in each 500-character
# bucket; the same table is in package internal/bench.
LENGTH_BUCKET = 500
LENGTH_WEIGHTS = (
    (501, 56), (1001, 105), (1501, 801), (2001, 1166), (2501, 616),
    (3001, 150), (3501, 100), (4001, 37), (4501, 177), (5001, 250),
    (5501, 99), (6001, 154), (6501, 211), (7001, 52), (7501, 53),
    (11001, 50),
)

# At most this many cargos are generated; senders cycle through them.
CARGO_LIMIT = 1000

# Set by the signal handlers and by the end of a timed run: senders stop
# after their current message and servers stop.
RUNNING = True
# A Unix time at which a server stops, set by the last sync_done.
STOP_AT = None


class UsageError(Exception):
    """A command line that cannot be run."""


class Unavailable(Exception):
    """The broker cannot be reached."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors raised as UsageError (exit 64)."""

    def error(self, message):
        raise UsageError(message)


# --- statistics -------------------------------------------------------------

class Histogram:
    """Counts of positive values in buckets growing by 1 %.

    A value is reported as the geometric middle of its bucket, so the
    relative error of a percentile is below 0.5 %.
    """

    GROWTH = 1.01

    def __init__(self):
        self.buckets = {}
        self.zeros = 0
        self.count = 0
        self._log_growth = math.log(self.GROWTH)

    def add(self, value):
        self.count += 1
        if value <= 1e-9:
            self.zeros += 1
            return
        i = math.floor(math.log(value) / self._log_growth)
        self.buckets[i] = self.buckets.get(i, 0) + 1

    def merge(self, other):
        self.count += other.count
        self.zeros += other.zeros
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n

    def percentile(self, p):
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.count))
        seen = self.zeros
        if seen >= rank:
            return 0.0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                return self.GROWTH ** (i + 0.5)
        return self.GROWTH ** (max(self.buckets) + 0.5)


class Stream:
    """One stream of samples (client_<i>, error_<i>, round_trip_<i>, server).

    Samples are put in the one-second point that the simulator's
    collector, firing on every whole second, would have reported them
    in: a sample at time t belongs to the point stamped int(t) + 1.
    """

    def __init__(self, label):
        self.label = label
        self.lock = threading.Lock()
        self.begin = time.time()
        self.points = {}  # second -> [count, size, lat_sum, lat_n, min, max]
        self.histogram = Histogram()
        self.count = 0
        self.first_ts = None
        self.last_ts = None

    def record(self, ts, size, latency=None):
        second = int(ts) + 1
        with self.lock:
            p = self.points.get(second)
            if p is None:
                p = self.points[second] = [0, 0, 0.0, 0, None, None]
            p[0] += 1
            p[1] += size
            if latency is not None:
                p[2] += latency
                p[3] += 1
                p[4] = latency if p[4] is None else min(p[4], latency)
                p[5] = latency if p[5] is None else max(p[5], latency)
                self.histogram.add(latency)
            self.count += 1
            if self.first_ts is None or ts < self.first_ts:
                self.first_ts = ts
            if self.last_ts is None or ts > self.last_ts:
                self.last_ts = ts

    def series(self, end):
        """The points from the stream's start to end, one a second."""
        with self.lock:
            first = int(self.begin) + 1
            last = int(end) + 1
            if self.points:
                first = min(first, min(self.points))
                last = max(last, max(self.points))
            out = []
            for seq, second in enumerate(range(first, last + 1)):
                p = self.points.get(second, [0, 0, 0.0, 0, None, None])
                point = dict(seq=seq, timestamp=float(second), count=p[0],
                             size=p[1])
                if p[3]:
                    point.update(latency=p[2] / p[3], min_latency=p[4],
                                 max_latency=p[5])
                out.append(point)
            return out


def summarize(streams, end):
    """The summary of streams, as the simulator's calc_stats, plus ours."""
    count = size = lat_n = 0
    lat_sum = 0.0
    min_lat = max_lat = None
    start = end_ts = None
    first_ts = last_ts = None
    hist = Histogram()
    for s in streams:
        for point in s.series(end):
            count += point['count']
            size += point['size']
            if point['count']:
                ts = point['timestamp']
                start = ts if start is None else min(start, ts)
                end_ts = ts if end_ts is None else max(end_ts, ts)
        with s.lock:
            for p in s.points.values():
                if p[3]:
                    lat_sum += p[2]
                    lat_n += p[3]
                    min_lat = p[4] if min_lat is None else min(min_lat, p[4])
                    max_lat = p[5] if max_lat is None else max(max_lat, p[5])
            hist.merge(s.histogram)
            if s.first_ts is not None:
                first_ts = (s.first_ts if first_ts is None
                            else min(first_ts, s.first_ts))
                last_ts = (s.last_ts if last_ts is None
                           else max(last_ts, s.last_ts))
    duration = 0.0
    if count:
        start -= 1  # the first point holds the second before it
        duration = end_ts - start
    stats = dict(count=count, size=size, duration=duration, count_p_s=0,
                 size_p_s=0)
    if duration:
        stats.update(start=start, end=end_ts, count_p_s=count / duration,
                     size_p_s=size / duration)
    if lat_n:
        stats.update(latency=lat_sum / lat_n, min_latency=min_lat,
                     max_latency=max_lat,
                     p50_latency=hist.percentile(50),
                     p90_latency=hist.percentile(90),
                     p99_latency=hist.percentile(99))
    if count:
        stats.update(first_ts=first_ts, last_ts=last_ts)
    return stats


def summary_line(label, stats):
    line = ('%s: duration: %.2f count: %d (%.1f msg/sec) bytes: %d (%.0f bps)'
            % (label, stats['duration'], stats['count'], stats['count_p_s'],
               stats['size'], stats['size_p_s']))
    if 'latency' in stats:
        line += (' latency: %.3f min: %.3f max: %.3f p50: %.3f p90: %.3f'
                 ' p99: %.3f' % (stats['latency'], stats['min_latency'],
                                 stats['max_latency'], stats['p50_latency'],
                                 stats['p90_latency'], stats['p99_latency']))
    if stats['count'] > 1 and stats['last_ts'] > stats['first_ts']:
        rate = (stats['count'] - 1) / (stats['last_ts'] - stats['first_ts'])
        line += ' rate: %.1f msg/sec' % rate
    return line


class Process:
    """CPU and wall time of the run, from its start to finish()."""

    def __init__(self):
        self.cpu0 = self._cpu()
        self.wall0 = time.time()
        self.cpu = self.wall = None

    @staticmethod
    def _cpu():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def finish(self):
        if self.cpu is None:
            self.cpu = self._cpu() - self.cpu0
            self.wall = time.time() - self.wall0

    def block(self, messages):
        self.finish()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return dict(cpu_seconds=self.cpu, wall_seconds=self.wall,
                    messages=messages,
                    cpu_s_per_msg=self.cpu / messages if messages else None,
                    max_rss_bytes=rss)


def process_line(p):
    line = ('process: cpu: %.2f s wall: %.2f s messages: %d'
            % (p['cpu_seconds'], p['wall_seconds'], p['messages']))
    if p['cpu_s_per_msg'] is not None:
        line += ' cpu/msg: %.0f us' % (p['cpu_s_per_msg'] * 1e6)
    return line + ' max rss: %.1f MiB' % (p['max_rss_bytes'] / 1048576.0)


def write_output(path, output):
    if not path:
        return
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(output, f)
    os.replace(tmp, path)


# --- payloads ---------------------------------------------------------------

def cargo_length(rnd):
    total = sum(w for _, w in LENGTH_WEIGHTS)
    r = rnd.random() * total
    for start, weight in LENGTH_WEIGHTS:
        if r < weight:
            return start + rnd.randrange(LENGTH_BUCKET)
        r -= weight
    start = LENGTH_WEIGHTS[-1][0]
    return start + rnd.randrange(LENGTH_BUCKET)


def make_cargos(n, size):
    rnd = random.Random()
    letters = string.ascii_lowercase
    out = []
    for _ in range(max(1, min(n, CARGO_LIMIT))):
        length = size if size > 0 else cargo_length(rnd)
        out.append(''.join(rnd.choices(letters, k=length)))
    return out


# --- servers ----------------------------------------------------------------

def check_message(message):
    if not isinstance(message, (list, tuple)) or len(message) != 5:
        raise ValueError('message must be [seq, cargo, client_ts, '
                         'server_ts, return_ts], got %r' % (message,))
    return list(message)


class RPCEndpoint:
    """Serves info(ctxt, message) as the simulator's RpcEndpoint."""

    def __init__(self, stream, wait):
        self.stream = stream
        self.wait = wait

    def info(self, ctxt, message):
        now = time.time()
        reply = check_message(message)
        reply[3] = now
        self.stream.record(now, len(reply[1]), now - float(reply[2]))
        if self.wait > 0:
            time.sleep(self.wait)
        return reply


class ControlEndpoint:
    """sync_start and sync_done: the server stops 1 s after the last done."""

    def __init__(self):
        self.clients = set()

    def sync_start(self, ctxt, message):
        self.clients.add(message['id'])
        LOG.info('client %s started', message['id'])

    def sync_done(self, ctxt, message):
        global STOP_AT
        self.clients.discard(message['id'])
        LOG.info('client %s done', message['id'])
        if not self.clients:
            STOP_AT = time.time() + 1


class NotifyEndpoint:
    """info(ctxt, publisher_id, event_type, payload, metadata)."""

    def __init__(self, stream, wait, requeue):
        self.stream = stream
        self.wait = wait
        self.requeue = requeue
        self.seen = set()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        now = time.time()
        message = check_message(payload)
        self.stream.record(now, len(message[1]), now - float(message[2]))
        if self.requeue and message[0] not in self.seen:
            self.seen.add(message[0])
            if self.wait > 0:
                time.sleep(self.wait)
            return messaging.NotificationResult.REQUEUE
        return messaging.NotificationResult.HANDLED


class BatchNotifyEndpoint:
    """info(batch): every item's payload is a message."""

    def __init__(self, stream, wait, requeue):
        self.stream = stream
        self.wait = wait
        self.requeue = requeue
        self.seen = set()

    def info(self, batch):
        now = time.time()
        fresh = False
        for item in batch:
            message = check_message(item['payload'])
            self.stream.record(now, len(message[1]), now - float(message[2]))
            if message[0] not in self.seen:
                self.seen.add(message[0])
                fresh = True
        if self.requeue and fresh:
            if self.wait > 0:
                time.sleep(self.wait)
            return messaging.NotificationResult.REQUEUE
        return messaging.NotificationResult.HANDLED


def serve(server, duration):
    """Start server, report readiness, run until told to stop, stop it."""
    server.start()
    print(READY_LINE, file=sys.stderr, flush=True)
    deadline = time.time() + duration if duration else None
    while RUNNING:
        now = time.time()
        if deadline is not None and now >= deadline:
            break
        if STOP_AT is not None and now >= STOP_AT:
            break
        time.sleep(0.1)
    server.stop()
    server.wait()


def run_server(args, transport):
    stream = Stream('server')
    proc = Process()
    if args.mode == 'rpc-server':
        target = messaging.Target(topic=args.topic, server=args.server)
        endpoints = [RPCEndpoint(stream, args.wait), ControlEndpoint()]
        server = messaging.get_rpc_server(transport, target, endpoints,
                                          executor=args.executor)
    else:
        target = messaging.Target(topic=args.topic)
        if args.mode == 'notify-server':
            endpoints = [NotifyEndpoint(stream, args.wait, args.requeue)]
            server = messaging.get_notification_listener(
                transport, [target], endpoints, executor='eventlet',
                allow_requeue=args.requeue)
        else:
            endpoints = [BatchNotifyEndpoint(stream, args.wait, args.requeue)]
            server = messaging.get_batch_notification_listener(
                transport, [target], endpoints, executor='eventlet',
                allow_requeue=args.requeue, batch_size=1000,
                batch_timeout=5)
    try:
        serve(server, args.duration)
    finally:
        proc.finish()
        transport.cleanup()
    end = time.time()
    summary = summarize([stream], end)
    output = dict(series=dict(server=stream.series(end)), summary=summary,
                  process=proc.block(stream.count))
    print(summary_line('server', summary))
    print(process_line(output['process']))
    sys.stdout.flush()
    write_output(args.json, output)
    return EXIT_OK


# --- clients ----------------------------------------------------------------

class Sender:
    """One closed-loop sender: a simulator client thread."""

    def __init__(self, index, send, cargos, has_reply, wait_after):
        self.index = index
        self.send_fn = send
        self.cargos = cargos
        self.position = random.randrange(len(cargos))
        self.has_reply = has_reply
        self.wait_after = wait_after
        self.seq = 0
        self.sent = Stream('client-%d' % index)
        self.errors = Stream('error-%d' % index)
        self.round_trip = Stream('round-trip-%d' % index)
        self.failures = 0
        self.sync = None  # (method, client) for sync_start/sync_done

    def send(self):
        cargo = self.cargos[self.position]
        self.position = (self.position + 1) % len(self.cargos)
        client_ts = time.time()
        message = [self.seq, cargo, client_ts, 0, 0]
        self.seq += 1
        self.sent.record(client_ts, len(cargo))
        try:
            reply = self.send_fn(message)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            self.failures += 1
            self.errors.record(time.time(), len(cargo))
            log = LOG.warning if self.failures == 1 else LOG.debug
            log('sender %d: %s: %s', self.index, type(e).__name__, e)
        else:
            if self.has_reply and reply:
                return_ts = time.time()
                self.round_trip.record(return_ts, len(reply[1]),
                                       return_ts - client_ts)
        if self.wait_after > 0:
            time.sleep(self.wait_after)

    def sync_call(self, method):
        if self.sync is None:
            return True
        ident = '%d %x@%s' % (self.index, id(self), socket.gethostname())
        fn, client = self.sync
        try:
            fn(client, method, ident)
        except Exception as e:  # noqa: BLE001
            LOG.error('sender %d: %s failed: %s', self.index, method, e)
            return False
        return True

    def run(self, start, deadline, messages):
        time.sleep(max(0.0, start - time.time()))
        synced = self.sync_call('sync_start')
        if deadline is not None:
            while RUNNING and time.time() < deadline:
                self.send()
                time.sleep(0)
        else:
            for _ in range(messages):
                if not RUNNING:
                    break
                self.send()
                time.sleep(0)
        if self.sync is not None and synced:
            time.sleep(1)  # as the simulator, before reporting done
            self.sync_call('sync_done')


def sync_by_call(client, method, ident):
    client.call({}, method, message={'id': ident})


def sync_by_cast(client, method, ident):
    client.cast({}, method, message={'id': ident})


def parse_target(word, fanout):
    topic, _, server = word.partition('.')
    if not topic:
        raise UsageError('target %r has no topic' % word)
    return messaging.Target(topic=topic, server=server or None, fanout=fanout)


def make_senders(args, transport, cargos):
    senders = []
    if args.mode == 'rpc-client':
        targets = [parse_target(w, args.is_fanout) for w in args.targets]
        for i in range(args.threads):
            base = messaging.get_rpc_client(transport, targets[i % len(targets)])
            client = base.prepare(timeout=args.timeout)
            if args.is_cast:
                def send(message, client=client):
                    client.cast({}, 'info', message=message)
            else:
                def send(message, client=client):
                    return client.call({}, 'info', message=message)
            s = Sender(i, send, cargos, not args.is_cast, args.wait)
            if args.sync == 'call':
                s.sync = (sync_by_call, client)
            elif args.sync == 'fanout':
                s.sync = (sync_by_cast,
                          base.prepare(fanout=True, timeout=args.timeout))
            senders.append(s)
    else:
        for i in range(args.threads):
            notifier = messaging.Notifier(transport, driver='messagingv2',
                                          topics=[args.topic])
            notifier = notifier.prepare(publisher_id='publisher-%d' % i)

            def send(message, notifier=notifier):
                notifier.info({}, 'compute.start', message)
            senders.append(Sender(i, send, cargos, False, args.wait))
    return senders


def run_client(args, transport, cargos):
    global RUNNING
    has_reply = args.mode == 'rpc-client' and not args.is_cast
    proc = Process()
    try:
        senders = make_senders(args, transport, cargos)
        start = math.floor(time.time()) + 1  # the next whole second
        deadline = start + args.duration if args.duration else None
        pool = eventlet.GreenPool(size=max(1, args.threads))
        for s in senders:
            pool.spawn_n(s.run, start, deadline, args.messages)
        pool.waitall()
        RUNNING = False
        proc.finish()
        end = time.time()
        series = {}
        for s in senders:
            series['client_%d' % s.index] = s.sent.series(end)
            series['error_%d' % s.index] = s.errors.series(end)
            if has_reply:
                series['round_trip_%d' % s.index] = s.round_trip.series(end)
        summary = dict(client=summarize([s.sent for s in senders], end),
                       error=summarize([s.errors for s in senders], end))
        if has_reply:
            summary['round_trip'] = summarize(
                [s.round_trip for s in senders], end)
        sent = summary['client']['count']
        output = dict(series=series, summary=summary,
                      process=proc.block(sent))
        print(summary_line('client', summary['client']))
        print(summary_line('error', summary['error']))
        if has_reply:
            print(summary_line('round-trip', summary['round_trip']))
        print(process_line(output['process']))
        sys.stdout.flush()
        write_output(args.json, output)
        if args.mode == 'rpc-client' and args.exit_wait > 0:
            time.sleep(args.exit_wait)
    finally:
        transport.cleanup()
    if sent - summary['error']['count'] <= 0:
        print('pybench: no message could be sent', file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


# --- command line -----------------------------------------------------------

def split_mode(argv):
    """Split argv into the global flags, the mode and the mode's flags."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in MODES:
            return argv[:i], word, argv[i + 1:]
        if word in ('-h', '--help'):
            return argv[:i + 1], None, []
        i += 2 if word in VALUE_FLAGS else 1
    raise UsageError('no mode given: one of %s' % ', '.join(MODES))


def non_negative(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError('invalid number %r' % text)
        if value < 0 or value != value:
            raise argparse.ArgumentTypeError('%r is negative' % text)
        return value
    return parse


def positive_int(text):
    value = non_negative(int)(text)
    if value < 1:
        raise argparse.ArgumentTypeError('%r must be at least 1' % text)
    return value


def parse_args(argv):
    global_args, mode, mode_args = split_mode(argv)
    g = ArgumentParser(prog='pybench.py', usage=USAGE)
    g.add_argument('--url')
    g.add_argument('-d', '--debug', action='store_true')
    g.add_argument('-tp', '--topic', default='profiler_topic')
    g.add_argument('-s', '--server', default='profiler_server')
    g.add_argument('-tg', '--targets', nargs='+',
                   default=['profiler_topic.profiler_server'])
    g.add_argument('-l', dest='duration', type=non_negative(float),
                   default=0)
    g.add_argument('-j', '--json')
    g.add_argument('--config-file')
    g.add_argument('--payload-size', type=non_negative(int), default=0)
    args = g.parse_args(global_args)
    if mode is None:
        g.print_help()
        sys.exit(EXIT_OK)

    m = ArgumentParser(prog='pybench.py %s' % mode)
    if mode.endswith('server'):
        m.add_argument('-w', dest='wait', type=non_negative(float), default=0)
        if mode == 'rpc-server':
            m.add_argument('-e', '--executor', default='eventlet',
                           choices=('eventlet', 'threading'))
        else:
            m.add_argument('--requeue', action='store_true')
    else:
        m.add_argument('-p', dest='threads', type=positive_int, default=1)
        m.add_argument('-m', dest='messages', type=non_negative(int),
                       default=1)
        m.add_argument('-w', dest='wait', type=non_negative(float), default=0)
        m.add_argument('--timeout', type=non_negative(float), default=3)
        if mode == 'rpc-client':
            m.add_argument('--exit-wait', type=non_negative(float), default=0)
            m.add_argument('--is-cast', action='store_true')
            m.add_argument('--is-fanout', action='store_true')
            m.add_argument('--sync', choices=('call', 'fanout'))
    m.parse_args(mode_args, namespace=args)
    args.mode = mode
    if mode == 'rpc-client':
        for word in args.targets:
            if not word.partition('.')[0]:
                raise UsageError('target %r has no topic' % word)
    return args


def check_broker(transport_url):
    """Raise Unavailable unless one of the URL's RabbitMQ hosts answers."""
    if transport_url.transport not in ('rabbit', 'kombu', 'amqp'):
        return
    import kombu
    errors = []
    hosts = transport_url.hosts or [None]
    for h in hosts:
        conn = kombu.Connection(
            hostname=(h and h.hostname) or 'localhost',
            port=(h and h.port) or 5672,
            userid=(h and h.username) or 'guest',
            password=(h and h.password) or 'guest',
            virtual_host=transport_url.virtual_host or '/',
            ssl=(transport_url.query or {}).get('ssl') in ('1', 'true',
                                                           'True'),
            connect_timeout=5)
        try:
            conn.ensure_connection(max_retries=1)
            return
        except Exception as e:  # noqa: BLE001
            errors.append('%s: %s' % (type(e).__name__, e))
        finally:
            conn.release()
    raise Unavailable('; '.join(errors))


def on_signal(signum, frame):
    global RUNNING
    if not RUNNING:
        # A second signal ends the process at once.
        os._exit(128 + signum)
    RUNNING = False


def main(argv):
    try:
        args = parse_args(argv)
    except UsageError as e:
        print('pybench.py: %s' % e, file=sys.stderr)
        print('Run "pybench.py --help" for usage.', file=sys.stderr)
        return EXIT_USAGE

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.WARNING,
        format='%(asctime)s %(levelname)s %(name)s %(message)s')
    for name in ('kombu', 'amqp', 'stevedore'):
        logging.getLogger(name).setLevel(logging.WARNING)

    conf = cfg.CONF
    try:
        conf(['--config-file', args.config_file] if args.config_file else [],
             project='oslo.messaging', prog='pybench')
        if args.mode in ('rpc-server', 'rpc-client'):
            transport = messaging.get_rpc_transport(conf, url=args.url)
        else:
            transport = messaging.get_notification_transport(conf,
                                                             url=args.url)
        check_broker(messaging.TransportURL.parse(conf, args.url))
    except Unavailable as e:
        print('pybench.py: broker unreachable: %s' % e, file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (cfg.Error, messaging.InvalidTransportURL,
            messaging.DriverLoadFailure) as e:
        print('pybench.py: %s' % e, file=sys.stderr)
        return EXIT_USAGE

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if args.mode.endswith('server'):
        return run_server(args, transport)
    count = CARGO_LIMIT if args.duration else args.messages
    cargos = make_cargos(count, args.payload_size)
    return run_client(args, transport, cargos)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
