"""Mesh and Guance simulator: stands in for Envoy, DataKit and Guance in the sandbox (docs/simulator.md).

- `routing`: route one request as Envoy would, from VirtualServices, DestinationRules, Services, pods.
- `record`: behaviour profiles per version, the traffic driver, and the Istio-shaped recorder
  (metrics, spans, logs, events) with a fast clock.
- `dql`: a DQL evaluator over the recorded data.
- `server`: Guance OpenAPI, DataKit and Prometheus `/metrics` over HTTP on loopback.
"""
