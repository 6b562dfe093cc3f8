//! Prints what libbpf's open reports for an object: `cargo run --example open-summary -- OBJECT`.
fn main() {
    bpfload_compat::libbpf_side::capture_libbpf_log();
    for a in std::env::args().skip(1) {
        match bpfload_compat::libbpf_side::open_summary(std::path::Path::new(&a)) {
            Ok((p, m)) => {
                println!("{a}");
                for p in p {
                    println!("  prog {p:?}");
                }
                for m in m {
                    println!("  map  {m:?}");
                }
            }
            Err(f) => println!("{a}: libbpf refuses: errno {} {}", f.errno, f.message),
        }
    }
}
