"""The store served over gRPC (`serve`) and used remotely (`RemoteStore`)."""

import os as _os

# gRPC's C core logs a failed TLS handshake (and more) at INFO on stderr, which would put a
# second, raw line beside xsync's one-line message. Its own errors are still logged; set
# GRPC_VERBOSITY yourself to see more. Read once, when grpc is first imported: so, here.
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
