"""consnap-dbsync: upgrade | version | stamp REV | upgrade_persistence."""

import sys

from oslo_config import cfg

from consnap.common import config
from consnap import conf
from consnap.db.sqlalchemy import migration
from consnap.worker import engine

CONF = conf.CONF


def _upgrade():
    migration.upgrade(CONF.command.revision)
    engine.upgrade_persistence()
    print('consnap database at %s' % migration.version())


def _version():
    print(migration.version())


def _stamp():
    migration.stamp(CONF.command.revision)


def _persistence():
    engine.upgrade_persistence()


def _add_parsers(subparsers):
    parser = subparsers.add_parser(
        'upgrade', help='Upgrade consnap\'s and TaskFlow\'s tables.')
    parser.add_argument('--revision', default='head')
    parser.set_defaults(func=_upgrade)
    parser = subparsers.add_parser('version', help='Current revision.')
    parser.set_defaults(func=_version)
    parser = subparsers.add_parser('stamp', help='Stamp a revision.')
    parser.add_argument('revision')
    parser.set_defaults(func=_stamp)
    parser = subparsers.add_parser('upgrade_persistence',
                                   help='Create TaskFlow\'s tables only.')
    parser.set_defaults(func=_persistence)


def main():
    CONF.register_cli_opt(cfg.SubCommandOpt(
        'command', title='Commands', handler=_add_parsers))
    config.parse_args(sys.argv)
    CONF.command.func()


if __name__ == '__main__':
    sys.exit(main())
