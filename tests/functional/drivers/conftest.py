"""Fixtures over real peers (reusable: see ``peers.py``).

``loop_pool``   module: an XFS reflink pool with ext4 disks ``disk0..2``
``disks``       function: those disks; teardown thaws every one of them
``qemu_ga``     function: a real qemu-ga on a private socket (freeze-all
                blocked); ``qemu_ga.guest()`` is a guest dict for the driver
``sshd``        module: a real sshd on a loopback high port, key-only auth
``conf``        function: oslo.config fixture over consnap's CONF
"""

import shutil
import tempfile

from oslo_config import fixture as config_fixture
import pytest

from consnap import conf as consnap_conf
from tests import loopfs
from tests.functional.drivers import peers


@pytest.fixture(scope='module')
def loop_pool():
    peers.require_root()
    missing = loopfs.available()
    if missing:
        pytest.fail('loop filesystem tools missing: %s' % ', '.join(missing),
                    pytrace=False)
    pool = loopfs.LoopPool(size_mb=400).setup()
    try:
        for i in range(3):
            pool.make_disk('disk%d' % i, size_mb=64)
        yield pool
    finally:
        pool.teardown()


@pytest.fixture
def disks(loop_pool):
    yield loop_pool.disks
    for disk in loop_pool.disks:
        disk.thaw()


@pytest.fixture
def workdir():
    # short path: unix socket paths are limited to 108 bytes
    path = tempfile.mkdtemp(prefix='consnap-t-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def conf():
    fixture = config_fixture.Config(consnap_conf.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def qemu_ga(workdir, disks):
    agent = peers.QemuGa(workdir).start()
    yield agent
    agent.kill()
    for disk in disks:
        disk.thaw()


@pytest.fixture(scope='module')
def sshd():
    workdir = tempfile.mkdtemp(prefix='consnap-sshd-')
    server = peers.Sshd(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
