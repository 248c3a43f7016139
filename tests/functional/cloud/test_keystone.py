"""The local cloud's Keystone: personas, roles, projects."""
import pytest

from tests import localcloud


def test_state_has_contract_keys(keystone_cloud):
    s = keystone_cloud
    assert s['auth_url'].endswith('/v3')
    for k in ('username', 'password', 'project_name', 'user_domain_name',
              'project_domain_name'):
        assert s['admin'][k]
    for p in ('tenant-a', 'tenant-b'):
        assert s['projects'][p]['id']
        for persona in ('member', 'reader'):
            assert s['projects'][p][persona]['username']
    assert s['service_user']['project_name'] == 'service'


@pytest.mark.parametrize('persona,project', [
    ('member', 'tenant-a'), ('reader', 'tenant-a'),
    ('member', 'tenant-b'), ('reader', 'tenant-b'),
    ('admin', None), ('service', None)])
def test_personas_get_scoped_tokens(keystone_cloud, persona, project):
    sess = localcloud.session_for(keystone_cloud, persona, project)
    assert sess.get_token()
    roles = set(sess.auth.get_access(sess).role_names)
    if persona in ('member', 'reader'):
        assert persona in roles
        assert (sess.get_project_id()
                == keystone_cloud['projects'][project]['id'])
    else:
        assert 'admin' in roles
    if persona == 'service':
        assert 'service' in roles


def test_roles_exist(keystone_cloud):
    conn = localcloud.connection_for(keystone_cloud, 'admin')
    names = {r.name for r in conn.identity.roles()}
    assert {'admin', 'member', 'reader', 'service'} <= names
