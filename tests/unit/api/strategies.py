"""Hypothesis strategies for fuzzing the API (unit test and tools/fuzz_api).

A drawn request is ``(method, path, query, headers, body, content_type)``
with ``body`` as bytes or None.  The mix: schema-shaped bodies with one
field broken, arbitrary JSON, raw bytes, odd content types, odd query
strings, odd ids and odd headers.
"""

import json
import string
import uuid

from hypothesis import strategies as st

STATUSES = ['pending', 'error', 'available', 'deleting', 'cancelling', 'x']
QUERY_KEYS = ['limit', 'marker', 'sort_key', 'sort_dir', 'status', 'server',
              'volume', 'name', 'all_tenants', 'keep_artifacts', 'bogus']

uuids = st.builds(lambda: str(uuid.uuid4()))
odd_text = st.text(max_size=40) | st.sampled_from(
    ['', ' ', '\x00', '\ud800', '\uffff', '\U0001f600', '../..', '%00',
     'a' * 300, '-1', '0', '1e309', 'null', 'true', '[]', '{}', '\u202e'])
text_or_uuid = uuids | odd_text

numbers = (st.integers() | st.integers(min_value=-2 ** 70,
                                       max_value=2 ** 70)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([0, -0.0, 1e308, -1e308, 2 ** 63, 2 ** 64 + 1,
                              5e-324, 10 ** 400]))
json_scalars = st.none() | st.booleans() | numbers | odd_text
json_values = st.recursive(
    json_scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(odd_text, children, max_size=5)),
    max_leaves=25)

mountpoints = st.lists(st.sampled_from(['/', '/var', '/data/db', 'rel',
                                        '/a/../b', '/.']) | odd_text,
                       max_size=4)
servers = st.lists(st.fixed_dictionaries(
    {'id': text_or_uuid},
    optional={'mountpoints': mountpoints,
              'include_volumes': st.booleans() | json_scalars}), max_size=4)
volumes = st.lists(st.fixed_dictionaries({'id': text_or_uuid}), max_size=4)
quiesce = st.fixed_dictionaries({}, optional={
    'driver': st.sampled_from(['qga', 'ssh', 'none', 'x']) | odd_text,
    'max_freeze_seconds': numbers | json_scalars,
    'required_consistency': st.sampled_from(
        ['crash', 'filesystem', 'application', 'x']),
    'on_freeze_failure': st.sampled_from(['fail', 'continue', 'x']),
})
argv = st.lists(odd_text | st.just('/bin/true'), max_size=3)
hooks = st.lists(st.fixed_dictionaries(
    {'name': st.sampled_from(['h1', 'h2']) | odd_text,
     'type': st.sampled_from(['command', 'mysql', 'x'])},
    optional={'pre': argv, 'post': argv, 'timeout': numbers,
              'retries': numbers, 'on_failure': st.sampled_from(
                  ['abort', 'continue', 'x']),
              'params': st.dictionaries(
                  st.sampled_from(['user', 'secret_ref', 'password', 'port',
                                   'socket', 'host']),
                  json_scalars, max_size=3)}), max_size=3)
snapshot = st.fixed_dictionaries({}, optional={
    'name': odd_text | json_scalars,
    'description': odd_text,
    'metadata': st.dictionaries(odd_text, odd_text | json_scalars,
                                max_size=4),
    'servers': servers,
    'volumes': volumes,
    'quiesce': quiesce,
    'hooks': hooks,
    'idempotency_key': odd_text,
})


plain_text = st.text(st.characters(codec='utf-8', exclude_characters='\x00'),
                     min_size=1, max_size=30)
