# Produces and consumes oslo.messaging bodies with the real library for
# the interop tests of package wire (wire/interop_test.go runs it with
# `python -I -c`, so __name__ is "__main__" and tracebacks name
# "<string>").
#
# Input on stdin: {"op": ..., "ids": {...}, "fixed_tb": [...], "cases": [...]}.
# Output on stdout: one JSON document, the results of the op, by case.
#
# Bodies are captured where the rabbit driver hands them to kombu
# (Producer._publish, after kombu's json serializer ran), while the real
# RPC client and server, and the real Notifier, run over kombu's
# in-memory transport. Random ids are then replaced by the fixed ids the
# Go side uses, and notifications are sent at a fixed time.

import datetime
import json
import os
import sys
import threading
import time

from oslo_config import cfg

cfg.CONF([], project='omsg-interop')

import kombu  # noqa: E402
import kombu.messaging  # noqa: E402
import kombu.serialization  # noqa: E402
from oslo_serialization import jsonutils  # noqa: E402

import oslo_messaging as om  # noqa: E402
from oslo_messaging._drivers import amqp as rpc_amqp  # noqa: E402
from oslo_messaging._drivers import amqpdriver  # noqa: E402
from oslo_messaging._drivers import common as rpc_common  # noqa: E402

REQ = json.load(sys.stdin)
IDS = REQ.get('ids', {})
FIXED_TB = REQ.get('fixed_tb', [])
TOPIC = 'omsg_interop'


def kombu_dumps(obj):
    # What kombu.messaging.Producer._prepare does with the message dict
    # that the rabbit driver publishes (serializer "json").
    body = kombu.serialization.dumps(obj, serializer='json')[2]
    return body.decode('utf-8') if isinstance(body, bytes) else body


def kombu_loads(body):
    return kombu.serialization.loads(body, 'application/json', 'utf-8')


