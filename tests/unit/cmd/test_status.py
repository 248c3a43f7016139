"""consnap-status upgrade check: the checks an operator runs before
starting the services."""


def test_status_check_fails_on_a_tenant_placeholder(config):
    from oslo_upgradecheck import upgradecheck
    from consnap.cmd import status
    config('libvirt_uri_template', 'qemu+ssh://{name}/system', group='qga')
    result = status.Checks()._check_qga_templates()
    assert result.code == upgradecheck.Code.FAILURE
    assert 'libvirt_uri_template' in result.details
    config('libvirt_uri_template', 'qemu+ssh://{host}/system', group='qga')
    assert status.Checks()._check_qga_templates().code == \
        upgradecheck.Code.SUCCESS


def test_status_warns_when_a_trust_may_expire_before_its_request(config):
    from oslo_upgradecheck import upgradecheck
    from consnap.cmd import status
    assert status.Checks()._check_trust_lifetime().code == \
        upgradecheck.Code.SUCCESS
    config('usable_timeout', 4 * 3600.0, group='targets')
    result = status.Checks()._check_trust_lifetime()
    assert result.code == upgradecheck.Code.WARNING
    assert 'trust_lifetime' in result.details
