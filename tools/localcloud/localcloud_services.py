"""The cloud beyond Keystone: libvirtd, Neutron stub, Glance, Placement,
Nova and Cinder (imported by localcloud.py, which passes itself as ``lc``)."""

import os
import shutil
import subprocess
import threading
import time
import urllib.request

lc = None           # localcloud module, set by services()
_prepared = set()
_token = {}


def P(*parts):
    return lc.path(*parts)


_once_locks = {}
_once_guard = threading.Lock()


def once(key, fn):
    with _once_guard:
        lock = _once_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _prepared:
            fn()
            _prepared.add(key)


def admin_token():
    t = _token.get('t')
    if t and time.monotonic() - t[1] < 3000:
        return t[0]
    tok, _ = lc.get_token()
    _token['t'] = (tok, time.monotonic())
    return tok


def url(name, suffix=''):
    return 'http://%s:%d%s' % (lc.HOST, lc.PORTS[name], suffix)


def libvirt_uri():
    return 'qemu:///system?socket=%s' % P('libvirt', 'sock', 'libvirt-sock')


# --------------------------------------------------------------------------
# common config sections

def authtoken(user):
    return '''[keystone_authtoken]
www_authenticate_uri = {ks}
auth_url = {ks}
auth_type = password
username = {user}
password = {pw}
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = {region}
service_token_roles_required = true
memcached_servers =
'''.format(ks=lc.keystone_url(), user=user, pw=lc.SERVICE_PASSWORD,
           region=lc.REGION)


def auth_section(section, user='nova', extra=''):
    return '''[{s}]
auth_url = {ks}
auth_type = password
username = {user}
password = {pw}
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = {region}
{extra}
'''.format(s=section, ks=lc.keystone_url(), user=user,
           pw=lc.SERVICE_PASSWORD, region=lc.REGION, extra=extra)


# --------------------------------------------------------------------------
# Neutron stub

def neutron_start():
    lc.spawn('neutron-stub', [os.path.join(lc.VENV, 'bin', 'python'),
                              os.path.join(lc.HERE, 'neutron_stub.py'),
                              str(lc.PORTS['neutron-stub'])])


# --------------------------------------------------------------------------
# private libvirtd, in its own mount namespace so that its /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt are
# ours (no clash with any other libvirtd on the machine).

LIBVIRT_BINDS = ('etc', '/etc/libvirt'), ('run', '/run/libvirt'), \
    ('lib', '/var/lib/libvirt'), ('log', '/var/log/libvirt'), \
    ('cache', '/var/cache/libvirt')


