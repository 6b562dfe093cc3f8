//! Linear-cost check by hand: `BPFLOAD_SCALE_OBJS="a.o b.o" cargo test -p bpfload --lib scale -- --ignored --nocapture`
//! prints open and load times per object (objects with N programs, N/10 maps and a shared subprogram).

use std::time::Instant;

use crate::{Loader, Object};

#[test]
#[ignore = "timing, run by hand with BPFLOAD_SCALE_OBJS"]
fn scale() {
    let objs = std::env::var("BPFLOAD_SCALE_OBJS").expect("set BPFLOAD_SCALE_OBJS");
    for path in objs.split_whitespace() {
        let t = Instant::now();
        let obj = Object::open_file(path).unwrap();
        let open = t.elapsed();
        let n = obj.programs().count();
        if std::env::var_os("BPFLOAD_SCALE_OPEN_ONLY").is_some() {
            let t = Instant::now();
            for _ in 0..20 {
                std::hint::black_box(Object::open_file(path).unwrap());
            }
            eprintln!(
                "{path}: {n} programs: open {open:?}, then average of 20: {:?}",
                t.elapsed() / 20
            );
            continue;
        }
        for threads in [1, 2] {
            let t = Instant::now();
            let loaded = Loader::new().threads(threads).load(&obj).unwrap();
            let load = t.elapsed();
            assert!(loaded.all_loaded());
            drop(loaded);
            eprintln!(
                "{path}: {n} programs, {} maps: open {open:?}, load {load:?} ({threads} threads)",
                obj.maps().len()
            );
        }
    }
}
