#!/bin/bash
# devstack plugin for consnap.  In local.conf:
#
#   [[local|localrc]]
#   enable_plugin consnap https://opendev.org/openstack/consnap
#
# See devstack/README.rst.  devstack sources this file in each phase with
# the mode and phase as arguments; devstack/settings was sourced before.

source "$CONSNAP_DIR/devstack/lib/consnap"

if is_service_enabled consnap-api consnap-conductor consnap-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing consnap"
        consnap_install
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring consnap"
        consnap_configure
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting consnap"
        consnap_init
        consnap_start
    fi

    if [[ "$1" == "unstack" ]]; then
        echo_summary "Stopping consnap"
        consnap_stop
    fi

    if [[ "$1" == "clean" ]]; then
        echo_summary "Cleaning consnap"
        consnap_cleanup
    fi
fi
