"""``openstack consistent snapshot create|list|show|delete|cancel``."""

import argparse
import json
import logging
import time

from cliff import columns
from osc_lib.cli import parseractions
from osc_lib.command import command
from osc_lib import exceptions as osc_exceptions

from consnapclient import exceptions
from consnapclient.v1 import hooks as hooks_mod
from consnapclient.v1 import snapshots

LOG = logging.getLogger(__name__)

# The fields of a request in display order; any other field the API adds
# comes after them.
FIELDS = ('id', 'name', 'description', 'status', 'status_reason',
          'consistency', 'project_id', 'user_id', 'metadata', 'quiesce',
          'hooks', 'members', 'timeline', 'fault', 'events',
          'idempotency_key', 'created_at', 'updated_at', 'links')


def _short(value):
    return str(value)[:8] if value else '-'


class JSONColumn(columns.FormattableColumn):
    """Structured values: the raw value for -f json/yaml, text for the
    table and value formats."""

    def human_readable(self):
        value = self._value
        if value is None:
            return ''
        if isinstance(value, dict):
            return '\n'.join('%s=%s' % (k, _text(v))
                             for k, v in value.items())
        if isinstance(value, list):
            return '\n'.join(_text(v) for v in value)
        return _text(value)

    def machine_readable(self):
        return self._value


