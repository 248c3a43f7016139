from oslo_config import fixture as config_fixture
import pytest

from consnap import conf as consnap_conf


@pytest.fixture
def conf():
    fixture = config_fixture.Config(consnap_conf.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()
