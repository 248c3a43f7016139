"""consnap acts for the user through the trust alone: a request whose
user's token was revoked after the POST still snapshots, as the user."""

from consnap.common import clients
from consnap.common import constants
from tests.functional.targets import cloudenv
from tests.functional.targets.test_nova_image import create
from tests.functional.targets.test_nova_image import run
from tests.functional.targets.test_nova_image import writer_ready
from tests import localcloud


def test_request_runs_after_the_users_token_is_revoked(resources,
                                                       tenant_conn):
    cloud = resources.cloud
    server = writer_ready(cloud, tenant_conn, resources.boot())
    ctx = cloudenv.user_context(cloud, 'member', 'tenant-a')
    auth = clients.auth_for_request(ctx)
    resources.trusts.append(auth['trust_id'])
    assert auth['trust_id'] and 'token' not in auth
    snap = create(auth, servers=[server.id])
    # The user's token dies before the conductor starts the work.
    admin = localcloud.session_for(cloud, 'admin')
    resp = admin.delete(cloud['auth_url'] + '/auth/tokens',
                        headers={'X-Subject-Token': ctx.auth_token})
    assert resp.status_code == 204
    check = admin.get(cloud['auth_url'] + '/auth/tokens',
                      headers={'X-Subject-Token': ctx.auth_token},
                      raise_exc=False)
    assert check.status_code == 404
    snap = run(snap['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    image_id = snap['members'][0]['image_id']
    resources.images.append(image_id)
    image = tenant_conn.image.get_image(image_id)
    # Made as the user (impersonating trust), in the user's project.
    assert image.owner == auth['project_id']
    assert image.properties['consnap_request_id'] == snap['id']
