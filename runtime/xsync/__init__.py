"""xsync: the hybrid synchronizer runtime."""
