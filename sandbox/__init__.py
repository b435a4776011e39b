"""Local sandbox: real Kubernetes control planes (etcd, kube-apiserver, controller-manager,
scheduler, kwok) with Istio's CRDs, for the collection's demo and integration tests.

Not part of the built collection (galaxy.yml build_ignore).
"""
