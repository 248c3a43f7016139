"""OpenStackClient plugin (entry point group ``openstack.cli.extension``):
``openstack consistent snapshot ...`` (commands: ``consnapclient.osc.v1``).
"""

import logging
import os

from osc_lib import exceptions

import consnapclient
from consnapclient.v1 import snapshots

LOG = logging.getLogger(__name__)

API_NAME = 'consistent_snapshot'
API_VERSION_OPTION = 'os_consistent_snapshot_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = ('1',)
ENDPOINT_OPTION = 'os_consistent_snapshot_endpoint'


def check_api_version(check_version):
    """Accept ``1`` and ``1.N`` (the microversion sent); True skips OSC's
    own check against API_VERSIONS (major versions only).  ``latest`` is
    refused: OSC derives the command group from the major number."""
    try:
        if str(check_version).strip().lower() == 'latest':
            raise ValueError
        snapshots.normalise_api_version(check_version)
    except ValueError:
        raise exceptions.CommandError(
            'invalid consistent snapshot API version %r: expected 1 or 1.N'
            % check_version)
    return True


def _config(instance, key):
    config = getattr(instance._cli_options, 'config', None) or {}
    return config.get(key)


def make_client(instance):
    """The ``consnapclient.v1.snapshots.Proxy`` of the command's session."""
    version = instance._api_version.get(API_NAME) or DEFAULT_API_VERSION
    # --os-consistent-snapshot-endpoint / OS_CONSISTENT_SNAPSHOT_ENDPOINT,
    # then the standard endpoint override of clouds.yaml / the environment
    # (consistent_snapshot_endpoint_override), then the catalog
    endpoint = (_config(instance, 'consistent_snapshot_endpoint') or
                _config(instance, '%s_endpoint_override' %
                        consnapclient.SERVICE_TYPE.replace('-', '_')))
    LOG.debug('consistent snapshot: endpoint %s, API version %s',
              endpoint or '(catalog)', version)
    return snapshots.Proxy(instance.session, endpoint=endpoint,
                           region_name=instance.region_name,
                           interface=instance.interface,
                           api_version=version)


def build_option_parser(parser):
    """The global options of the plugin."""
    parser.add_argument(
        '--os-consistent-snapshot-api-version',
        metavar='<consistent-snapshot-api-version>',
        default=os.environ.get('OS_CONSISTENT_SNAPSHOT_API_VERSION'),
        help='Consistent snapshot API (micro)version, 1 or 1.N; default=%s '
             '(%s %s) (Env: OS_CONSISTENT_SNAPSHOT_API_VERSION)' % (
                 DEFAULT_API_VERSION, consnapclient.API_VERSION_SERVICE,
                 consnapclient.MIN_API_VERSION))
    parser.add_argument(
        '--os-consistent-snapshot-endpoint',
        metavar='<url>',
        default=os.environ.get(consnapclient.ENDPOINT_ENV),
        help='consnap endpoint URL, instead of the catalog\'s %s service '
             '(Env: %s)' % (consnapclient.SERVICE_TYPE,
                            consnapclient.ENDPOINT_ENV))
    return parser
