"""Benchmarks of the PDP: ``python -m benchmarks`` (quick) and ``python -m benchmarks --full``.

* :mod:`benchmarks.workload`: generated policy sets, entities and requests;
* :mod:`benchmarks.engine_latency`: in-process decision latency, plain cedarpy against the
  engine, by policy and entity count;
* :mod:`benchmarks.http_load`: ``pdp serve`` under ``wrk`` (evaluation against a no-op
  endpoint, a batch of 100 against 100 single calls, latency while reloading);
* :mod:`benchmarks.report`: the table, the target checks and the plot.

Results (JSON and PNG) go to ``benchmarks/results/``, which git ignores. The other scripts in
this directory are run on their own (see their headers).
"""
