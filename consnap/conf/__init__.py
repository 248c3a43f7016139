"""consnap configuration: one module per option group (Ironic layout)."""

from oslo_config import cfg

from consnap.conf import agent
from consnap.conf import api
from consnap.conf import conductor
from consnap.conf import database
from consnap.conf import default
from consnap.conf import freeze
from consnap.conf import hooks
from consnap.conf import qga
from consnap.conf import services
from consnap.conf import ssh
from consnap.conf import targets
from consnap.conf import taskflow

CONF = cfg.CONF

_MODULES = (default, agent, api, conductor, database, freeze, hooks, qga,
            services, ssh, targets, taskflow)

for _module in _MODULES:
    _module.register_opts(CONF)
