"""The benchmark's parts, one job per module; ``bench_cli`` is the command line.

- ``images``: the photo mix (generated from the sample photos) or a folder of JPEGs
- ``stats``: percentiles, rates, ratios and the machine's compute limit
- ``triton_stats``: Triton's statistics per composing model, diffed around a run
- ``load``: closed-loop load with async gRPC and HTTP clients
- ``cpu``, ``procmem``: cores used by client, server and neighbours; server memory
- ``served``: a concurrency sweep against a server, with its statistics and memory
- ``references``: limit, in-process and naive, measured in this process
- ``compare``: served over each reference, the performance targets
- ``report``: the text tables and ratio lines
- ``results_csv``: the CSV
- ``plot``: throughput vs latency PNG
- ``perf_data``: perf_analyzer ``--input-data`` JSON
"""
