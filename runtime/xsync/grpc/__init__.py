"""The store served over gRPC (`serve`) and used remotely (`RemoteStore`)."""