class Capture(object):
    """Records every body the driver publishes."""

    def __init__(self):
        self.cond = threading.Condition()
        self.published = []

    def install(self):
        orig = kombu.messaging.Producer._publish
        capture = self

        def _publish(producer, body, priority, content_type, content_encoding,
                     headers, properties, routing_key, mandatory, immediate,
                     exchange, declare, timeout=None):
            text = body.decode('utf-8') if isinstance(body, bytes) else body
            with capture.cond:
                capture.published.append({'exchange': exchange,
                                          'routing_key': routing_key,
                                          'content_type': content_type,
                                          'body': text})
                capture.cond.notify_all()
            return orig(producer, body, priority, content_type,
                        content_encoding, headers, properties, routing_key,
                        mandatory, immediate, exchange, declare, timeout)

        kombu.messaging.Producer._publish = _publish

    def take(self):
        with self.cond:
            out, self.published = self.published, []
        return out

    def wait_for(self, pred, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while not any(pred(p) for p in self.published):
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError('nothing published in time')
                self.cond.wait(left)


CAPTURE = Capture()
CAPTURE.install()
TRANSPORT = om.get_rpc_transport(cfg.CONF, url='kombu+memory:////')


def inner_of(body):
    outer = kombu_loads(body)
    return json.loads(outer['oslo.message'])


def normalize_ids(body):
    """Replaces the random ids of a body by the fixed ones."""
    inner = inner_of(body)
    for key, fixed in (('_msg_id', IDS.get('msg_id')),
                       ('_reply_q', IDS.get('reply_q')),
                       ('_unique_id', IDS.get('unique_id'))):
        old = inner.get(key)
        if old and fixed:
            body = body.replace(old, fixed)
    return body


def normalize_tb(body):
    """Replaces the traceback of a reply's failure by FIXED_TB, re-encoding
    each level as oslo does, after checking that re-encoding the body
    unchanged gives the same bytes. Returns (body, original tb)."""
    outer = kombu_loads(body)
    inner = json.loads(outer['oslo.message'])
    assert kombu_dumps(outer) == body, 're-encoding changes the envelope'
    assert jsonutils.dumps(inner) == outer['oslo.message'], \
        're-encoding changes the message'
    if not inner.get('failure'):
        return body, None
    failure = json.loads(inner['failure'])
    assert jsonutils.dumps(failure) == inner['failure'], \
        're-encoding changes the failure'
    tb = failure['tb']
    failure['tb'] = FIXED_TB
    inner['failure'] = jsonutils.dumps(failure)
    outer['oslo.message'] = jsonutils.dumps(inner)
    return kombu_dumps(outer), tb


def legacy_of(body):
    """The same message without the envelope, as oslo's senders without
    envelope publish it."""
    return kombu_dumps(inner_of(body))


def describe(exc):
    t = type(exc)
    out = {'type': '%s.%s' % (t.__module__, t.__name__),
           'mro': ['%s.%s' % (c.__module__, c.__name__) for c in t.__mro__],
           'str': str(exc),
           'args': [a if isinstance(a, (str, int, float, bool)) else repr(a)
                    for a in exc.args]}
    if isinstance(exc, om.RemoteError):
        out['remote_error'] = {'exc_type': exc.exc_type, 'value': exc.value,
                               'traceback': exc.traceback}
    return out


class MyError(Exception):
    """An application exception with keyword arguments, as nova's."""

    def __init__(self, message, code=None):
        super(MyError, self).__init__(message)
        self.kwargs = {'code': code}


def make_exception(spec):
    cls = {'ValueError': ValueError, 'KeyError': KeyError,
           'MyError': MyError}[spec['class']]
    return cls(*spec.get('args', []), **spec.get('kwargs', {}))


# --- ops ------------------------------------------------------------------

def op_requests(cases):
    """Sends each request with the real RPC client, returns the bodies,
    and decodes the Go bodies with deserialize_msg."""
    out = {}
    for case in cases:
        target = om.Target(topic=TOPIC, namespace=case.get('namespace'),
                           version=case.get('version'),
                           server=case.get('server'),
                           fanout=case.get('fanout', False))
        client = om.get_rpc_client(TRANSPORT, target)
        args = json.loads(case['args'])
        ctxt = json.loads(case['context'])
        CAPTURE.take()
        if case['call']:
            try:
                client.prepare(
                    timeout=0.05,
                    call_monitor_timeout=case.get('monitor_timeout'),
                ).call(ctxt, case['method'], **args)
            except om.MessagingTimeout:
                pass
        else:
            client.cast(ctxt, case['method'], **args)
        published = CAPTURE.take()
        assert len(published) == 1, published
        pub = published[0]
        body = normalize_ids(pub['body'])
        py_msg = rpc_common.deserialize_msg(kombu_loads(body))
        go_msg = rpc_common.deserialize_msg(kombu_loads(case['go_body']))
        out[case['name']] = {
            'body': body,
            'legacy': legacy_of(body),
            'exchange': pub['exchange'],
            'routing_key': pub['routing_key'],
            'content_type': pub['content_type'],
            'go_decoded_equal': go_msg == py_msg,
            'go_decoded': go_msg,
        }
    return out


class ReplyEndpoint(object):
    target = om.Target(version='1.0')

    def __init__(self, cases):
        self.cases = cases

    def reply_case(self, ctxt, name):
        case = self.cases[name]
        if case.get('sleep'):
            time.sleep(case['sleep'])
        if case.get('raise'):
            raise make_exception(case['raise'])
        return json.loads(case['result'])


def op_replies(cases):
    """Calls a real RPC server whose endpoint returns or raises what each
    case says; returns the replies it sent, and how the real client
    handles the Go bodies of the same replies."""
    by_name = {c['name']: c for c in cases}
    server = om.get_rpc_server(
        TRANSPORT, om.Target(topic=TOPIC, server='srv'),
        [ReplyEndpoint(by_name)], executor='threading')
    server.start()
    client = om.get_rpc_client(TRANSPORT, om.Target(topic=TOPIC),
                               timeout=10)
    waiter = ReplyWaiterProbe()
    out = {}
    try:
        for case in cases:
            CAPTURE.take()
            cctx = client.prepare(call_monitor_timeout=case.get('monitor'))
            try:
                if case.get('method'):
                    cctx.call({}, case['method'])
                else:
                    cctx.call({}, 'reply_case', name=case['name'])
            except Exception:
                pass
            replies = [p for p in CAPTURE.take()
                       if p['routing_key'].startswith('reply_')]
            bodies = []
            for p in replies:
                body, tb = normalize_tb(normalize_ids(p['body']))
                bodies.append({'body': body, 'tb': tb,
                               'legacy': legacy_of(body)})
            out[case['name']] = {
                'replies': bodies,
                'go': [waiter.process(b) for b in case.get('go_bodies', [])],
            }
    finally:
        server.stop()
        server.wait()
    return out


class ReplyWaiterProbe(object):
    """Runs the real client's reply handling on a body."""

    def process(self, body):
        msg = rpc_common.deserialize_msg(kombu_loads(body))
        waiter = amqpdriver.ReplyWaiter.__new__(amqpdriver.ReplyWaiter)
        waiter.msg_id_cache = rpc_amqp._MsgIdCache()
        waiter.allowed_remote_exmods = []
        result, ending = waiter._process_reply(dict(msg))
        out = {'ending': ending, 'ending_is_false': ending is False}
        if isinstance(result, Exception):
            out['exception'] = describe(result)
        else:
            out['result'] = result
        return out


def op_failures(cases):
    """serialize_remote_exception of raised exceptions."""
    out = {}
    for case in cases:
        try:
            raise make_exception(case['raise'])
        except Exception:
            failure = rpc_common.serialize_remote_exception(sys.exc_info())
        data = json.loads(failure)
        assert jsonutils.dumps(data) == failure
        tb = data['tb']
        data['tb'] = FIXED_TB
        out[case['name']] = {'failure': failure,
                             'normalized': jsonutils.dumps(data),
                             'tb': tb}
    return out


def op_deserialize_failures(cases):
    """deserialize_remote_exception of Go-encoded failures."""
    out = {}
    for case in cases:
        exc = rpc_common.deserialize_remote_exception(
            case['go_failure'], case.get('allowed') or [])
        out[case['name']] = describe(exc)
    return out


class RecordingEndpoint(object):
    """Accepts any public method and records how it was called."""

    target = om.Target(version='1.99')
    calls = []
    lock = threading.Lock()

    def __getattr__(self, name):
        if name.startswith('_') or name.startswith('oslo_'):
            raise AttributeError(name)

        def method(ctxt, **kwargs):
            with RecordingEndpoint.lock:
                RecordingEndpoint.calls.append(
                    {'method': name, 'ctxt': ctxt, 'kwargs': kwargs})
            return kwargs
        return method


class RecordingEndpointNS1(RecordingEndpoint):
    target = om.Target(namespace='ns1', version='1.99')


def op_server(cases):
    """Publishes Go-encoded requests, as they are, to a real RPC server,
    and returns what the endpoint received and the reply it sent."""
    server = om.get_rpc_server(
        TRANSPORT, om.Target(topic=TOPIC, server='srv'),
        [RecordingEndpoint(), RecordingEndpointNS1()], executor='threading')
    server.start()
    conn = kombu.Connection('memory://')
    channel = conn.channel()
    producer = kombu.Producer(channel)
    reply_q = IDS['reply_q']
    channel.queue_declare(queue=reply_q)
    out = {}
    try:
        for case in cases:
            CAPTURE.take()
            with RecordingEndpoint.lock:
                RecordingEndpoint.calls = []
            producer.publish(case['go_body'], exchange='openstack',
                             routing_key=TOPIC,
                             content_type='application/json',
                             content_encoding='utf-8')
            if case['call']:
                CAPTURE.wait_for(lambda p: p['routing_key'] == reply_q)
            else:
                deadline = time.time() + 10
                while not RecordingEndpoint.calls and time.time() < deadline:
                    time.sleep(0.01)
            replies = [normalize_ids(p['body']) for p in CAPTURE.take()
                       if p['routing_key'] == reply_q]
            with RecordingEndpoint.lock:
                calls = list(RecordingEndpoint.calls)
            out[case['name']] = {'calls': calls, 'replies': replies}
    finally:
        server.stop()
        server.wait()
        conn.release()
    return out


def op_envelopes(cases):
    """deserialize_msg of raw bodies: the message or the error."""
    out = {}
    for case in cases:
        try:
            msg = rpc_common.deserialize_msg(kombu_loads(case['body']))
            if not isinstance(msg, dict):
                raise TypeError('not a dict: %r' % (msg,))
            out[case['name']] = {'message': json.dumps(msg)}
        except Exception as e:
            out[case['name']] = {'error': '%s: %s' % (type(e).__name__, e)}
    return out


def op_process_replies(cases):
    """The real client's handling of raw reply bodies."""
    probe = ReplyWaiterProbe()
    out = {}
    for case in cases:
        try:
            res = probe.process(case['body'])
            res['ending_truthy'] = bool(res['ending'])
            out[case['name']] = res
        except Exception as e:
            out[case['name']] = {'error': '%s: %s' % (type(e).__name__, e)}
    return out


NOTIFY_TRANSPORT = None


def notify_transport():
    global NOTIFY_TRANSPORT
    if NOTIFY_TRANSPORT is None:
        NOTIFY_TRANSPORT = om.get_notification_transport(
            cfg.CONF, url='kombu+memory:////')
    return NOTIFY_TRANSPORT


def normalize_notification(body, enveloped):
    """Replaces the random message_id and _unique_id of a notification
    body by the fixed ones."""
    inner = inner_of(body) if enveloped else kombu_loads(body)
    for key, fixed in (('message_id', IDS.get('notify_message_id')),
                       ('_unique_id', IDS.get('unique_id'))):
        old = inner.get(key)
        if old and fixed:
            body = body.replace(old, fixed)
    return body


def op_notifications(cases):
    """Sends each notification with the real Notifier, once with the
    messaging (v1) driver and once with messagingv2, at the case's
    timestamp; returns the bodies, and decodes the Go bodies with
    deserialize_msg."""
    from oslo_utils import timeutils
    out = {}
    for case in cases:
        ctxt = json.loads(case['context'])
        payload = json.loads(case['payload'])
        res = {}
        for driver, key in (('messaging', 'legacy'), ('messagingv2', 'body')):
            when = datetime.datetime.fromisoformat(case['timestamp'])
            timeutils.set_time_override(when)
            try:
                notifier = om.Notifier(notify_transport(),
                                       publisher_id=case['publisher_id'],
                                       driver=driver, topics=[case['topic']])
                CAPTURE.take()
                getattr(notifier, case['priority'].lower())(
                    ctxt, case['event_type'], payload)
                published = CAPTURE.take()
            finally:
                timeutils.clear_time_override()
            assert len(published) == 1, published
            pub = published[0]
            res[key] = normalize_notification(pub['body'], key == 'body')
            res[key + '_exchange'] = pub['exchange']
            res[key + '_routing_key'] = pub['routing_key']
            res[key + '_content_type'] = pub['content_type']
        # The v1 body is the v2 message without its envelope.
        assert legacy_of(res['body']) == res['legacy'], res
        py_msg = rpc_common.deserialize_msg(kombu_loads(res['body']))
        for name in ('go_body', 'go_legacy'):
            go_msg = rpc_common.deserialize_msg(kombu_loads(case[name]))
            res[name + '_equal'] = go_msg == py_msg
            res[name + '_decoded'] = go_msg
        out[case['name']] = res
    return out


OPS = {'requests': op_requests, 'notifications': op_notifications, 'envelopes': op_envelopes,
       'process_replies': op_process_replies, 'replies': op_replies,
       'failures': op_failures, 'deserialize_failures': op_deserialize_failures,
       'server': op_server}

def finite(obj):
    """Replaces NaN and infinities, which Python's json module reads and
    writes but JSON has not, by their repr()."""
    if isinstance(obj, float) and (obj != obj or obj in (INF, -INF)):
        return repr(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


INF = float('inf')
result = OPS[REQ['op']](REQ['cases'])
TRANSPORT.cleanup()
if NOTIFY_TRANSPORT is not None:
    NOTIFY_TRANSPORT.cleanup()
json.dump(finite(result), sys.stdout, allow_nan=False)
sys.stdout.flush()
# The driver's reply and heartbeat threads would keep the interpreter
# alive for seconds after the work is done.
os._exit(0)
