"""consnap-status upgrade check (oslo.upgradecheck)."""

import sys

from oslo_upgradecheck import common_checks
from oslo_upgradecheck import upgradecheck

from consnap import conf
from consnap.db.sqlalchemy import migration

CONF = conf.CONF


class Checks(upgradecheck.UpgradeCommands):

    def _check_db(self):
        try:
            current = migration.version()
        except Exception as e:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                'Cannot read the database revision: %s' % e)
        from alembic import script
        head = script.ScriptDirectory.from_config(
            migration._alembic_config()).get_current_head()
        if current != head:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                'Database at %s, code expects %s: run consnap-dbsync '
                'upgrade' % (current, head))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_freeze_cap(self):
        if CONF.freeze.default_freeze_seconds > CONF.freeze.max_freeze_seconds:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                '[freeze]default_freeze_seconds exceeds max_freeze_seconds; '
                'the cap applies')
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_service_user(self):
        if CONF.auth_strategy != 'keystone':
            return upgradecheck.Result(upgradecheck.Code.SUCCESS)
        try:
            conf.services.check_service_user(CONF)
        except conf.services.ServiceUserConfigError as e:
            return upgradecheck.Result(upgradecheck.Code.FAILURE, str(e))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_qga_templates(self):
        from consnap.drivers.freeze.transport import base as transport_base
        problems = []
        for option in ('socket_path_template', 'libvirt_uri_template'):
            try:
                transport_base.check_template(getattr(CONF.qga, option),
                                              '[qga]%s' % option)
            except ValueError as e:
                problems.append(str(e))
        if problems:
            return upgradecheck.Result(upgradecheck.Code.FAILURE,
                                       '; '.join(problems))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_trust_lifetime(self):
        """A request's trust must outlive the request."""
        longest = (CONF.conductor.pending_grace_seconds +
                   CONF.conductor.guest_busy_wait_seconds +
                   CONF.freeze.max_freeze_seconds +
                   CONF.targets.capture_timeout +
                   CONF.targets.usable_timeout)
        if CONF.service_user.use_trusts and \
                CONF.service_user.trust_lifetime < longest + 600:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                '[service_user]trust_lifetime (%d s) is shorter than the '
                'longest request (%d s, pending grace + guest wait + freeze '
                '+ capture + usable timeouts) plus 600 s: a slow request '
                'may lose its authority before it ends' % (
                    CONF.service_user.trust_lifetime, longest))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    _upgrade_checks = (
        ('Service user', _check_service_user),
        ('Trust lifetime', _check_trust_lifetime),
        ('Guest agent path templates', _check_qga_templates),
        ('Database revision', _check_db),
        ('Freeze cap', _check_freeze_cap),
        ('Policy file JSON to YAML migration',
         (common_checks.check_policy_json, {'conf': CONF})),
    )


def main():
    return upgradecheck.main(CONF, project='consnap', upgrade_command=Checks())


if __name__ == '__main__':
    sys.exit(main())
