"""consnap-conductor: one or more conductor workers (cotyledon)."""

import sys

import cotyledon

from consnap.common import config
from consnap.conductor import service
from consnap import conf

CONF = conf.CONF


def main():
    config.parse_args(sys.argv)
    config.check_service_user()
    manager = cotyledon.ServiceManager()
    manager.add(service.ConductorService, workers=CONF.conductor.workers)
    manager.run()


if __name__ == '__main__':
    sys.exit(main())
