//! Load-path benchmarks live in benches/.
