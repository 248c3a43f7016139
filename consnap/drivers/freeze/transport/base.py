"""How QGA commands reach a guest's agent.

A transport carries one agent command and returns its ``return`` value, or
raises the typed ``GuestError`` of ``consnap.drivers.freeze.qga_client``.
Every call is bounded by ``timeout``.  ``preempt=True`` marks a thaw: a
transport whose agent serves one client at a time makes sure other calls of
this process to the same agent cannot keep the thaw waiting.
"""

import abc
import re
import string

# Placeholders of [qga]socket_path_template and [qga]libvirt_uri_template:
# values Nova sets, never one a tenant controls (a server's name could hold
# "../" or "@host").
TEMPLATE_FIELDS = ('server_id', 'instance_name', 'host')
_SAFE_VALUE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:-]*$')


def check_template(template, option):
    """Raise ValueError unless ``template`` uses only TEMPLATE_FIELDS,
    plainly (no attribute or index access, no conversion or format)."""
    for _text, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            raise ValueError('%s may use only %s, not {%s}' % (
                option, ', '.join('{%s}' % f for f in TEMPLATE_FIELDS),
                field))


def render_template(template, guest, option):
    """``template`` formatted with the guest's Nova-set values; ValueError
    when the template or a value is not usable (the reason says which)."""
    check_template(template, option)
    values = {}
    for field in TEMPLATE_FIELDS:
        value = guest.get(field)
        if isinstance(value, str):
            if not _SAFE_VALUE.match(value) or '..' in value:
                raise ValueError('%s is not usable in %s' % (field, option))
            values[field] = value
    try:
        return template.format(**values)
    except (KeyError, IndexError) as e:
        raise ValueError('%s needs %s' % (option, e))


class QgaTransport(metaclass=abc.ABCMeta):

    def __init__(self, guest, conf):
        #: label of the guest, for messages
        self.guest = guest
        self.conf = conf

    @abc.abstractmethod
    def command(self, command, arguments, timeout, preempt=False):
        """Run one agent command; its ``return`` value."""

    def close(self):
        """Release what the transport holds; never raises."""
