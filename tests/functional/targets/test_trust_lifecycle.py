"""A request's trust against the real Keystone: it delegates only the roles
consnap acts with (``[service_user]trust_roles``, never ``admin``), a user
without them cannot delegate, and a finished request's trust is deleted
from Keystone (not left to expire) by consnap's service user.  The whole
lifecycle through running services (POST, available, DELETE: no consnap
trust left) is tests/functional/targets/test_distributed_keystone.py."""

import pytest

from consnap.common import clients
from consnap.common import constants
from tests import localcloud
from tests.functional.targets import cloudenv

IDENTITY = {'service_type': 'identity', 'interface': 'public'}


def _trust(cloud, trust_id):
    """(status, roles) of a trust, read as its trustee."""
    sess = localcloud.session_for(cloud, 'service')
    resp = sess.get('/OS-TRUST/trusts/%s/roles' % trust_id,
                    endpoint_filter=IDENTITY, raise_exc=False)
    if resp.status_code != 200:
        return resp.status_code, None
    return 200, sorted(r['name'] for r in resp.json()['roles'])


class _Db(object):
    """Records the auth the release writes (the request row is not what
    this test is about: its Keystone side is)."""

    def __init__(self):
        self.updates = []

    def update_snapshot(self, snapshot_id, values, expected_status=None):
        assert tuple(expected_status) == constants.FINISHED_STATUSES
        self.updates.append(values)


@pytest.mark.parametrize('persona', ['member', 'admin'])
def test_trust_delegates_only_member_and_ends_with_the_request(
        consnap_cloud, persona):
    cloud = consnap_cloud
    ctx = cloudenv.user_context(cloud, persona, 'tenant-a'
                                if persona == 'member' else None)
    assert persona in ctx.roles
    auth = cloudenv.user_auth(cloud, persona,
                              'tenant-a' if persona == 'member' else None)
    trust_id = auth['trust_id']
    try:
        assert _trust(cloud, trust_id) == (200, ['member'])
        db = _Db()
        snap = {'id': 'req-1', 'status': 'available', 'auth': auth}
        assert clients.release_request_auth(db, snap) is True
        assert _trust(cloud, trust_id)[0] == 404
        assert db.updates[-1] == {'auth': dict(
            auth, trust_id=None, release_pending=[])}
    finally:
        clients.delete_trust(trust_id)


def test_a_user_without_the_roles_cannot_delegate(consnap_cloud):
    with pytest.raises(clients.TrustFailed) as e:
        clients.auth_for_request(
            cloudenv.user_context(consnap_cloud, 'reader', 'tenant-a'))
    assert 'member' in str(e.value)
