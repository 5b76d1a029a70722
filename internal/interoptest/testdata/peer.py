# The Python side of the interop tests of package interoptest: a
# long-lived process that hosts real oslo.messaging RPC servers and runs
# real oslo.messaging RPC calls and casts on demand, so that the tests pay
# the interpreter's start-up once.
#
# Usage: python3 -s -u peer.py LIFETIME_SECONDS
#
# Protocol: one JSON object a line. Commands arrive on stdin, each with an
# "id" and an "op"; every command runs on a thread of its own, so that
# calls may overlap, and its answer is printed as {"id": ..., "ok": ...}.
# Servers also print events, {"event": ..., "key": "<topic>.<server>",
# ...}, for the casts and calls they receive, and notification listeners
# {"event": "notification" or "batch", "key": <listener key>, ...} for
# the notifications they receive. The first line printed is
# {"event": "ready"}. End of input, or {"op": "exit"}, stops every server
# and listener, cleans up every transport and exits. The process exits on
# its own after LIFETIME_SECONDS whatever happens.
#
# Ops:
#   start_server  url, exmods, exchange, topic, server
#   stop_server   topic, server
#   call, cast    url, exmods, exchange, topic, server, fanout, namespace,
#                 version, timeout, call_monitor_timeout, at_least_once,
#                 method, args, ctxt
#   notify          url, exchange, driver, topics, publisher_id,
#                   notifications: [{method, event_type, payload, ctxt,
#                   publisher_id}]
#   start_listener  url, exchange, key, topics, pool, allow_requeue,
#                   batch_size, batch_timeout,
#                   endpoints: [{name, filter, requeue_once}]
#   stop_listener   key
#   exit
#
# Notifications use a transport of their own per URL and exchange, whose
# configuration has that exchange as control_exchange: oslo's Notifier
# publishes to the control exchange, and each case has an exchange of
# its own. Every endpoint of a listener has the seven priority methods
# (see notify_endpoint).
#
# Endpoints of every server: the default namespace (version 1.0) with
# echo, record, whoami, sleep, fail, result and golden; the namespace
# Name1 at version 7.5 with test, as oslo's functional tests use; and
# oslo's ping endpoint (rpc_ping_enabled).

import json
import os
import sys
import threading
import time

LIFETIME = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0


def _expire():
    sys.stderr.write('peer: lifetime of %ss is over, exiting\n' % LIFETIME)
    sys.stderr.flush()
    os._exit(3)


_timer = threading.Timer(LIFETIME, _expire)
_timer.daemon = True
_timer.start()

from oslo_config import cfg  # noqa: E402

import oslo_messaging as om  # noqa: E402
import omsg_interop_exc  # noqa: E402  (from PYTHONPATH, testdata/pylib)

cfg.CONF([], project='omsg-interop')
# oslo's rpc_ping_enabled: every server also answers oslo_rpc_server_ping.
cfg.CONF.register_opts(om.rpc.dispatcher._dispatcher_opts)
cfg.CONF.set_override('rpc_ping_enabled', True)

_out_lock = threading.Lock()


def emit(obj):
    """Prints one JSON line (ASCII only: json.dumps escapes the rest)."""
    line = json.dumps(obj)
    with _out_lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


_lock = threading.Lock()
_transports = {}  # (url, exmods) -> transport
_servers = {}     # "<topic>.<server>" -> RPC server


def transport(cmd):
    exmods = tuple(cmd.get('exmods') or ())
    key = (cmd['url'], exmods)
    with _lock:
        tr = _transports.get(key)
        if tr is None:
            tr = om.get_rpc_transport(cfg.CONF, url=cmd['url'],
                                      allowed_remote_exmods=list(exmods))
            _transports[key] = tr
    return tr


class Endpoint(object):
    """The default-namespace endpoint, version 1.0."""

    def __init__(self, key, server):
        self.key = key
        self.server = server

    def _event(self, method, ctxt, args):
        emit({'event': 'request', 'key': self.key, 'server': self.server,
              'method': method, 'args': args, 'ctxt': ctxt})

    def echo(self, ctxt, **kwargs):
        return {'args': kwargs, 'ctxt': ctxt, 'server': self.server}

    def record(self, ctxt, **kwargs):
        self._event('record', ctxt, kwargs)
        return self.server

    def whoami(self, ctxt):
        return self.server

    def sleep(self, ctxt, seconds):
        self._event('sleep', ctxt, {'seconds': seconds})
        time.sleep(seconds)
        return seconds

    def fail(self, ctxt, exc, message, code=None):
        if exc == 'ValueError':
            raise ValueError(message)
        if exc == 'Unhappy':
            raise omsg_interop_exc.Unhappy(message, code=code)
        raise Exception(message)

    def result(self, ctxt, kind):
        return json.loads(kind)

    def golden(self, ctxt):
        # Keys in sorted order, as the Go encoder writes a map.
        return {'a': [1, 'b'], 'n': None, 'u': '\u00e9\u2713 <&>'}


