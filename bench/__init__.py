"""Benchmarks: what one image costs against sharp and Pillow, and how the whole
system behaves (pickup latency, throughput, memory, intake). `make bench` runs
them all; see BENCHMARKS.md."""