def libvirt_prepare():
    d = P('libvirt')
    for sub, _ in LIBVIRT_BINDS:
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.makedirs(os.path.join(d, 'sock'), exist_ok=True)
    os.makedirs(os.path.join(d, 'etc', 'qemu'), exist_ok=True)
    lc.write(os.path.join(d, 'etc', 'qemu.conf'), '''# localcloud private libvirtd
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
''')
    lc.write(os.path.join(d, 'libvirtd.conf'), '''# localcloud private libvirtd
unix_sock_dir = "{sock}"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
'''.format(sock=os.path.join(d, 'sock')))
    binds = []
    for sub, target in LIBVIRT_BINDS:
        binds.append('mkdir -p %s && mount --bind %s %s' % (
            target, os.path.join(d, sub), target))
    lc.write(os.path.join(d, 'start.sh'), '''#!/bin/sh
set -e
mount --make-rprivate /
{binds}
exec libvirtd -f {d}/libvirtd.conf -p {d}/libvirtd.pid
'''.format(binds='\n'.join(binds), d=d), mode=0o755)
    # QEMU's own processes are daemons outside libvirtd's process tree:
    # they are stopped through libvirt in pre_down.
    if subprocess.run(['id', 'libvirt-qemu'], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        lc.run(['useradd', '--system', '--no-create-home', '--shell',
                '/usr/sbin/nologin', 'libvirt-qemu'])


def libvirt_start():
    lc.spawn('libvirtd', ['unshare', '--mount', '--propagation', 'private',
                          '--', P('libvirt', 'start.sh')])


def virsh(*args, timeout=20, check=True):
    return lc.run(['virsh', '-c', libvirt_uri()] + list(args),
                  timeout=timeout, check=check)


def libvirt_ready():
    if not os.path.exists(P('libvirt', 'sock', 'libvirt-sock')):
        return False
    try:
        virsh('version', timeout=10)
        return True
    except lc.CloudError:
        return False


# --------------------------------------------------------------------------
# Glance on MariaDB (on sqlite two uploads finishing together killed an
# image with "database is locked")

def glance_prepare():
    d = P('glance')
    os.makedirs(os.path.join(d, 'images'), exist_ok=True)
    os.makedirs(os.path.join(d, 'staging'), exist_ok=True)
    os.makedirs(os.path.join(d, 'tasks'), exist_ok=True)
    shutil.copy(os.path.join(lc.VENV, 'etc', 'glance', 'glance-api-paste.ini'),
                os.path.join(d, 'glance-api-paste.ini'))
    conf = '''[DEFAULT]
debug = false
enabled_backends = file:file
show_image_direct_url = false
bind_host = 127.0.0.1
bind_port = {port}
workers = 1
image_size_cap = 21474836480
[database]
connection = {db}
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {d}/images/
[os_glance_staging_store]
filesystem_store_datadir = {d}/staging/
[os_glance_tasks_store]
filesystem_store_datadir = {d}/tasks/
[paste_deploy]
flavor = keystone
config_file = {d}/glance-api-paste.ini
[oslo_concurrency]
lock_path = {d}/locks
[oslo_policy]
enforce_new_defaults = true
{auth}
'''.format(d=d, port=lc.PORTS['glance'], auth=authtoken('glance'),
           db=lc.DB_URL % 'glance')
    lc.write(os.path.join(d, 'glance-api.conf'), conf)
    if not lc.done('glance-mysql-db'):
        lc.create_db('glance', reset=True)
        lc.run([lc.venv_bin('glance-manage'), '--config-file',
                os.path.join(d, 'glance-api.conf'), 'db_sync'], timeout=300)
        lc.mark('glance-mysql-db')


def glance_sqlite_to_mysql():
    """A cloud made when Glance ran on sqlite: copy its rows (image ids
    stay valid) once, while Glance is stopped, and set the file aside."""
    old = P('glance', 'glance.db')
    if not os.path.exists(old) or lc.done('glance-sqlite-copied'):
        return
    out = lc.run([os.path.join(lc.VENV, 'bin', 'python'),
                  os.path.join(lc.HERE, 'glance_sqlite_to_mysql.py'), old,
                  lc.DB_URL % 'glance'], timeout=300)
    lc.log('glance: copied sqlite rows to MariaDB: %s' % out.strip())
    os.replace(old, old + '.pre-mariadb')
    lc.mark('glance-sqlite-copied')


def glance_start():
    glance_sqlite_to_mysql()
    lc.gunicorn('glance', 'glance.wsgi.api',
                {'OS_GLANCE_CONFIG_DIR': P('glance')}, threads=8,
                argv=['--config-file', P('glance', 'glance-api.conf')])


# --------------------------------------------------------------------------
# Placement

def placement_prepare():
    d = P('placement')
    conf = '''[DEFAULT]
debug = false
[placement_database]
connection = {db}
[api]
auth_strategy = keystone
{auth}
'''.format(db=lc.DB_URL % 'placement', auth=authtoken('placement'))
    lc.write(os.path.join(d, 'placement.conf'), conf)
    if not lc.done('placement-db'):
        lc.create_db('placement', reset=True)
        lc.run([lc.venv_bin('placement-manage'), '--config-file',
                os.path.join(d, 'placement.conf'), 'db', 'sync'], timeout=300)
        lc.mark('placement-db')


def placement_start():
    lc.gunicorn('placement', 'placement.wsgi.api',
                {'OS_PLACEMENT_CONFIG_DIR': P('placement')}, threads=8)


# --------------------------------------------------------------------------
# Nova

NOVA_ENV = {'OS_NOVA_DISABLE_EVENTLET_PATCHING': 'true'}


def nova_conf_path():
    return P('nova', 'nova.conf')


def nova_prepare():
    d = P('nova')
    for sub in ('instances', 'locks'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    shutil.copy(os.path.join(lc.VENV, 'etc', 'nova', 'api-paste.ini'),
                os.path.join(d, 'api-paste.ini'))
    transport = lc.rabbit_vhost('nova') if not lc.done('nova-rabbit') \
        else 'rabbit://%s:%s@127.0.0.1:5672/%snova' % (
            lc.RABBIT_USER, lc.RABBIT_PASSWORD, lc.DB_PREFIX)
    lc.mark('nova-rabbit')
    conf = '''[DEFAULT]
debug = false
host = localcloud
my_ip = 127.0.0.1
state_path = {d}
instances_path = {d}/instances
transport_url = {transport}
compute_driver = libvirt.LibvirtDriver
enabled_apis = osapi_compute
reserved_host_memory_mb = 0
reserved_host_disk_mb = 0
cpu_allocation_ratio = 32.0
ram_allocation_ratio = 2.0
disk_allocation_ratio = 10.0
allow_resize_to_same_host = true
force_config_drive = false
heal_instance_info_cache_interval = -1
instance_usage_audit = false
sync_power_state_interval = 60
report_interval = 5
graceful_shutdown_timeout = 5
[oslo_policy]
policy_file = {d}/policy.yaml
[wsgi]
api_paste_config = {d}/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = {db_api}
[database]
connection = {db}
[oslo_concurrency]
lock_path = {d}/locks
[oslo_messaging_notifications]
driver = noop
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
[scheduler]
discover_hosts_in_cells_interval = -1
workers = 1
[conductor]
workers = 1
[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter
[libvirt]
virt_type = qemu
cpu_mode = none
connection_uri = {uri}
snapshot_image_format = raw
live_migration_uri = {uri}
inject_partition = -2
[compute]
cpu_dedicated_set =
max_concurrent_builds = 4
[quota]
instances = 1000
cores = 4000
ram = 4096000
key_pairs = 1000
server_groups = 1000
server_group_members = 1000
metadata_items = 1000
[vnc]
enabled = false
[spice]
enabled = false
[serial_console]
enabled = false
[glance]
region_name = {region}
endpoint_override = {glance}
[cinder]
os_region_name = {region}
catalog_info = block-storage:cinderv3:publicURL
auth_url = {ks}
auth_type = password
username = nova
password = {pw}
project_name = service
user_domain_name = Default
project_domain_name = Default
[neutron]
endpoint_override = {neutron}
region_name = {region}
auth_url = {ks}
auth_type = password
username = neutron
password = {pw}
project_name = service
user_domain_name = Default
project_domain_name = Default
{placement}
{service_user}
{authtoken}
'''.format(d=d, transport=transport, db_api=lc.DB_URL % 'nova_api',
           db=lc.DB_URL % 'nova', uri=libvirt_uri(), region=lc.REGION,
           glance=url('glance'), ks=lc.keystone_url(), pw=lc.SERVICE_PASSWORD,
           neutron=url('neutron-stub'),
           placement=auth_section('placement', 'placement'),
           service_user=auth_section('service_user', 'nova',
                                     'send_service_user_token = true'),
           authtoken=authtoken('nova'))
    lc.write(nova_conf_path(), conf)
    # Tenants may boot image-sized root disks (flavor disk 0): a 1 GiB flavor
    # disk would make every createImage upload 1 GiB.
    lc.write(os.path.join(d, 'policy.yaml'),
             '"os_compute_api:servers:create:zero_disk_flavor": '
             '"role:member or role:admin"\n')
    if not lc.done('nova-db'):
        nm = [lc.venv_bin('nova-manage'), '--config-file', nova_conf_path()]
        for db in ('nova_api', 'nova_cell0', 'nova'):
            lc.create_db(db, reset=True)
        lc.run(nm + ['api_db', 'sync'], timeout=600, env=NOVA_ENV)
        lc.run(nm + ['cell_v2', 'map_cell0', '--database_connection',
                     lc.DB_URL % 'nova_cell0'], timeout=120, env=NOVA_ENV)
        lc.run(nm + ['cell_v2', 'create_cell', '--name', 'cell1'],
               timeout=120, env=NOVA_ENV)
        lc.run(nm + ['db', 'sync'], timeout=900, env=NOVA_ENV)
        lc.mark('nova-db')


def nova_api_start():
    lc.gunicorn('nova-api', 'nova.wsgi.osapi_compute',
                dict(NOVA_ENV, OS_NOVA_CONFIG_DIR=P('nova'),
                     OS_NOVA_CONFIG_FILES='api-paste.ini;nova.conf'),
                threads=8)


def nova_bin(name):
    def start():
        lc.spawn(name, [lc.venv_bin(name), '--config-file', nova_conf_path()],
                 env=NOVA_ENV)
    return start


def _fresh(svc_rec, name):
    """The service record was updated by the process we started."""
    import datetime
    stamp = svc_rec.get('updated_at') or svc_rec.get('created_at')
    if not stamp:
        return False
    try:
        t = datetime.datetime.strptime(stamp[:19], '%Y-%m-%dT%H:%M:%S')
        started = os.path.getmtime(lc.pidfile(name))
    except (ValueError, OSError):
        return False
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    return t >= started - 1


def nova_service_up(binary):
    def ready():
        try:
            st, _, data = lc.http(
                'GET', url('nova-api', '/v2.1/os-services?binary=%s' % binary),
                token=admin_token(), timeout=10)
        except OSError:
            return False
        if st != 200:
            return False
        return any(s['state'] == 'up' and s['status'] == 'enabled'
                   and _fresh(s, binary) for s in data['services'])
    return ready


# --------------------------------------------------------------------------
# Cinder with the reflink file driver on an XFS loop filesystem

def xfs_mount():
    d = P('volumes')
    img, mnt = os.path.join(d, 'xfs.img'), os.path.join(d, 'mnt')
    os.makedirs(mnt, exist_ok=True)
    with open('/proc/mounts') as f:
        if any(line.split()[1] == mnt for line in f):
            return mnt
    if not os.path.exists(img):
        with open(img, 'wb') as f:
            f.truncate(64 * 1024 ** 3)          # sparse
        lc.run(['mkfs.xfs', '-q', '-m', 'reflink=1', img], timeout=120)
    dev = lc.run(['losetup', '--find', '--show', img], timeout=30).strip()
    lc.run(['mount', '-t', 'xfs', dev, mnt], timeout=60)
    return mnt


def cinder_conf_path():
    return P('cinder', 'cinder.conf')


def cinder_prepare():
    d = P('cinder')
    os.makedirs(os.path.join(d, 'locks'), exist_ok=True)
    vols = os.path.join(xfs_mount(), 'volumes')
    os.makedirs(vols, exist_ok=True)
    transport = lc.rabbit_vhost('cinder') if not lc.done('cinder-rabbit') \
        else 'rabbit://%s:%s@127.0.0.1:5672/%scinder' % (
            lc.RABBIT_USER, lc.RABBIT_PASSWORD, lc.DB_PREFIX)
    lc.mark('cinder-rabbit')
    etc = os.path.join(lc.VENV, 'etc', 'cinder')
    conf = '''[DEFAULT]
debug = false
host = localcloud
my_ip = 127.0.0.1
state_path = {d}
transport_url = {transport}
auth_strategy = keystone
enabled_backends = reflink
default_volume_type = __DEFAULT__
api_paste_config = {etc}/api-paste.ini
resource_query_filters_file = {etc}/resource_filters.json
glance_api_servers = {glance}
glance_api_version = 2
quota_volumes = 10000
quota_snapshots = 10000
quota_gigabytes = 1000000
quota_backups = 10000
quota_backup_gigabytes = 1000000
quota_groups = 10000
osapi_volume_workers = 1
scheduler_driver_init_wait_time = 2
periodic_interval = 10
# the volume service's first capability report at once, not up to 60 s
# late (the scheduler knows no backend until it arrives)
periodic_fuzzy_delay = 0
report_interval = 5
image_conversion_dir = {d}/conversion
volume_name_template = volume-%s
[database]
connection = {db}
[oslo_concurrency]
lock_path = {d}/locks
[oslo_messaging_notifications]
driver = noop
[coordination]
backend_url = file://{d}/locks
[reflink]
volume_driver = cinder_reflink.driver.ReflinkDriver
volume_backend_name = reflink
reflink_volumes_dir = {vols}
{nova}
{authtoken}
'''.format(d=d, transport=transport, etc=etc, glance=url('glance'),
           db=lc.DB_URL % 'cinder', vols=vols,
           nova=auth_section('nova', 'cinder', 'interface = public'),
           authtoken=authtoken('cinder'))
    lc.write(cinder_conf_path(), conf)
    if not lc.done('cinder-db'):
        lc.create_db('cinder', reset=True)
        lc.run([lc.venv_bin('cinder-manage'), '--config-file',
                cinder_conf_path(), 'db', 'sync'], timeout=600)
        lc.mark('cinder-db')


CINDER_ENV = {'PYTHONPATH': os.path.dirname(os.path.abspath(__file__))}


def cinder_api_start():
    lc.gunicorn('cinder-api', 'cinder.wsgi.api', {}, threads=8,
                argv=['--config-file', cinder_conf_path()])


def cinder_bin(name):
    def start():
        lc.spawn(name, [lc.venv_bin(name), '--config-file',
                        cinder_conf_path()], env=CINDER_ENV)
    return start


def cinder_service_up(binary):
    def ready():
        pid = lc.load_state().get('admin_project_id')
        if not pid:
            return False
        try:
            st, _, data = lc.http(
                'GET', url('cinder-api', '/v3/%s/os-services?binary=%s'
                           % (pid, binary)), token=admin_token(), timeout=10)
        except OSError:
            return False
        if st != 200:
            return False
        if not any(s['state'] == 'up' and _fresh(s, binary)
                   for s in data['services']):
            return False
        if binary != 'cinder-volume':
            return True
        # a volume can be created only once the scheduler has the backend's
        # capabilities (reported by cinder-volume over RPC, apart from the
        # service record): else "No valid backend was found"
        try:
            st, _, data = lc.http(
                'GET', url('cinder-api', '/v3/%s/scheduler-stats/get_pools'
                           % pid), token=admin_token(), timeout=10)
        except OSError:
            return False
        return st == 200 and any(
            p.get('name', '').startswith('localcloud@reflink')
            for p in data.get('pools', []))
    return ready


# --------------------------------------------------------------------------
# the table

def services(module):
    global lc
    lc = module
    S = lc.Service
    ready = lc._http_ready
    return [
        S('neutron-stub', 'all', lambda: None, neutron_start,
          ready('neutron-stub', '/'), lc.PORTS['neutron-stub'], early=True),
        S('libvirtd', 'all', libvirt_prepare, libvirt_start, libvirt_ready,
          early=True),
        S('glance', 'all', glance_prepare, glance_start,
          ready('glance', '/'), lc.PORTS['glance'], wave=1),
        S('placement', 'all', placement_prepare, placement_start,
          ready('placement', '/'), lc.PORTS['placement'], wave=1),
        S('nova-api', 'all', lambda: once('nova', nova_prepare),
          nova_api_start, ready('nova-api', '/'), lc.PORTS['nova-api'],
          wave=1),
        S('cinder-api', 'all', lambda: once('cinder', cinder_prepare),
          cinder_api_start, ready('cinder-api', '/'), lc.PORTS['cinder-api'],
          wave=1),
        S('nova-conductor', 'all', lambda: once('nova', nova_prepare),
          nova_bin('nova-conductor'), nova_service_up('nova-conductor'),
          wave=2),
        S('nova-scheduler', 'all', lambda: once('nova', nova_prepare),
          nova_bin('nova-scheduler'), nova_service_up('nova-scheduler'),
          wave=2),
        S('nova-compute', 'all', lambda: once('nova', nova_prepare),
          nova_bin('nova-compute'), nova_service_up('nova-compute'),
          term_wait=10, wave=2),
        S('cinder-scheduler', 'all', lambda: once('cinder', cinder_prepare),
          cinder_bin('cinder-scheduler'), cinder_service_up('cinder-scheduler'),
          wave=2),
        S('cinder-volume', 'all', lambda: once('cinder', cinder_prepare),
          cinder_bin('cinder-volume'), cinder_service_up('cinder-volume'),
          wave=2),
    ]


def after_keystone(module, state, started=True):
    """Catalog entries, before the services that read the catalog start."""
    global lc
    lc = module
    eps = {
        'identity': lc.keystone_url(),
        'image': url('glance'),
        'placement': url('placement'),
        'compute': url('nova-api', '/v2.1'),
        'volumev3': url('cinder-api', '/v3/$(project_id)s'),
        'block-storage': url('cinder-api', '/v3/$(project_id)s'),
        'network': url('neutron-stub'),
    }
    if (not started and state.get('endpoints') == eps
            and state.get('admin_project_id') and lc.done('catalog')):
        return          # Keystone kept running: its catalog is in place
    ident = lc.Identity()
    state['admin_project_id'] = ident.project('admin')
    lc.save_state(state)
    for stype, name in (('image', 'glance'), ('placement', 'placement'),
                        ('compute', 'nova'), ('volumev3', 'cinderv3'),
                        ('block-storage', 'cinder'), ('network', 'neutron')):
        ident.service(stype, name, eps[stype])
    state['endpoints'] = eps
    lc.mark('catalog')


# --------------------------------------------------------------------------
# after everything runs: host discovery, flavor, guest images

def _discover_hosts(state, ctx):
    if lc.done('nova-hosts') and 'nova-compute' not in ctx.get('started', ()):
        return
    nm = [lc.venv_bin('nova-manage'), '--config-file', nova_conf_path()]
    # map the compute host (nova-compute has reported: it is ready), then
    # wait for its hypervisor (needs the mapping) and resource provider
    deadline = time.monotonic() + 120
    while True:
        out = lc.run(nm + ['cell_v2', 'discover_hosts', '--verbose'],
                     timeout=120, env=NOVA_ENV)
        if "'localcloud'" in out:       # newly mapped (or already: below)
            break
        out = lc.run(nm + ['cell_v2', 'list_hosts'], timeout=120,
                     env=NOVA_ENV)
        if 'localcloud' in out:
            break
        if time.monotonic() > deadline:
            raise lc.CloudError('nova-compute host never got mapped to cell1; '
                                'see %s' % P('logs', 'nova-compute.log'))
        time.sleep(2)
    deadline = time.monotonic() + 120
    while True:
        st, _, data = lc.http('GET', url('nova-api', '/v2.1/os-hypervisors'),
                              token=admin_token())
        if st == 200 and data['hypervisors']:
            break
        if time.monotonic() > deadline:
            raise lc.CloudError('nova-compute reported no hypervisor; see %s'
                                % P('logs', 'nova-compute.log'))
        time.sleep(1)
    lc.mark('nova-hosts')


def _flavor(state):
    tok = admin_token()
    name = 'consnap.tiny'
    st, _, data = lc.http('GET', url('nova-api', '/v2.1/flavors/detail'),
                          token=tok)
    for f in data['flavors']:
        if f['name'] == name:
            fid = f['id']
            break
    else:
        st, _, data = lc.http('POST', url('nova-api', '/v2.1/flavors'), {
            'flavor': {'name': name, 'ram': 256, 'vcpus': 1, 'disk': 0,
                       'id': 'consnap-tiny', 'os-flavor-access:is_public': True}},
            token=tok)
        if st != 200:
            raise lc.CloudError('flavor create failed: %s %s' % (st, data))
        fid = data['flavor']['id']
    state['flavors'] = {'tiny': fid}


def _glance_image(tok, name, fmt, path, props):
    st, _, data = lc.http('GET', url('glance', '/v2/images?name=%s' % name),
                          token=tok)
    for im in data.get('images', []):
        if im['status'] == 'active' and im.get('localcloud_stamp') == \
                props.get('localcloud_stamp'):
            return im['id']
        if im['status'] != 'active':
            # a failed upload: remove it
            lc.http('DELETE', url('glance', '/v2/images/%s' % im['id']),
                    token=tok)
        # an older build stays (running tests may still boot from it)
    body = {'name': name, 'disk_format': fmt, 'container_format': fmt,
            'visibility': 'public'}
    body.update(props)
    st, _, data = lc.http('POST', url('glance', '/v2/images'), body,
                          token=tok)
    if st != 201:
        raise lc.CloudError('glance image create %s: %s %s' % (name, st, data))
    iid = data['id']
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        req = urllib.request.Request(
            url('glance', '/v2/images/%s/file' % iid), data=f, method='PUT',
            headers={'X-Auth-Token': tok, 'Content-Length': str(size),
                     'Content-Type': 'application/octet-stream'})
        with urllib.request.urlopen(req, timeout=300) as r:
            if r.status not in (200, 204):
                raise lc.CloudError('glance upload %s: %s' % (name, r.status))
    return iid


def _images(state):
    out = P('guest')
    lc.run(['bash', os.path.join(lc.HERE, 'guest', 'build.sh'), out],
           timeout=1200)
    with open(os.path.join(out, '.stamp')) as f:
        stamp = f.read().strip()[:16]
    tok = admin_token()
    p = {'localcloud_stamp': stamp}
    kid = _glance_image(tok, 'consnap-guest-kernel', 'aki',
                        os.path.join(out, 'vmlinuz'), p)
    rid = _glance_image(tok, 'consnap-guest-ramdisk', 'ari',
                        os.path.join(out, 'initrd.img'), p)
    common = dict(p, kernel_id=kid, ramdisk_id=rid, hw_qemu_guest_agent='yes',
                  hw_disk_bus='virtio')
    idle = _glance_image(tok, 'consnap-guest', 'ami',
                         os.path.join(out, 'root.img'),
                         dict(common, os_command_line='console=ttyS0'))
    writer = _glance_image(
        tok, 'consnap-guest-writer', 'ami', os.path.join(out, 'root.img'),
        dict(common, os_command_line='console=ttyS0 consnap.workload=writer'))
    state['images'] = {'kernel': kid, 'ramdisk': rid, 'guest': idle,
                       'guest-writer': writer}
    state['guest_dir'] = out


def post_up(module, state, ctx):
    global lc
    lc = module
    _discover_hosts(state, ctx)
    _flavor(state)
    _images(state)
    state['libvirt_uri'] = libvirt_uri()
    state['cinder_volumes_dir'] = os.path.join(P('volumes', 'mnt'), 'volumes')
    state['nova_instances_dir'] = P('nova', 'instances')


def pre_down(module):
    """Stop the guests (QEMU daemons are not in libvirtd's process tree)."""
    global lc
    lc = module
    if not lc.alive('libvirtd'):
        return
    try:
        names = virsh('list', '--name', timeout=20).split()
    except lc.CloudError:
        return
    for n in names:
        lc.log('destroying guest %s' % n)
        virsh('destroy', n, timeout=30, check=False)


def post_down(module, purge):
    global lc
    lc = module
    vols = os.path.join(P('volumes', 'mnt'), 'volumes')
    if os.path.isdir(vols):
        out = lc.run(['losetup', '-l', '-n', '-O', 'NAME,BACK-FILE'],
                     check=False)
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].startswith(vols + '/'):
                lc.run(['losetup', '-d', parts[0]], check=False)
    if purge:
        mnt = P('volumes', 'mnt')
        with open('/proc/mounts') as f:
            mounted = any(line.split()[1] == mnt for line in f)
        if mounted:
            lc.run(['umount', mnt], check=False)
        img = P('volumes', 'xfs.img')
        out = lc.run(['losetup', '-j', img], check=False)
        for line in out.splitlines():
            lc.run(['losetup', '-d', line.split(':', 1)[0]], check=False)
