"""The api-ref samples match the schemas the API enforces."""

import json
import os

import testtools

from consnap.api.controllers.v1 import snapshot as snapshot_ctl
from consnap.api import openapi
from consnap.api import validation
from tests.unit.api import base

SAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                       'api-ref', 'source', 'samples')
Ctl = snapshot_ctl.SnapshotsController


def _load(name):
    with open(os.path.join(SAMPLES, name)) as f:
        return json.load(f)


class TestSamples(testtools.TestCase):

    def setUp(self):
        super().setUp()
        base.CONF([], project='consnap', default_config_files=[],
                  default_config_dirs=[])

    def check(self, name, schema):
        validation.SchemaValidator(schema).validate(_load(name))

    def test_samples(self):
        self.check('snapshot-create-request.json',
                   Ctl._create.request_body_schemas.for_version(0))
        self.check('snapshot-create-response.json',
                   Ctl._create.response_body_schemas.for_version(0))
        self.check('snapshot-show-response.json',
                   Ctl.get_one.response_body_schemas.for_version(0))
        self.check('snapshots-list-response.json',
                   Ctl.get_all.response_body_schemas.for_version(0))
        self.check('snapshot-delete-response.json',
                   Ctl.delete.response_body_schemas.for_version(0))
        self.check('error-response.json', openapi.ERROR_SCHEMA)

    def test_every_sample_is_used(self):
        source = os.path.join(SAMPLES, '..')
        text = ''.join(open(os.path.join(source, f)).read()
                       for f in os.listdir(source) if f.endswith('.inc'))
        for name in os.listdir(SAMPLES):
            self.assertIn('samples/%s' % name, text)
