"""Property-based fuzzing of the API: never a 5xx, never a traceback.

A modest number of examples runs here; ``tools/fuzz_api.py`` runs the same
strategies (10,000+ requests) against a running API.
"""

import json
from urllib import parse as urlparse

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
import webtest

from tests.unit.api import base
from tests.unit.api import strategies

FUZZ_SETTINGS = settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=list(HealthCheck))


def build(method, path, query, headers, body, content_type):
    """A webtest request for a drawn ``strategies.requests()`` tuple."""
    url = urlparse.quote(path.encode('utf-8', 'surrogatepass'), safe='/%')
    if query:
        url += '?' + urlparse.urlencode(query, encoding='utf-8',
                                        errors='surrogatepass')
    request = webtest.TestRequest.blank(url, method=method)
    for name, value in headers.items():
        request.headers[name] = value
    if body is not None:
        request.body = body
        if content_type:
            request.content_type = content_type
        else:
            request.environ.pop('CONTENT_TYPE', None)
    return request


def check_response(testcase, response, method, drawn=None):
    testcase.assertLess(response.status_int, 500,
                        '%r -> %s' % (drawn, response.text[:300]))
    testcase.assertNotIn(b'Traceback', response.body)
    if response.status_int >= 400 and method != 'HEAD':
        error = json.loads(response.body)['error']
        testcase.assertEqual(response.status_int, error['code'])
        testcase.assertIsInstance(error['message'], str)


class TestFuzz(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.config.config(max_in_flight_per_project=100000,
                           group='conductor')
        # Something to find, list, cancel and delete.
        for server in (base.SERVER1, base.SERVER2):
            self.create(servers=(server,))

    @FUZZ_SETTINGS
    @given(strategies.requests())
    def test_no_server_errors(self, drawn):
        method = drawn[0]
        response = self.app.do_request(build(*drawn), status='*',
                                       expect_errors=True)
        check_response(self, response, method, drawn)