def _text(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return '' if value is None else str(value)


class MembersColumn(JSONColumn):
    def human_readable(self):
        lines = []
        for m in self._value or []:
            parts = ['%s %s: %s' % (m.get('type'), m.get('resource_id'),
                                    m.get('status'))]
            if m.get('consistency'):
                parts.append(m['consistency'])
            if m.get('mountpoints'):
                parts.append('mountpoints %s' % ','.join(m['mountpoints']))
            if m.get('address'):
                parts.append('address %s' % m['address'])
            if m.get('type') == 'server' and m.get('include_volumes') is \
                    False:
                parts.append('without volumes')
            if m.get('image_id'):
                parts.append('image %s' % m['image_id'])
            if m.get('volume_snapshot_ids'):
                parts.append('volume snapshots %s' % ','.join(
                    m['volume_snapshot_ids']))
            if m.get('freeze_window_ms') is not None:
                parts.append('frozen %s ms' % m['freeze_window_ms'])
            if m.get('error'):
                parts.append('error: %s' % m['error'])
            lines.append(', '.join(parts))
        return '\n'.join(lines)


class EventsColumn(JSONColumn):
    def human_readable(self):
        lines = []
        for e in self._value or []:
            line = '%s %s' % (e.get('at'), e.get('event'))
            if e.get('member_id'):
                line += ' member %s' % _short(e['member_id'])
            if e.get('detail'):
                line += ' %s' % json.dumps(e['detail'], sort_keys=True)
            lines.append(line)
        return '\n'.join(lines)


class ResourcesColumn(JSONColumn):
    """The members of a list row: ``server <id>`` per line."""

    def human_readable(self):
        return '\n'.join('%s %s' % (m.get('type'), m.get('resource_id'))
                         for m in self._value or [])


_FORMATTERS = {'members': MembersColumn, 'events': EventsColumn,
               'metadata': JSONColumn, 'quiesce': JSONColumn,
               'hooks': JSONColumn, 'timeline': JSONColumn,
               'fault': JSONColumn, 'links': JSONColumn}


def show_columns(snap):
    """``(columns, values)`` of one request for a ShowOne."""
    keys = [f for f in FIELDS if f in snap] + sorted(
        k for k in snap if k not in FIELDS)
    values = []
    for key in keys:
        value = snap[key]
        formatter = _FORMATTERS.get(key)
        if formatter is None and isinstance(value, (dict, list)):
            formatter = JSONColumn
        values.append(formatter(value) if formatter else value)
    return tuple(keys), tuple(values)


def _fail(error):
    """An osc CommandError carrying the API's message (and field)."""
    return osc_exceptions.CommandError(str(error))


def _client(cmd):
    return cmd.app.client_manager.consistent_snapshot


# -- create: --server/--mountpoint/--include-volumes ------------------------
class _ServerAction(argparse.Action):
    """``--server X`` starts a server member; the per-server options after
    it (until the next --server) belong to it."""

    def __call__(self, parser, namespace, values, option_string=None):
        servers = list(getattr(namespace, self.dest, None) or [])
        servers.append({'id': values})
        setattr(namespace, self.dest, servers)


class _LastServerAction(argparse.Action):
    """Applies to the --server given before it."""

    def __init__(self, option_strings, dest, key=None, value=None,
                 **kwargs):
        self.key = key
        self.value = value
        kwargs.setdefault('default', argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def _last(self, namespace, option_string):
        servers = getattr(namespace, 'servers', None)
        if not servers:
            raise argparse.ArgumentError(
                self, '%s applies to a server: give it after the --server '
                      'it belongs to' % option_string)
        return servers[-1]


class _MountpointAction(_LastServerAction):
    def __call__(self, parser, namespace, values, option_string=None):
        server = self._last(namespace, option_string)
        server.setdefault('mountpoints', []).append(values)


class _AddressAction(_LastServerAction):
    def __call__(self, parser, namespace, values, option_string=None):
        server = self._last(namespace, option_string)
        if 'address' in server:
            raise argparse.ArgumentError(
                self, 'one %s per --server' % option_string)
        server['address'] = values


class _IncludeVolumesAction(_LastServerAction):
    def __init__(self, option_strings, dest, **kwargs):
        kwargs['nargs'] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        server = self._last(namespace, option_string)
        server['include_volumes'] = self.value


class Progress(object):
    """The live progress line of ``--wait`` on stderr: status and stage,
    elapsed time, the freeze window once known.  On a terminal one line is
    rewritten in place; otherwise a line is written when something other
    than the time changes."""

    def __init__(self, stream, clock=time.monotonic, isatty=None):
        self.stream = stream
        self.clock = clock
        self.started = clock()
        if isatty is None:
            isatty = bool(getattr(stream, 'isatty', lambda: False)())
        self.tty = isatty
        self.last_key = None
        self.width = 0

    def line(self, snap):
        text = 'snapshot %s: %s' % (snap['id'], snap['status'])
        stage = snapshots.stage(snap)
        if stage and stage != snap['status']:
            text += ' (%s)' % stage
        text += ', %.1fs' % (self.clock() - self.started)
        window = snapshots.freeze_window_ms(snap)
        if window is not None:
            text += ', freeze window %s ms' % window
        return text

    def update(self, snap):
        text = self.line(snap)
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write('\r' + text + ' ' * pad)
            self.width = len(text)
        else:
            key = (snap['status'], snapshots.stage(snap),
                   snapshots.freeze_window_ms(snap))
            if key == self.last_key:
                return
            self.last_key = key
            self.stream.write(text + '\n')
        self.stream.flush()

    def finish(self, snap, verb=None):
        """The summary line: status, time, consistency, freeze window."""
        if self.tty and self.width:
            self.stream.write('\r' + ' ' * self.width + '\r')
        if snap is None:
            self.stream.flush()
            return
        text = 'snapshot %s: %s after %.1fs' % (
            snap['id'], verb or snap['status'], self.clock() - self.started)
        if snap.get('consistency'):
            text += ', consistency %s' % snap['consistency']
        window = snapshots.freeze_window_ms(snap)
        if window is not None:
            text += ', freeze window %s ms' % window
        if snap.get('status_reason') and snap['status'] != 'available':
            text += ': %s' % snap['status_reason']
        self.stream.write(text + '\n')
        self.stream.flush()


def _add_wait(parser, what, default_timeout):
    parser.add_argument(
        '--wait', action='store_true',
        help='Wait until %s, showing progress on stderr' % what)
    parser.add_argument(
        '--timeout', metavar='<seconds>', type=float,
        default=default_timeout,
        help='With --wait: give up after this many seconds (default %s); '
             'the request goes on' % default_timeout)
    parser.add_argument(
        '--poll-interval', metavar='<seconds>', type=float, default=1.0,
        help=argparse.SUPPRESS)


def _wait(cmd, parsed_args, snap, wait, verb=None):
    """Run ``wait`` (a callable taking a callback) with a progress line;
    a failure or timeout becomes a CommandError after the summary."""
    progress = Progress(cmd.app.stderr)
    progress.update(snap)
    try:
        final = wait(progress.update)
    except (exceptions.WaitFailed, exceptions.WaitTimeout) as e:
        progress.finish(None)
        raise _fail(e)
    except KeyboardInterrupt:
        progress.finish(None)
        cmd.app.stderr.write(
            'Interrupted; snapshot request %s goes on in the background.\n'
            % snap['id'])
        raise
    progress.finish(final if isinstance(final, dict) else snap, verb=verb)
    return final


class CreateSnapshot(command.ShowOne):
    """Take a consistent snapshot of servers and volumes"""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--server', metavar='<server>', dest='servers',
            action=_ServerAction, default=[],
            help='Server to snapshot (name or ID; repeat for several). '
                 '--mountpoint, --address and --[no-]include-volumes after '
                 'it apply to it')
        parser.add_argument(
            '--mountpoint', metavar='<path>', dest='mountpoint',
            action=_MountpointAction,
            help='Filesystem of the preceding --server to freeze (repeat '
                 'for several; default: every freezable filesystem)')
        parser.add_argument(
            '--address', metavar='<ip-address>', dest='address',
            action=_AddressAction,
            help='Address at which a freeze driver that logs in (ssh) '
                 'reaches the preceding --server: one of the addresses '
                 'Nova reports for it (API 1.1, sent as 1.1)')
        # (not mutually exclusive: each applies to its own --server)
        parser.add_argument(
            '--include-volumes', dest='include_volumes',
            action=_IncludeVolumesAction, value=True,
            help='Also snapshot the volumes attached to the preceding '
                 '--server (the API default)')
        parser.add_argument(
            '--no-include-volumes', dest='include_volumes',
            action=_IncludeVolumesAction, value=False,
            help='Do not snapshot the volumes attached to the preceding '
                 '--server')
        parser.add_argument(
            '--volume', metavar='<volume>', dest='volumes',
            action='append', default=[],
            help='Volume to snapshot (name or ID; repeat for several)')
        parser.add_argument('--name', metavar='<name>',
                            help='Name of the request')
        parser.add_argument('--description', metavar='<description>',
                            help='Description of the request')
        parser.add_argument(
            '--property', metavar='<key=value>', dest='properties',
            action=parseractions.KeyValueAction,
            help='Metadata of the request (repeat for several)')
        parser.add_argument(
            '--max-freeze', metavar='<seconds>', type=float,
            help='Longest time a guest may stay frozen (at most the '
                 'operator\'s cap; default: the operator\'s default)')
        parser.add_argument(
            '--require', metavar='<level>',
            choices=snapshots.CONSISTENCY_LEVELS,
            help='Lowest acceptable consistency: crash, filesystem or '
                 'application (application needs a --hook); the request '
                 'fails if it is not reached')
        parser.add_argument(
            '--freeze-driver', metavar='<driver>',
            help='Freeze driver (qga, ssh, none...; default: the '
                 'operator\'s)')
        parser.add_argument(
            '--on-freeze-failure', metavar='<action>',
            choices=('fail', 'continue'),
            help='fail (default): the request fails when a guest cannot be '
                 'frozen; continue: snapshot it crash-consistent')
        parser.add_argument(
            '--hook', metavar='<hook>', dest='hooks', action='append',
            default=[],
            help='Application hook (repeat for several), as JSON '
                 '(\'{"name": "app", "type": "command", "pre": '
                 '["/usr/bin/app", "pause"], "post": ["/usr/bin/app", '
                 '"resume"]}\'), @FILE (JSON object or list) or KEY=VALUE '
                 'pairs: "name=app,pre=/usr/bin/app pause,post=/usr/bin/app '
                 'resume,timeout=15" (pre/post split like a shell would; '
                 'type defaults to command; params.KEY=VALUE for mysql '
                 'hooks)')
        parser.add_argument(
            '--idempotency-key', metavar='<key>',
            help='Retrying with the same key returns the same request')
        _add_wait(parser, 'the request is available', 3600)
        return parser

    def _resolve(self, kind, value):
        if snapshots.is_uuid(value):
            return value
        conn = self.app.client_manager.sdk_connection
        try:
            if kind == 'server':
                return conn.compute.find_server(value,
                                                ignore_missing=False).id
            return conn.block_storage.find_volume(value,
                                                  ignore_missing=False).id
        except Exception as e:
            raise osc_exceptions.CommandError(
                '%s %r is not an ID and could not be found by name: %s'
                % (kind.capitalize(), value, e))

    def take_action(self, parsed_args):
        client = _client(self)
        hooks = []
        for text in parsed_args.hooks:
            try:
                hooks.extend(hooks_mod.parse_hook(text))
            except hooks_mod.HookError as e:
                raise osc_exceptions.CommandError(str(e))
        servers = [dict(s, id=self._resolve('server', s['id']))
                   for s in parsed_args.servers]
        volumes = [self._resolve('volume', v) for v in parsed_args.volumes]
        body = snapshots.build_create_body(
            servers=servers, volumes=volumes, name=parsed_args.name,
            description=parsed_args.description,
            metadata=parsed_args.properties,
            max_freeze_seconds=_number(parsed_args.max_freeze),
            required_consistency=parsed_args.require,
            freeze_driver=parsed_args.freeze_driver,
            on_freeze_failure=parsed_args.on_freeze_failure,
            hooks=hooks, idempotency_key=parsed_args.idempotency_key)
        try:
            snap = client.create(body)
            if parsed_args.wait:
                snap = _wait(self, parsed_args, snap, lambda cb:
                             client.wait_for(
                                 snap['id'], timeout=parsed_args.timeout,
                                 interval=parsed_args.poll_interval,
                                 callback=cb))
        except exceptions.ClientError as e:
            raise _fail(e)
        return show_columns(snap)


def _number(value):
    """10.0 -> 10 (the body reads as the user wrote it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ListSnapshots(command.Lister):
    """List consistent snapshot requests"""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--all-projects', action='store_true',
            help='Requests of every project (admin only)')
        parser.add_argument('--status', metavar='<status>',
                            help='Only requests in this status')
        parser.add_argument('--server', metavar='<server-id>',
                            help='Only requests with this server')
        parser.add_argument('--volume', metavar='<volume-id>',
                            help='Only requests with this volume')
        parser.add_argument('--name', metavar='<name>',
                            help='Only requests with this name')
        parser.add_argument(
            '--limit', metavar='<num>', type=int,
            help='At most this many requests (default: all, page by page)')
        parser.add_argument('--marker', metavar='<snapshot-id>',
                            help='Start after this request')
        parser.add_argument(
            '--sort-key', metavar='<key>',
            help='Sort by %s (default created_at)'
                 % ', '.join(snapshots.SORT_KEYS))
        parser.add_argument('--sort-dir', metavar='<dir>',
                            choices=('asc', 'desc'),
                            help='asc or desc (default desc)')
        parser.add_argument('--long', action='store_true',
                            help='More columns')
        return parser

    def take_action(self, parsed_args):
        client = _client(self)
        try:
            rows = client.list(
                status=parsed_args.status, server=parsed_args.server,
                volume=parsed_args.volume, name=parsed_args.name,
                all_projects=parsed_args.all_projects,
                limit=parsed_args.limit, marker=parsed_args.marker,
                sort_key=parsed_args.sort_key,
                sort_dir=parsed_args.sort_dir)
        except exceptions.ClientError as e:
            raise _fail(e)
        headers = ['ID', 'Name', 'Status', 'Consistency',
                   'Freeze Window (ms)', 'Members', 'Created At']
        if parsed_args.all_projects or parsed_args.long:
            headers.insert(3, 'Project ID')
        if parsed_args.long:
            headers += ['User ID', 'Status Reason', 'Updated At']
        getters = {
            'ID': lambda s: s['id'], 'Name': lambda s: s.get('name'),
            'Status': lambda s: s['status'],
            'Project ID': lambda s: s.get('project_id'),
            'Consistency': lambda s: s.get('consistency'),
            'Freeze Window (ms)': snapshots.freeze_window_ms,
            'Members': lambda s: ResourcesColumn(s.get('members') or []),
            'Created At': lambda s: s.get('created_at'),
            'User ID': lambda s: s.get('user_id'),
            'Status Reason': lambda s: s.get('status_reason'),
            'Updated At': lambda s: s.get('updated_at'),
        }
        return headers, [tuple(getters[h](s) for h in headers) for s in rows]


class ShowSnapshot(command.ShowOne):
    """Show a consistent snapshot request: members, timeline, events"""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshot', metavar='<snapshot>',
                            help='Request to show (name or ID)')
        return parser

    def take_action(self, parsed_args):
        try:
            snap = _client(self).find(parsed_args.snapshot)
        except exceptions.ClientError as e:
            raise _fail(e)
        return show_columns(snap)


class DeleteSnapshot(command.Command):
    """Delete finished consistent snapshot requests and (unless
    --keep-artifacts) the images and volume snapshots they produced"""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshots', metavar='<snapshot>', nargs='+',
                            help='Request(s) to delete (name or ID)')
        parser.add_argument(
            '--keep-artifacts', action='store_true',
            help='Keep the images and volume snapshots; delete only the '
                 'request')
        _add_wait(parser, 'the requests are deleted', 600)
        return parser

    def take_action(self, parsed_args):
        client = _client(self)
        failures = []
        for name in parsed_args.snapshots:
            try:
                snap = client.find(name)
                if snap['status'] in snapshots.IN_FLIGHT_STATUSES:
                    raise exceptions.ClientError(
                        'Snapshot request %s is in flight (status %s): '
                        'cancel it with "openstack consistent snapshot '
                        'cancel", then delete it once it is cancelled.'
                        % (snap['id'], snap['status']))
                if snap['status'] != snapshots.DELETING:
                    snap = client.delete(
                        snap['id'], keep_artifacts=parsed_args.keep_artifacts)
                if parsed_args.wait:
                    _wait(self, parsed_args, snap, lambda cb, sid=snap['id']:
                          client.wait_for_delete(
                              sid, timeout=parsed_args.timeout,
                              interval=parsed_args.poll_interval,
                              callback=cb), verb='deleted')
            except (exceptions.ClientError,
                    osc_exceptions.CommandError) as e:
                LOG.error('Failed to delete snapshot request %s: %s', name, e)
                failures.append(name)
        if failures:
            raise osc_exceptions.CommandError(
                '%d of %d snapshot requests failed to delete.'
                % (len(failures), len(parsed_args.snapshots)))


class CancelSnapshot(command.Command):
    """Cancel consistent snapshot requests in flight (the guests are thawed
    and partial snapshots removed; the request ends cancelled)"""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('snapshots', metavar='<snapshot>', nargs='+',
                            help='Request(s) to cancel (name or ID)')
        _add_wait(parser, 'the requests are cancelled', 600)
        return parser

    def take_action(self, parsed_args):
        client = _client(self)
        failures = []
        for name in parsed_args.snapshots:
            try:
                snap = client.cancel(client.find(name)['id'])
                if snap['status'] == snapshots.DELETING:
                    # finished between the read and the DELETE
                    raise exceptions.ClientError(
                        'Snapshot request %s finished before the cancel '
                        'arrived: the DELETE removes the request, but keeps '
                        'its images and volume snapshots.' % snap['id'])
                if parsed_args.wait:
                    _wait(self, parsed_args, snap, lambda cb, sid=snap['id']:
                          client.wait_for(
                              sid, statuses=(snapshots.CANCELLED,),
                              failures=(snapshots.AVAILABLE,
                                        snapshots.ERROR,
                                        snapshots.DELETING),
                              timeout=parsed_args.timeout,
                              interval=parsed_args.poll_interval,
                              callback=cb))
            except (exceptions.ClientError,
                    osc_exceptions.CommandError) as e:
                LOG.error('Failed to cancel snapshot request %s: %s', name, e)
                failures.append(name)
        if failures:
            raise osc_exceptions.CommandError(
                '%d of %d snapshot requests failed to cancel.'
                % (len(failures), len(parsed_args.snapshots)))
