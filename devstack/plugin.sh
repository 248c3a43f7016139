#!/bin/bash
# devstack plugin for consnap: enable_plugin consnap <repo> [branch]

source "$DEST/consnap/devstack/lib/consnap"

if is_service_enabled consnap-api consnap-conductor consnap-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing consnap"
        install_consnap
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring consnap"
        configure_consnap
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting consnap"
        init_consnap
        start_consnap
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_consnap
    fi
    if [[ "$1" == "clean" ]]; then
        cleanup_consnap
    fi
fi
