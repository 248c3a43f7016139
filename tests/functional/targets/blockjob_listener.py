"""An independent witness of libvirt's block-job events, in its own
process with its own libvirt connection (consnap's code is not used):
prints ``READY`` once listening, then one JSON line per block-job event,
``{"at": <epoch>, "uuid": ..., "disk": ..., "status": <int>}``, until its
stdin closes or ``--seconds`` pass.

Usage: python blockjob_listener.py URI [--seconds N]
"""

import json
import sys
import threading
import time

import libvirt


def main():
    uri = sys.argv[1]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    libvirt.virEventRegisterDefaultImpl()
    lock = threading.Lock()

    def on_job(conn, dom, disk, job_type, status, opaque):
        at = time.time()
        with lock:
            sys.stdout.write(json.dumps({
                'at': at, 'uuid': dom.UUIDString(), 'disk': disk,
                'type': job_type, 'status': status}) + '\n')
            sys.stdout.flush()

    conn = libvirt.openReadOnly(uri)
    conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, on_job, None)

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, daemon=True).start()
    # (stdin's end, or the bound, ends the witness)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()),
                     daemon=True).start()
    with lock:
        sys.stdout.write('READY\n')
        sys.stdout.flush()
    done.wait(seconds)


if __name__ == '__main__':
    main()