valid_snapshot = st.fixed_dictionaries(
    {'servers': st.lists(st.fixed_dictionaries(
        {'id': uuids},
        optional={'mountpoints': st.lists(st.sampled_from(
            ['/', '/var', '/data/db']), unique=True, max_size=3),
            'include_volumes': st.booleans()}), min_size=1, max_size=3)},
    optional={
        'name': plain_text, 'description': plain_text,
        'metadata': st.dictionaries(plain_text, plain_text, max_size=3),
        'volumes': st.lists(st.fixed_dictionaries({'id': uuids}),
                            max_size=2),
        'quiesce': st.fixed_dictionaries({}, optional={
            'driver': st.sampled_from(['qga', 'ssh']),
            'max_freeze_seconds': st.floats(0.01, 30),
            'on_freeze_failure': st.sampled_from(['fail', 'continue'])}),
        'hooks': st.just([{'name': 'sync', 'type': 'command',
                           'pre': ['/bin/sync']}]),
        'idempotency_key': st.text(string.ascii_letters, min_size=1,
                                   max_size=8),
    })


@st.composite
def broken_snapshot_bodies(draw):
    """A snapshot body, sometimes with one extra key or a replaced value."""
    body = draw(snapshot)
    choice = draw(st.integers(0, 3))
    if choice == 1:
        body[draw(odd_text)] = draw(json_values)
    elif choice == 2 and body:
        key = draw(st.sampled_from(sorted(body)))
        body[key] = draw(json_values)
    wrapper = {'snapshot': body}
    if draw(st.integers(0, 9)) == 0:
        wrapper = draw(json_values)
    return wrapper


def _dumps(value):
    try:
        return json.dumps(value, allow_nan=True).encode(
            'utf-8', 'surrogatepass')
    except (ValueError, OverflowError):
        return b'{}'


header_text = st.text(alphabet=string.printable[:95], max_size=40)

headers = st.fixed_dictionaries({}, optional={
    'OpenStack-API-Version': st.sampled_from(
        ['consistent-snapshot 1.0', 'consistent-snapshot latest', 'consistent-snapshot 1.1', 'snapshot 2.0',
         'consistent-snapshot x', 'compute 2.1', 'snapshot', '']) | header_text,
    'Idempotency-Key': header_text,
    'X-Roles': st.sampled_from(['admin', 'member,reader', 'reader', '']),
    'X-Project-Id': st.sampled_from(['fuzz-a', 'fuzz-b']),
})

content_types = st.sampled_from(
    ['application/json', 'application/json; charset=utf-8',
     'application/json; charset=latin-1', 'text/plain', '',
     'application/x-www-form-urlencoded', 'multipart/form-data',
     'application/merge-patch+json', 'application/json;;;'])

raw_bodies = st.binary(max_size=200) | st.sampled_from(
    [b'[' * 5000, b'{"snapshot":' * 3000, b'NaN', b'{"a": Infinity}',
     b'{"a": 1' + b'0' * 5000 + b'}', b'\xff\xfe\x00', b'"\\ud800"',
     b'{"snapshot": {"name": "\\u0000"}}'])

queries = st.dictionaries(st.sampled_from(QUERY_KEYS) | odd_text,
                          st.sampled_from(STATUSES) | text_or_uuid
                          | st.sampled_from(['1', '0', 'true', 'desc',
                                             'name', '1000000000']),
                          max_size=3)


@st.composite
def requests(draw):
    """``(method, path, query, headers, body, content_type)``."""
    kind = draw(st.integers(-1, 5))
    hdrs = draw(headers)
    if kind == -1:
        return ('POST', '/v1/snapshots', {}, hdrs,
                _dumps({'snapshot': draw(valid_snapshot)}),
                'application/json')
    if kind <= 1:
        return ('POST', '/v1/snapshots', {}, hdrs,
                _dumps(draw(broken_snapshot_bodies())), 'application/json')
    if kind == 2:
        return ('POST', '/v1/snapshots', draw(queries), hdrs,
                draw(raw_bodies | st.builds(_dumps, json_values)),
                draw(content_types))
    if kind == 3:
        return ('GET', '/v1/snapshots', draw(queries), hdrs, None, None)
    method = draw(st.sampled_from(['GET', 'DELETE', 'PUT', 'PATCH', 'HEAD',
                                   'OPTIONS']))
    ident = draw(text_or_uuid)
    path = draw(st.sampled_from(['/v1/snapshots/%s', '/v1/%s', '/%s',
                                 '/v1/snapshots/%s/x']))
    return (method, path % ident, draw(queries), hdrs, None, None)
