"""API 1.1: a server member may name its guest's address (for the ssh
freeze driver); 1.0 refuses the field, 1.1 validates and shows it."""

from tests.unit.api import base
from tests.unit.api.base import MEMBER

V1_1 = dict(MEMBER, **{'OpenStack-API-Version': 'consistent-snapshot 1.1'})
V1_0 = dict(MEMBER, **{'OpenStack-API-Version': 'consistent-snapshot 1.0'})


def _body(address):
    return {'snapshot': {'servers': [{'id': base.SERVER1,
                                      'address': address}]}}


class TestAddress(base.APITestCase):

    def test_1_1_stores_and_shows_the_address(self):
        snap = self.post(_body('10.0.0.5'), hdrs=V1_1).json['snapshot']
        self.assertEqual('10.0.0.5', snap['members'][0]['address'])
        self.assertEqual('10.0.0.5', self.dbapi.get_snapshot(
            snap['id'])['members'][0]['address'])
        shown = self.app.get('/v1/snapshots/%s' % snap['id'],
                             headers=V1_1).json['snapshot']
        self.assertEqual('10.0.0.5', shown['members'][0]['address'])
        # 1.0 does not show it
        shown = self.app.get('/v1/snapshots/%s' % snap['id'],
                             headers=V1_0).json['snapshot']
        self.assertNotIn('address', shown['members'][0])

    def test_without_an_address_shows_null_in_1_1(self):
        snap = self.post(base.body(), hdrs=V1_1).json['snapshot']
        self.assertIsNone(snap['members'][0]['address'])

    def test_1_0_refuses_the_field(self):
        self.assertFault(self.post(_body('10.0.0.5'), hdrs=V1_0,
                                   status=400), 400,
                         field='snapshot.servers[0].address')

    def test_1_1_refuses_what_is_not_an_ip_address(self):
        for bad in ('evil.example.com', '10.0.0.256', '', 'x' * 80, 7,
                    '10.0.0.5/24'):
            self.assertFault(self.post(_body(bad), hdrs=V1_1, status=400),
                             400, field='snapshot.servers[0].address')

    def test_a_volume_takes_no_address(self):
        self.assertFault(self.post(
            {'snapshot': {'volumes': [{'id': base.VOLUME1,
                                       'address': '10.0.0.5'}]}},
            hdrs=V1_1, status=400), 400, field='snapshot.volumes[0].address')
