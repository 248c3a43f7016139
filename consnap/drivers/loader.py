"""Load drivers by stevedore name (or ``module:Class`` path) and cache them."""

import threading

from oslo_utils import importutils
from stevedore import driver as stevedore_driver

from consnap.common import exception

FREEZE_NAMESPACE = 'consnap.freeze_drivers'
TARGET_NAMESPACE = 'consnap.target_drivers'
HOOK_NAMESPACE = 'consnap.hooks'

_CACHE = {}
_LOCK = threading.Lock()


def get_driver(namespace, name, conf=None):
    """A process-wide instance of driver ``name`` of ``namespace``."""
    key = (namespace, name)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            if ':' in name:
                module, _sep, cls = name.partition(':')
                obj = importutils.import_class(module + '.' + cls)(conf)
            else:
                obj = stevedore_driver.DriverManager(
                    namespace, name, invoke_on_load=True,
                    invoke_args=(conf,)).driver
        except Exception as e:
            raise exception.DriverNotFound(name=name, namespace=namespace,
                                           reason=str(e))
        _CACHE[key] = obj
        return obj


def get_freeze_driver(name, conf=None):
    """The freeze driver ``name`` as the conductor uses it: through the
    consnap-agent of the guest's host (``[agent]enabled``), which alone
    opens the guest channel; ``none`` freezes nothing and stays local."""
    from consnap import conf as consnap_conf
    cfg = conf or consnap_conf.CONF
    if name == 'none' or not cfg.agent.enabled:
        return get_local_freeze_driver(name, conf)
    get_local_freeze_driver(name, conf)     # DriverNotFound for a bad name
    key = ('remote', name)
    with _LOCK:
        if key not in _CACHE:
            from consnap.drivers.freeze import remote
            _CACHE[key] = remote.RemoteFreezeDriver(name, conf)
        return _CACHE[key]


def get_local_freeze_driver(name, conf=None):
    """The driver itself, opening the guest channel (the agent's side)."""
    return get_driver(FREEZE_NAMESPACE, name, conf)


def get_target_driver(name, conf=None):
    return get_driver(TARGET_NAMESPACE, name, conf)


def reset():
    with _LOCK:
        _CACHE.clear()