class Versioned(object):
    """oslo's functional test endpoint: namespace Name1, version 7.5."""

    target = om.Target(namespace='Name1', version='7.5')

    def test(self, ctxt, echo):
        return echo


def _target(cmd):
    return om.Target(exchange=cmd.get('exchange') or None,
                     topic=cmd.get('topic') or None,
                     server=cmd.get('server') or None,
                     fanout=bool(cmd.get('fanout')),
                     namespace=cmd.get('namespace') or None,
                     version=cmd.get('version') or None)


def op_start_server(cmd):
    key = '%s.%s' % (cmd['topic'], cmd['server'])
    target = om.Target(exchange=cmd.get('exchange') or None,
                       topic=cmd['topic'], server=cmd['server'])
    srv = om.get_rpc_server(transport(cmd), target,
                            [Endpoint(key, cmd['server']), Versioned()],
                            executor='threading')
    srv.start()
    with _lock:
        _servers[key] = srv
    return {}


def op_stop_server(cmd):
    key = '%s.%s' % (cmd['topic'], cmd['server'])
    with _lock:
        srv = _servers.pop(key)
    srv.stop()
    srv.wait()
    return {}


def describe(exc):
    cls = type(exc)
    return {
        'class': cls.__name__,
        'module': cls.__module__,
        'mro': ['%s.%s' % (c.__module__, c.__name__) for c in cls.__mro__],
        'message': str(exc),
        'exc_type': getattr(exc, 'exc_type', None),
        'value': getattr(exc, 'value', None),
        'code': getattr(exc, 'code', None),
    }


def op_send(cmd, cast):
    kwargs = {}
    if cmd.get('timeout') is not None:
        kwargs['timeout'] = cmd['timeout']
    if cmd.get('call_monitor_timeout') is not None:
        kwargs['call_monitor_timeout'] = cmd['call_monitor_timeout']
    if cmd.get('at_least_once'):
        kwargs['transport_options'] = om.TransportOptions(at_least_once=True)
    client = om.get_rpc_client(transport(cmd), _target(cmd), **kwargs)
    ctxt = cmd.get('ctxt') or {}
    args = cmd.get('args') or {}
    start = time.monotonic()
    try:
        if cast:
            client.cast(ctxt, cmd['method'], **args)
            result = None
        else:
            result = client.call(ctxt, cmd['method'], **args)
    except Exception as exc:
        return {'ok': False, 'error': describe(exc),
                'elapsed': time.monotonic() - start}
    return {'ok': True, 'result': result, 'elapsed': time.monotonic() - start}


# Notifications.

_PRIORITIES = ('audit', 'debug', 'info', 'warn', 'error', 'critical',
               'sample')
_notify_transports = {}  # (url, exchange) -> notification transport
_listeners = {}          # key -> notification listener
_stopping = []           # threads stopping listeners (see op_stop_listener)


def notify_transport(cmd):
    """The notification transport of the command's URL and exchange."""
    key = (cmd['url'], cmd.get('exchange') or '')
    with _lock:
        tr = _notify_transports.get(key)
        if tr is None:
            conf = cfg.ConfigOpts()
            conf([], project='omsg-interop')
            # The transport reads control_exchange when it is made.
            conf.register_opts(om.transport._transport_opts)
            if cmd.get('exchange'):
                conf.set_override('control_exchange', cmd['exchange'])
            tr = om.get_notification_transport(conf, url=cmd['url'])
            _notify_transports[key] = tr
    return tr


def op_notify(cmd):
    notifier = om.Notifier(notify_transport(cmd),
                           publisher_id=cmd.get('publisher_id'),
                           driver=cmd['driver'], topics=cmd['topics'])
    start = time.monotonic()
    for n in cmd['notifications']:
        sender = notifier
        if n.get('publisher_id'):
            sender = notifier.prepare(publisher_id=n['publisher_id'])
        # The method by name: audit, debug, info, warn, warning, error,
        # critical or sample.
        getattr(sender, n['method'])(n.get('ctxt') or {}, n['event_type'],
                                     n.get('payload'))
    return {'sent': len(cmd['notifications']),
            'elapsed': time.monotonic() - start}


def _notification(priority, ctxt, publisher_id, event_type, payload,
                  metadata):
    return {'priority': priority, 'ctxt': ctxt,
            'publisher_id': publisher_id, 'event_type': event_type,
            'payload': payload, 'metadata': metadata}


