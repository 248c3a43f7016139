"""consnap commands.  No eventlet: plain threads, futurist and cotyledon."""
