//! Does a short-lived second thread run in parallel with its creator on this machine?
//! `thread_overlap [plain|park] [RUNS]`: the creator spawns a thread, both spin 0.5 ms, and the run
//! prints when each ran, the CPU each ran on, and whether the two spins overlapped (wall < 0.9 ms).
//! `park`: the thread first parks and the creator unparks it (the wake-up path of the scheduler,
//! not the fork path).
//!
//! Why: the kernel BTF's first-use scan used to split its work with a helper thread of ~0.5 ms. On
//! this project's VM (kernel command line `sched_vcpu_pack=15`) the helper landed on its creator's
//! vCPU, so the split rarely paid (it is gone; btf/README.md "Speed"); this shows the effect
//! without the BTF code.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn spin(ms: f64) {
    let t = Instant::now();
    while t.elapsed().as_secs_f64() * 1e3 < ms {
        std::hint::spin_loop();
    }
}

fn cpu() -> i32 {
    // SAFETY: sched_getcpu takes no arguments and only returns a number.
    unsafe { libc::sched_getcpu() }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "plain".into());
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let park = mode == "park";
    let mut overlapped = 0;
    for _ in 0..runs {
        let base = Instant::now();
        let go = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU64::new(0));
        let (g2, s2) = (go.clone(), started.clone());
        let h = std::thread::spawn(move || {
            if park {
                while !g2.load(Ordering::Acquire) {
                    std::thread::park();
                }
            }
            s2.store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
            let c = cpu();
            spin(0.5);
            c
        });
        if park {
            std::thread::yield_now();
            go.store(true, Ordering::Release);
            h.thread().unpark();
        }
        let me = cpu();
        spin(0.5);
        let child_cpu = h.join().unwrap();
        let wall = base.elapsed().as_secs_f64() * 1e3;
        let ok = wall < 0.9;
        overlapped += ok as usize;
        println!(
            "{mode}: thread started at {:.0} us, wall {wall:.2} ms, creator on cpu {me}, thread on cpu {child_cpu}{}",
            started.load(Ordering::SeqCst) as f64 / 1e3,
            if ok { ", overlapped" } else { "" }
        );
    }
    println!("{mode}: {overlapped} of {runs} runs overlapped");
}
