"""Out-of-tree Cinder volume driver for the local test cloud (no device-mapper).

Volumes are sparse raw files on an XFS (reflink=1) filesystem; snapshots are
atomic FICLONE copy-on-write clones.  Loaded by cinder-volume through
PYTHONPATH: volume_driver = cinder_reflink.driver.ReflinkDriver
"""
