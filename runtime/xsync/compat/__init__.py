"""Compatibility layers that let synchronizers written for other runtimes run on xsync.

`xsync.compat.xos` serves the XOS synchronizer library's module names (`xossynchronizer`,
`xosconfig`, `multistructlog`, `xoskafka`, `xosapi.orm`) to a synchronizer's own code.
"""
