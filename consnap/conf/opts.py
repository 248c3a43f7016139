"""Entry point for oslo-config-generator (``oslo.config.opts``)."""

from consnap import conf as consnap_conf


def list_opts():
    result = []
    for module in consnap_conf._MODULES:
        result.extend(module.list_opts())
    return result
