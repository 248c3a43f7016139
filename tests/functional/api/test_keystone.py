"""consnap-api behind keystonemiddleware, against the real Keystone of the
local cloud: tokens accepted and rejected, and the tenant-isolation matrix
(two projects x admin/member/reader x every API call)."""

import datetime
import uuid

import pytest

from tests.functional import services
from tests import localcloud

UUID_A = str(uuid.uuid4())


@pytest.fixture(scope='module')
def keystone():
    try:
        return localcloud.ensure_cloud('keystone')
    except localcloud.CloudUnavailable as e:
        pytest.fail('real peer missing: Keystone (%s)' % e)


@pytest.fixture(scope='module')
def api(keystone, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ksapi')
    services.require_tcp('RabbitMQ', 5672)
    db_url, drop = services.mysql_database()
    port = services.free_port()
    svc = keystone['service_user']
    conf = services.write_config(str(tmp / 'api.conf'), {
        'DEFAULT': {'auth_strategy': 'keystone', 'rpc_transport': 'oslo',
                    'transport_url': services.RABBIT_URL,
                    'control_exchange': 'consnap-ks-%s' % uuid.uuid4().hex[:8]},
        'database': {'connection': db_url},
        'api': {'port': port},
        'keystone_authtoken': {
            'www_authenticate_uri': keystone['auth_url'],
            'auth_url': keystone['auth_url'], 'auth_type': 'password',
            'username': svc['username'], 'password': svc['password'],
            'project_name': svc['project_name'],
            'user_domain_name': 'Default', 'project_domain_name': 'Default',
            'region_name': keystone.get('region', 'RegionOne'),
            'token_cache_time': -1},
        'service_user': {
            'auth_type': 'password', 'auth_url': keystone['auth_url'],
            'username': svc['username'], 'password': svc['password'],
            'project_name': svc['project_name'],
            'user_domain_name': 'Default', 'project_domain_name': 'Default'},
        'conductor': {'rpc_cast_retries': 0},
    })
    import os
    import subprocess
    subprocess.run([os.path.join(services.BIN, 'consnap-dbsync'),
                    '--config-file', conf, 'upgrade'], check=True,
                   timeout=120, capture_output=True)
    proc = services.start('consnap-api', 'consnap-api', conf, str(tmp))
    url = 'http://127.0.0.1:%d' % port
    services.wait_for_http(url + '/', proc)
    yield url
    proc.stop()
    drop()


_TOKENS = {}


def token(state, persona, project=None):
    key = (persona, project)
    if key not in _TOKENS:
        _TOKENS[key] = localcloud.session_for(state, persona,
                                              project).get_token()
    return _TOKENS[key]


def call(url, method, path, tok=None, body=None):
    headers = {'X-Auth-Token': tok} if tok else {}
    return services.http(method, url + path, body, headers=headers)


def create(url, tok, server=None):
    return call(url, 'POST', '/v1/snapshots', tok, {'snapshot': {
        'name': 'ks', 'servers': [{'id': server or str(uuid.uuid4())}],
        'quiesce': {'driver': 'none'}}})


def test_version_discovery_is_public(api):
    status, body, _ = call(api, 'GET', '/')
    assert status == 200 and body['versions']


def test_no_token_is_401(api):
    status, body, headers = call(api, 'GET', '/v1/snapshots')
    assert status == 401
    assert 'WWW-Authenticate' in headers


def test_garbage_token_is_401(api):
    status, _, _ = call(api, 'GET', '/v1/snapshots', 'gAAAAAB' + 'x' * 180)
    assert status == 401


def test_member_token_accepted(api, keystone):
    tok = token(keystone, 'member', 'tenant-a')
    status, body, headers = create(api, tok)
    assert status == 202, body
    snap = body['snapshot']
    assert snap['project_id'] == keystone['projects']['tenant-a']['id']
    # The API delegated the member's roles to consnap through a trust.
    admin = localcloud.session_for(keystone, 'admin')
    trusts = admin.get(keystone['auth_url'] + '/OS-TRUST/trusts').json()
    assert any(t['trustor_user_id'] == localcloud.session_for(
        keystone, 'member', 'tenant-a').get_user_id()
        for t in trusts['trusts'])
    status, body, _ = call(api, 'GET', '/v1/snapshots/' + snap['id'], tok)
    assert status == 200 and body['snapshot']['id'] == snap['id']


def test_revoked_token_is_401(api, keystone):
    sess = localcloud.session_for(keystone, 'member', 'tenant-a')
    tok = sess.get_token()
    assert call(api, 'GET', '/v1/snapshots', tok)[0] == 200
    admin = localcloud.session_for(keystone, 'admin')
    resp = admin.delete(keystone['auth_url'] + '/auth/tokens',
                        headers={'X-Subject-Token': tok})
    assert resp.status_code == 204
    assert call(api, 'GET', '/v1/snapshots', tok)[0] == 401


def test_expired_token_is_401(api, keystone):
    """A token from an application credential expires with it."""
    sess = localcloud.session_for(keystone, 'member', 'tenant-b')
    user_id = sess.get_user_id()
    expires = (datetime.datetime.utcnow() +
               datetime.timedelta(seconds=4)).strftime('%Y-%m-%dT%H:%M:%S')
    resp = sess.post(keystone['auth_url'] + '/users/%s/application_'
                     'credentials' % user_id, json={
                         'application_credential': {
                             'name': 'consnap-exp-%s' % uuid.uuid4().hex[:6],
                             'expires_at': expires}})
    cred = resp.json()['application_credential']
    from keystoneauth1.identity import v3
    from keystoneauth1 import session as ks_session
    short = ks_session.Session(auth=v3.ApplicationCredential(
        auth_url=keystone['auth_url'],
        application_credential_id=cred['id'],
        application_credential_secret=cred['secret']))
    tok = short.get_token()
    services.wait_for(lambda: datetime.datetime.utcnow() >
                      datetime.datetime.fromisoformat(expires) +
                      datetime.timedelta(seconds=1), 10, what='expiry')
    assert call(api, 'GET', '/v1/snapshots', tok)[0] == 401


# -- tenant isolation matrix --------------------------------------------------
PERSONAS = [('admin', None), ('member', 'tenant-a'), ('reader', 'tenant-a'),
            ('member', 'tenant-b'), ('reader', 'tenant-b')]


@pytest.fixture(scope='module')
def owned(api, keystone):
    """A request of tenant-a, created by its member."""
    status, body, _ = create(api, token(keystone, 'member', 'tenant-a'))
    assert status == 202, body
    return body['snapshot']['id']


def _expected(persona, project, action):
    """What each persona may do to a tenant-a request."""
    if persona == 'admin':
        return {'create': 202, 'list': 200, 'list_all': 200, 'get': 200,
                'delete': 202}[action]
    same = project == 'tenant-a'
    if action == 'create':
        return 202 if persona == 'member' else 403
    if action == 'list':
        return 200
    if action == 'list_all':
        return 403
    if action == 'get':
        return 200 if same else 404
    if action == 'delete':
        if not same:
            return 404
        return 202 if persona == 'member' else 403


@pytest.mark.parametrize('persona,project', PERSONAS)
@pytest.mark.parametrize('action', ['create', 'list', 'list_all', 'get',
                                    'delete-other', 'get-missing'])
def test_isolation_matrix(api, keystone, owned, persona, project, action):
    tok = token(keystone, persona, project)
    if action == 'create':
        status, body, _ = create(api, tok)
        assert status == _expected(persona, project, 'create'), body
    elif action == 'list':
        status, body, _ = call(api, 'GET', '/v1/snapshots', tok)
        assert status == 200, body
        ids = {s['id'] for s in body['snapshots']}
        visible = persona == 'admin' or project == 'tenant-a'
        # admins see their own project by default, all with all_tenants
        if persona == 'admin':
            visible = False
        assert (owned in ids) == visible
    elif action == 'list_all':
        status, body, _ = call(api, 'GET', '/v1/snapshots?all_tenants=true',
                               tok)
        assert status == _expected(persona, project, 'list_all'), body
        if status == 200:
            assert owned in {s['id'] for s in body['snapshots']}
    elif action == 'get':
        status, body, _ = call(api, 'GET', '/v1/snapshots/' + owned, tok)
        assert status == _expected(persona, project, 'get'), body
    elif action == 'get-missing':
        # A missing id answers exactly like another project's id.
        missing = call(api, 'GET', '/v1/snapshots/' + str(uuid.uuid4()),
                       tok)
        assert missing[0] == 404
        if project == 'tenant-b':
            other = call(api, 'GET', '/v1/snapshots/' + owned, tok)
            assert other[0] == 404
            assert (_without_ids(other[1]) == _without_ids(missing[1]))
    elif action == 'delete-other':
        expected = _expected(persona, project, 'delete')
        target = owned
        if expected == 202:
            # Keep the shared request: the allowed delete goes to a
            # request of its own.
            _, mine, _ = create(api, token(keystone, 'member', 'tenant-a'))
            target = mine['snapshot']['id']
        status, body, _ = call(api, 'DELETE', '/v1/snapshots/' + target,
                               tok)
        assert status == expected, body


def _without_ids(body):
    text = str(body)
    for word in text.replace("'", ' ').replace('.', ' ').split():
        try:
            uuid.UUID(word)
        except ValueError:
            continue
        text = text.replace(word, 'X')
    return text
