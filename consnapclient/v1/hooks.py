"""The ``--hook`` argument: one application hook of a snapshot request.

Three forms, each giving one hook object as the API takes it (see the
api-ref, ``hooks``):

* JSON: ``'{"name": "app", "type": "command", "pre": ["/usr/bin/app",
  "pause"], "post": ["/usr/bin/app", "resume"], "timeout": 15}'``
  (a JSON list gives several hooks at once);
* a file: ``@hooks.json`` (a JSON object or list);
* comma-separated ``key=value`` pairs:
  ``name=app,type=command,pre=/usr/bin/app pause,post=/usr/bin/app
  resume,timeout=15,retries=1,on_failure=continue``;
  ``pre``/``post`` are split like a shell would (``shlex``) into the
  command's argv (no shell runs it); ``params.KEY=VALUE`` fills the
  ``params`` of a ``mysql`` hook (``params.socket=/run/mysqld/mysqld.sock,
  params.user=backup,params.secret_ref=https://...``).  ``type`` defaults
  to ``command``.  A value cannot contain a comma in this form: use JSON.

Numbers (``timeout``, ``retries``, ``params.port``) are converted when they
read as numbers; anything else is sent as written, and the API says what is
wrong with it (``snapshot.hooks[0].timeout: ...``).
"""

import json
import shlex

_FLOATS = ('timeout',)
_INTS = ('retries', 'params.port')
_ARGV = ('pre', 'post')


class HookError(ValueError):
    """The --hook text cannot be read (before anything is sent)."""


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        return text
    if kind is float and value.is_integer():
        return int(value)
    return value


def parse_key_values(text):
    hook = {}
    for pair in text.split(','):
        if not pair.strip():
            continue
        key, sep, value = pair.partition('=')
        key = key.strip()
        if not sep or not key:
            raise HookError('--hook %r: expected KEY=VALUE pairs separated '
                            'by commas (or JSON), got %r' % (text, pair))
        if key in _ARGV:
            try:
                value = shlex.split(value)
            except ValueError as e:
                raise HookError('--hook %r: %s: %s' % (text, key, e))
        elif key in _FLOATS:
            value = _number(value, float)
        elif key in _INTS:
            value = _number(value, int)
        if key.startswith('params.'):
            name = key[len('params.'):]
            if not name:
                raise HookError('--hook %r: empty params key' % text)
            hook.setdefault('params', {})[name] = value
        else:
            if key in hook:
                raise HookError('--hook %r: %s given twice' % (text, key))
            hook[key] = value
    if not hook:
        raise HookError('--hook: empty hook')
    hook.setdefault('type', 'command')
    return hook


def parse_hook(text):
    """The hook objects (a list) one ``--hook`` argument gives."""
    text = text.strip()
    if text.startswith('@'):
        path = text[1:]
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError as e:
            raise HookError('--hook @%s: %s' % (path, e.strerror or e))
        if not text.startswith(('{', '[')):
            raise HookError('--hook @%s: the file must hold a JSON object '
                            'or list' % path)
    if text.startswith(('{', '[')):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise HookError('--hook: invalid JSON (%s)' % e)
        hooks = value if isinstance(value, list) else [value]
        for hook in hooks:
            if not isinstance(hook, dict):
                raise HookError('--hook: every hook must be a JSON object, '
                                'not %r' % (hook,))
        return hooks
    return [parse_key_values(text)]