def notify_endpoint(key, spec, batch):
    """An endpoint named spec['name'] with the seven priority methods,
    each printing what it receives. spec['filter'] holds the arguments
    of its NotificationFilter; with spec['requeue_once'] it answers
    REQUEUE the first time it sees a message_id."""
    name = spec['name']
    requeued = set()
    requeued_lock = threading.Lock()

    def first_time(message_id):
        with requeued_lock:
            if message_id in requeued:
                return False
            requeued.add(message_id)
            return True

    def method(priority):
        if batch:
            def handle(self, messages):
                emit({'event': 'batch', 'key': key, 'endpoint': name,
                      'priority': priority, 'messages': [
                          _notification(priority, m['ctxt'],
                                        m['publisher_id'], m['event_type'],
                                        m['payload'], m['metadata'])
                          for m in messages]})
        else:
            def handle(self, ctxt, publisher_id, event_type, payload,
                       metadata):
                requeue = (spec.get('requeue_once') and
                           first_time(metadata['message_id']))
                ev = _notification(priority, ctxt, publisher_id,
                                   event_type, payload, metadata)
                ev.update({'event': 'notification', 'key': key,
                           'endpoint': name, 'requeued': bool(requeue)})
                emit(ev)
                if requeue:
                    return om.NotificationResult.REQUEUE
                return om.NotificationResult.HANDLED
        return handle

    attrs = {p: method(p) for p in _PRIORITIES}
    if spec.get('filter'):
        attrs['filter_rule'] = om.NotificationFilter(**spec['filter'])
    return type('Endpoint_' + name, (object,), attrs)()


def op_start_listener(cmd):
    key = cmd['key']
    tr = notify_transport(cmd)
    targets = [om.Target(exchange=cmd.get('exchange') or None, topic=t)
               for t in cmd['topics']]
    batch = bool(cmd.get('batch_size'))
    endpoints = [notify_endpoint(key, spec, batch)
                 for spec in cmd['endpoints']]
    kwargs = {'executor': 'threading', 'pool': cmd.get('pool') or None,
              'allow_requeue': bool(cmd.get('allow_requeue'))}
    if batch:
        listener = om.get_batch_notification_listener(
            tr, targets, endpoints, batch_size=cmd['batch_size'],
            batch_timeout=cmd.get('batch_timeout'), **kwargs)
    else:
        listener = om.get_notification_listener(tr, targets, endpoints,
                                                **kwargs)
    # start() has declared and bound the listener's queues when it
    # returns.
    listener.start()
    with _lock:
        _listeners[key] = listener
    return {}


def _stop_listener(listener):
    listener.stop()
    listener.wait()


def op_stop_listener(cmd):
    """Stops a listener in the background, and answers at once: oslo's
    stop() waits for the poll loop, which sleeps up to 5s on idle
    queues. shutdown() waits for the stops to end."""
    with _lock:
        listener = _listeners.pop(cmd['key'])
        th = threading.Thread(target=_stop_listener, args=(listener,),
                              daemon=True)
        _stopping.append(th)
    th.start()
    return {}


def shutdown():
    with _lock:
        servers = list(_servers.values()) + list(_listeners.values())
        _servers.clear()
        _listeners.clear()
        transports = (list(_transports.values()) +
                      list(_notify_transports.values()))
        _transports.clear()
        _notify_transports.clear()
        stopping = list(_stopping)
    # oslo's stop() and cleanup() each wait up to 5s for an idle poll
    # loop: run them all at once.
    _all(lambda srv: srv.stop(), servers)
    _all(lambda srv: srv.wait(), servers)
    for th in stopping:
        th.join()
    _all(lambda tr: tr.cleanup(), transports)


def _all(fn, items):
    threads = [threading.Thread(target=fn, args=(it,), daemon=True)
               for it in items]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


OPS = {
    'start_server': op_start_server,
    'stop_server': op_stop_server,
    'call': lambda cmd: op_send(cmd, cast=False),
    'cast': lambda cmd: op_send(cmd, cast=True),
    'notify': op_notify,
    'start_listener': op_start_listener,
    'stop_listener': op_stop_listener,
}


def run(cmd):
    try:
        answer = {'ok': True}
        answer.update(OPS[cmd['op']](cmd))
    except Exception as exc:
        answer = {'ok': False, 'error': describe(exc)}
    answer['id'] = cmd['id']
    try:
        emit(answer)
    except (TypeError, ValueError) as exc:
        emit({'id': cmd['id'], 'ok': False, 'error': describe(exc)})


def main():
    emit({'event': 'ready', 'pid': os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd['op'] == 'exit':
            break
        threading.Thread(target=run, args=(cmd,), daemon=True).start()
    shutdown()
    emit({'event': 'bye'})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


main()
